"""The outbox journal (daemon/store/journal.py): lines appended as the relay accepts each
mail and as each IMAP action is applied, a torn last line ignored, folded into the
database in bulk (while appends go on, and losing nothing when the database fails); and
the real daemon folding it before it sends anything again."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime

import pytest
from conftest import fixture_bytes, sqlite_rows
from sqlalchemy import create_engine, event
from sqlmodel import Session, select

from daemon.config import Settings, load_settings
from daemon.store.db import make_engine
from daemon.store.journal import Entries, JournalFolder, OutboxJournal, fold, journal_path
from daemon.store.models import OutboxAction

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'buzon.db'}")
    yield engine
    engine.dispose()


def planned(engine, count: int, **fields) -> list[OutboxAction]:
    """`count` pending mails in the outbox, each with its own Message-ID."""
    with Session(engine) as session:
        rows = [OutboxAction(mailbox="consultas", action="send", target="a@correo.test",
                             message_id=f"<ack.{number}@buzon.osce.test>", raw="mail",
                             created_at=NOW, **fields) for number in range(count)]
        session.add_all(rows)
        session.commit()
        for row in rows:
            session.refresh(row)
        session.expunge_all()
    return rows


def statuses(engine) -> list[tuple]:
    with Session(engine) as session:
        return [(a.status, a.attempts, a.raw is None)
                for a in session.exec(select(OutboxAction).order_by(OutboxAction.id))]


def test_lines_are_appended_read_back_and_folded_away(engine, tmp_path):
    path = tmp_path / "sent.journal"
    rows = planned(engine, 3)
    with OutboxJournal(path) as journal:
        journal.sent(rows[0].id, rows[0].message_id)
        journal.tried([rows[1].id])
        journal.done([rows[1].id, rows[2].id])
    assert path.read_text() == (f"{rows[0].id} {rows[0].message_id}\n"
                                f"tried {rows[1].id}\ndone {rows[1].id}\ndone {rows[2].id}\n")
    assert path.stat().st_mode & 0o077 == 0
    later = OutboxJournal(path)  # the next process, after a kill
    assert later.entries() == Entries(sent={rows[0].id: rows[0].message_id},
                                      done={rows[1].id, rows[2].id}, tried={rows[1].id})
    assert fold(engine, later) == 3
    # Tried, then done: two tries counted, as when each was written on its own.
    assert statuses(engine) == [("done", 1, False), ("done", 2, False), ("done", 1, False)]
    assert not path.exists() and not later.folding.exists() and not later.entries()
    later.sent(11, "<ack.11@buzon.test>")  # appending after a fold starts a new file
    later.close()
    assert path.read_text() == "11 <ack.11@buzon.test>\n"


def test_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "sent.journal"
    path.write_bytes(b"3 <ack.3@buzon.test>\n4 <ack.4@buz")  # killed in the middle of a write
    assert OutboxJournal(path).entries() == Entries(sent={3: "<ack.3@buzon.test>"})
    path.write_bytes(b"garbage\n\ndone x\n5 <ack.5@buzon.test>\ndone 6\ndone 7")
    assert OutboxJournal(path).entries() == Entries(sent={5: "<ack.5@buzon.test>"}, done={6})


def test_without_a_file_it_keeps_its_lines_in_memory(engine):
    [row] = planned(engine, 1)
    journal = OutboxJournal(None)
    journal.sent(row.id, row.message_id)
    assert journal.entries() == Entries(sent={row.id: row.message_id})
    assert fold(engine, journal) == 1
    assert not journal.entries()


def test_lines_appended_while_a_fold_runs_wait_for_the_next(engine, tmp_path):
    """The relay's thread goes on appending while the database is slow to take a fold:
    nothing it appends meanwhile is lost or folded twice."""
    rows = planned(engine, 4)
    journal = OutboxJournal(tmp_path / "sent.journal")
    journal.sent(rows[0].id, rows[0].message_id)

    def while_folding(*_args):
        journal.sent(rows[1].id, rows[1].message_id)  # accepted while the UPDATE runs
    event.listen(engine, "before_cursor_execute", while_folding, once=True)
    assert fold(engine, journal) == 1
    assert journal.pending and journal.entries() == Entries(
        sent={rows[1].id: rows[1].message_id})
    assert fold(engine, journal) == 1
    assert statuses(engine)[:2] == [("done", 1, False)] * 2


def test_a_failed_fold_loses_nothing(engine, tmp_path):
    """The database refuses a fold (it is restarting): the lines stay aside, the new ones
    join them, and the next fold records them all once."""
    rows = planned(engine, 3)
    journal = OutboxJournal(tmp_path / "sent.journal")
    journal.sent(rows[0].id, rows[0].message_id)
    journal.done([rows[2].id])

    def refuse(*_args):
        raise OSError("database restarting")
    event.listen(engine, "before_cursor_execute", refuse)
    with pytest.raises(Exception, match="database restarting"):
        fold(engine, journal)
    event.remove(engine, "before_cursor_execute", refuse)
    assert journal.folding.exists()
    journal.sent(rows[1].id, rows[1].message_id)
    assert OutboxJournal(journal.path).entries() == Entries(  # as a new process reads it
        sent={rows[0].id: rows[0].message_id, rows[1].id: rows[1].message_id},
        done={rows[2].id})
    assert fold(engine, journal) == 3
    assert statuses(engine) == [("done", 1, False)] * 3
    assert not journal.folding.exists()


def test_folding_marks_the_journaled_mails_done_in_one_update(engine, tmp_path):
    rows = planned(engine, 300)
    [capability] = planned(engine, 1, ticket_id="C-1")
    with Session(engine) as session:  # a capability request: the database keeps the digest
        row = session.get(OutboxAction, capability.id)
        row.message_id = "<sha256:" + "0" * 64 + ">"
        session.add(row)
        session.commit()
    journal = OutboxJournal(tmp_path / "sent.journal")
    for row in rows[:250]:
        journal.sent(row.id, row.message_id)
    journal.sent(capability.id, "<sha256:" + "0" * 64 + ">")
    journal.sent(rows[260].id, "<another@database>")  # not this action's: left alone
    updates = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: updates.append(statement)
                 if statement.lstrip().upper().startswith("UPDATE") else None)
    assert fold(engine, journal) == 251
    assert len(updates) == 1  # in bulk: one statement, not one per mail
    assert statuses(engine) == [("done", 1, False)] * 250 + [("pending", 0, False)] * 50 + \
        [("done", 1, True)]  # the capability's text dropped once sent
    assert not journal.entries() and not (tmp_path / "sent.journal").exists()
    journal.sent(rows[0].id, rows[0].message_id)  # already done: folding again changes nothing
    assert fold(engine, journal) == 0
    assert statuses(engine)[0] == ("done", 1, False)
    journal.close()


def test_the_bookkeeping_thread_folds_while_the_outbox_works(engine, tmp_path):
    rows = planned(engine, 2)
    journal = OutboxJournal(tmp_path / "sent.journal")
    with JournalFolder(engine, journal, every=0.01) as folder:
        journal.sent(rows[0].id, rows[0].message_id)
        for _ in range(500):  # folded by the thread, not by close()
            if statuses(engine)[0][0] == "done":
                break
            time.sleep(0.01)
        assert statuses(engine)[0] == ("done", 1, False)
        journal.sent(rows[1].id, rows[1].message_id)
    assert folder.marked == 2  # the rest folded on leaving
    assert statuses(engine) == [("done", 1, False)] * 2


def settings(tmp_path, database: str, **smtp) -> Settings:
    return Settings(database=database, smtp={"host": "127.0.0.1", **smtp},
                    mailboxes={"consultas": {"address": "Consultas@osce.test", "imap": {
                        "host": "127.0.0.1", "username": "c", "password_env": "X"}}})


def test_the_journal_lives_beside_the_database_or_where_it_is_told(tmp_path, monkeypatch):
    sqlite = f"sqlite:///{tmp_path / 'data' / 'buzon.db'}"
    engine = create_engine(sqlite)
    assert journal_path(engine, settings(tmp_path, sqlite), "consultas") == \
        tmp_path / "data" / "sent-consultas_osce_test.journal"
    told = settings(tmp_path, sqlite, journal_dir=str(tmp_path / "journals"))
    assert journal_path(engine, told, "consultas").parent == tmp_path / "journals"
    postgres = "postgresql+psycopg://buzon@db.osce.test/buzon"
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    assert journal_path(create_engine(postgres), settings(tmp_path, postgres),
                        "consultas").parent == tmp_path / "state"
    assert journal_path(create_engine("sqlite://"), settings(tmp_path, "sqlite://"),
                        "consultas") is None


def acks_sent(d) -> list[tuple]:
    return sqlite_rows(d, "SELECT id, message_id, status FROM outbox "
                          "WHERE action = 'send' AND message_id LIKE '<ack.%'")


def test_the_daemon_folds_the_journal_before_sending_again(deployment):
    d = deployment
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), NOW)
    crashed = d.buzon("run", "--once", crash_at="after_commit", check=False)
    assert crashed.returncode == -signal.SIGKILL
    [(action_id, message_id, status)] = acks_sent(d)
    assert status == "pending" and d.acknowledgements() == []
    # As if the relay had taken it and buzon was killed before marking it done.
    path = journal_path(create_engine(d.database), load_settings(d.config_path), "consultas")
    assert path.parent == d.tmp
    path.write_text(f"{action_id} {message_id}\n")
    d.buzon("run", "--once")
    assert acks_sent(d) == [(action_id, message_id, "done")]
    assert d.acknowledgements() == []  # not sent a second time


def test_a_kill_after_the_relay_took_a_batch_resends_nothing(deployment):
    d = deployment
    for name in ("plain_consulta_rnp.eml", "plain_consulta_seace.eml"):
        d.deliver(fixture_bytes(name), NOW)
    crashed = d.buzon("run", "--once", crash_at="after_send", check=False)
    assert crashed.returncode == -signal.SIGKILL
    sent = len(d.sent_by_buzon())
    assert sent >= 1
    d.buzon("run", "--once")
    d.buzon("run", "--once")
    assert len(d.acknowledgements()) == 2  # deliveries, not only Message-IDs
    assert [row[2] for row in acks_sent(d)] == ["done", "done"]
