"""The sent journal (daemon/store/journal.py): lines appended as the relay accepts each
mail, a torn last line ignored, folded into the database in bulk and emptied; and the
real daemon folding it before it sends anything again."""

from __future__ import annotations

import signal
from datetime import UTC, datetime

import pytest
from conftest import fixture_bytes, sqlite_rows
from sqlalchemy import create_engine, event
from sqlmodel import Session, select

from daemon.config import Settings, load_settings
from daemon.store.db import make_engine
from daemon.store.journal import SentJournal, fold, journal_path
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


def test_lines_are_appended_read_back_and_emptied(tmp_path):
    path = tmp_path / "sent.journal"
    with SentJournal(path) as journal:
        journal.append(7, "<ack.7@buzon.test>")
        journal.append(9, "<ack.9@buzon.test>")
    assert path.read_text() == "7 <ack.7@buzon.test>\n9 <ack.9@buzon.test>\n"
    assert path.stat().st_mode & 0o077 == 0
    later = SentJournal(path)  # the next process, after a kill
    assert later.entries() == [(7, "<ack.7@buzon.test>"), (9, "<ack.9@buzon.test>")]
    later.clear()
    assert path.read_text() == "" and later.entries() == []
    later.append(11, "<ack.11@buzon.test>")  # appending after emptying starts the file again
    later.close()
    assert path.read_text() == "11 <ack.11@buzon.test>\n"


def test_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "sent.journal"
    path.write_bytes(b"3 <ack.3@buzon.test>\n4 <ack.4@buz")  # killed in the middle of a write
    assert SentJournal(path).entries() == [(3, "<ack.3@buzon.test>")]
    path.write_bytes(b"garbage\n\n5 <ack.5@buzon.test>\n")
    assert SentJournal(path).entries() == [(5, "<ack.5@buzon.test>")]


def test_without_a_file_it_keeps_its_lines_in_memory():
    journal = SentJournal(None)
    journal.append(1, "<a@b>")
    assert journal.entries() == [(1, "<a@b>")]
    journal.clear()
    assert journal.entries() == []


def test_folding_marks_the_journaled_mails_done_in_one_update(engine, tmp_path):
    rows = planned(engine, 300)
    [capability] = planned(engine, 1, ticket_id="C-1")
    with Session(engine) as session:  # a capability request: the database keeps the digest
        row = session.get(OutboxAction, capability.id)
        row.message_id = "<sha256:" + "0" * 64 + ">"
        session.add(row)
        session.commit()
    journal = SentJournal(tmp_path / "sent.journal")
    for row in rows[:250]:
        journal.append(row.id, row.message_id)
    journal.append(capability.id, "<sha256:" + "0" * 64 + ">")
    journal.append(rows[260].id, "<another@database>")  # not this action's: left alone
    updates = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: updates.append(statement)
                 if statement.lstrip().upper().startswith("UPDATE") else None)
    assert fold(engine, journal) == 251
    assert len(updates) == 1  # in bulk: one statement, not one per mail
    assert statuses(engine) == [("done", 1, False)] * 250 + [("pending", 0, False)] * 50 + \
        [("done", 1, True)]  # the capability's text dropped once sent
    assert journal.entries() == [] and (tmp_path / "sent.journal").read_text() == ""
    journal.append(rows[0].id, rows[0].message_id)  # already done: folding again changes nothing
    assert fold(engine, journal) == 0
    assert statuses(engine)[0] == ("done", 1, False)
    journal.close()


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
