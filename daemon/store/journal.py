"""The outbox journal: what the outbox did, recorded the moment it is done, without a
database transaction per action. Three kinds of line:

- `<id> <Message-ID>`: the relay accepted that mail (the only kind before 2026-12-04);
- `done <id>`: a keyword, flag, move or copy was applied on the IMAP server;
- `tried <id>`: a copy is about to be appended (after a crash it is looked for first).

A bookkeeping thread (JournalFolder) folds the journal into the database in bulk while
the outbox goes on, so the IMAP work and the relay never wait for the database's write
lock (on SQLite the intake's batch transaction holds it). The outbox also folds it at
the start and the end of each flush, so a buzon killed while acknowledgements are
leaving resends on restart only the mails that were in flight, at most one per open
connection, and repeats no harmless IMAP work it had recorded.

One file per mailbox, named by its address: only the holder of the mailbox's lease
(daemon.store.leases) flushes that mailbox, so it alone appends to and folds its file.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import case, tuple_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from daemon.config import Settings
from daemon.mail.capability import KEPT_PREFIX as CAPABILITY_KEPT
from daemon.store.db import chunks, utcnow
from daemon.store.models import OutboxAction

log = logging.getLogger("daemon.outbox")

def journal_path(engine: Engine, settings: Settings, mailbox: str) -> Path | None:
    """`smtp.journal_dir`, else beside a SQLite database, else (PostgreSQL) systemd's
    $STATE_DIRECTORY or the working directory (/var/lib/buzon in systemd/buzon.service).
    None for an in-memory database: a process's own, gone with it anyway."""
    directory = settings.smtp.journal_dir
    url = engine.url
    if directory is None and url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        directory = Path(url.database).parent
    if directory is None:
        directory = Path(os.environ.get("STATE_DIRECTORY", "").split(":")[0] or ".")
    address = settings.mailboxes[mailbox].address
    safe = "".join(c if c.isalnum() else "_" for c in address)
    return Path(directory).resolve() / f"sent-{safe}.journal"


@dataclass
class Entries:
    """What a journal holds: mails sent (id → Message-ID), actions done, copies tried."""

    sent: dict[int, str] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    tried: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.sent or self.done or self.tried)


def parse(lines: list[str]) -> Entries:
    """The entries of complete lines; a line of no known kind is left out."""
    found = Entries()
    for line in lines:
        first, _, rest = line.partition(" ")
        if first.isdigit() and rest:
            found.sent.setdefault(int(first), rest)
        elif first in ("done", "tried") and rest.isdigit():
            (found.done if first == "done" else found.tried).add(int(rest))
    return found


def _complete_lines(path: Path) -> list[str]:
    """The file's lines; a last line without its newline was torn by a crash mid-write."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    complete, _, _torn = data.rpartition(b"\n")
    return complete.decode("utf-8", "replace").split("\n") if complete else []


class OutboxJournal:
    """Append-only lines in a file; with no path, kept in memory only. Appends come from
    several threads (the outbox's, the SMTP loop's); a fold moves what was appended so
    far aside (to `<path>.folding`) and appends go on into a new file meanwhile."""

    def __init__(self, path: Path | None):
        self.path = path
        self.folding = path.with_name(path.name + ".folding") if path else None
        self._lock = threading.Lock()  # appends and the move aside
        self._fold_lock = threading.Lock()  # one fold at a time
        self._fd: int | None = None
        self._unwritten: list[str] = []  # lines the file did not take (no path, disk full)
        self._pending = False  # appended since the last move aside

    def sent(self, action_id: int, message_id: str) -> None:
        """The relay accepted this mail."""
        self._write([f"{action_id} {message_id}"])

    def done(self, action_ids: list[int]) -> None:
        """These IMAP actions were applied."""
        self._write([f"done {number}" for number in action_ids])

    def tried(self, action_ids: list[int]) -> None:
        """These copies are about to be appended: recorded before the APPEND is sent."""
        self._write([f"tried {number}" for number in action_ids])

    @property
    def pending(self) -> bool:
        """Something was appended since the last fold took the journal."""
        return self._pending

    def _write(self, lines: list[str]) -> None:
        """One write(2) on an O_APPEND descriptor puts the lines in the page cache: they
        survive the process being killed the next instant. No fsync: this guards against
        a killed process, not a lost machine (after a power cut a mail is only sent
        again, with the same Message-ID, and a keyword added again)."""
        if not lines:
            return
        with self._lock:
            self._pending = True
            if self.path is None:
                self._unwritten += lines
                return
            try:
                if self._fd is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                       0o600)
                os.write(self._fd, "".join(line + "\n" for line in lines).encode())
            except OSError as exc:  # a full disk: the fold still marks them, from memory
                self._unwritten += lines
                log.warning("outbox journal %s not written (a crash now would repeat "
                            "%d actions): %s", self.path, len(lines), exc)

    def take(self) -> tuple[Entries, list[str]]:
        """Move the journal aside for folding: its entries (with any left aside by a fold
        that failed or was killed) and the lines only memory held."""
        with self._lock:
            self._pending = False
            unwritten, self._unwritten = self._unwritten, []
            if self.path is not None and self.path.exists():
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
                if not self.folding.exists():
                    os.replace(self.path, self.folding)
                else:  # a fold left it: the new lines join it, then the file starts again
                    with open(self.folding, "ab") as aside:
                        aside.write(self.path.read_bytes())
                    os.truncate(self.path, 0)
        lines = _complete_lines(self.folding) if self.folding else []
        return parse(lines + unwritten), unwritten

    def folded(self) -> None:
        """What take() moved aside is in the database: forget it."""
        if self.folding is not None:
            self.folding.unlink(missing_ok=True)

    def put_back(self, unwritten: list[str]) -> None:
        """A fold failed: memory's lines wait for the next one (the file's stay aside)."""
        with self._lock:
            self._unwritten = unwritten + self._unwritten
            self._pending = True

    def entries(self) -> Entries:
        """What the journal holds now, folded or not (for tests and checks)."""
        with self._lock:
            lines = (_complete_lines(self.folding) if self.folding else []) + \
                (_complete_lines(self.path) if self.path else []) + self._unwritten
        return parse(lines)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> OutboxJournal:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def fold(engine: Engine, journal: OutboxJournal) -> int:
    """Record the journal in the database in bulk, then forget it; returns how many
    actions were marked done now (those already done, or whose Message-ID is not the
    action's, are left alone). Should the database fail, nothing is lost: the lines
    wait for the next fold."""
    with journal._fold_lock:
        entries, unwritten = journal.take()
        if not entries:
            journal.folded()
            return 0
        try:
            marked = apply(engine, entries)
        except BaseException:
            journal.put_back(unwritten)
            raise
        journal.folded()
        return marked


def apply(engine: Engine, entries: Entries) -> int:
    """One transaction, one UPDATE per 500 actions of each kind. A copy tried counts a
    try; an action done is done with its try counted. A mail sent is done too, its
    try counted and a capability request's text dropped (it holds the secret; the
    relay has it now, the database keeps only the digest). Matching the Message-ID
    too keeps a journal from another database out."""
    sent = list(entries.sent.items())
    marked = 0
    with Session(engine) as session:
        for ids in chunks(sorted(entries.tried)):
            session.execute(update(OutboxAction)
                            .where(OutboxAction.status == "pending", OutboxAction.id.in_(ids))
                            .values(attempts=OutboxAction.attempts + 1))
        for ids in chunks(sorted(entries.done)):
            marked += session.execute(
                update(OutboxAction)
                .where(OutboxAction.status == "pending", OutboxAction.id.in_(ids))
                .values(status="done", attempts=OutboxAction.attempts + 1, last_error="",
                        done_at=utcnow())).rowcount
        for pairs in chunks(sent):
            marked += session.execute(
                update(OutboxAction)
                .where(OutboxAction.status == "pending", OutboxAction.action == "send",
                       tuple_(OutboxAction.id, OutboxAction.message_id).in_(pairs))
                .values(status="done", attempts=OutboxAction.attempts + 1, last_error="",
                        done_at=utcnow(),
                        raw=case((OutboxAction.message_id.startswith(CAPABILITY_KEPT), None),
                                 else_=OutboxAction.raw))).rowcount
        session.commit()
    return marked


class JournalFolder:
    """Folds a journal into the database from a thread of its own, every `every`
    seconds while something is pending, until closed; close() folds what is left and
    raises if that fails. A fold that fails meanwhile is logged and tried again: the
    lines wait in the journal."""

    # Each fold takes the write lock the intake's batch transaction also needs: once a
    # second is often enough (the journal, not the fold, is what a crash relies on).
    def __init__(self, engine: Engine, journal: OutboxJournal, every: float = 1.0):
        self.engine, self.journal, self.every = engine, journal, every
        self.marked = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-bookkeeping",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if not self.journal.pending:
                continue
            try:
                self.marked += fold(self.engine, self.journal)
            except Exception as exc:  # noqa: BLE001 - the database may be restarting
                log.warning("the outbox journal could not be folded yet: %s", exc)

    def close(self) -> int:
        """Stop folding in the background, fold the rest; the total marked done."""
        self._stop.set()
        self._thread.join()
        self.marked += fold(self.engine, self.journal)
        return self.marked

    def __enter__(self) -> JournalFolder:
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # leaving on an error: what was done is still recorded where possible
            self.close()
        except Exception as exc:  # noqa: BLE001 - the first error is the one raised
            log.warning("the outbox journal could not be folded: %s", exc)
