"""The sent journal: each mail the relay accepted, recorded the moment it is accepted,
without a database transaction per mail. The outbox folds it into the database (one
bulk UPDATE marks those actions done) at the start of each flush and after each batch,
so a buzon killed while acknowledgements are leaving resends on restart only the mails
that were in flight, at most one per open connection.

One file per mailbox, named by its address: only the holder of the mailbox's lease
(daemon.store.leases) flushes that mailbox, so it alone appends to and folds its file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import case, tuple_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from daemon.config import Settings
from daemon.mail.capability import KEPT_PREFIX as CAPABILITY_KEPT
from daemon.store.db import utcnow
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


class SentJournal:
    """Append-only lines "<action id> <Message-ID>"; with no path, kept in memory only."""

    def __init__(self, path: Path | None):
        self.path = path
        self._fd: int | None = None
        self._appended: list[tuple[int, str]] = []  # this process's own, whatever the file

    def append(self, action_id: int, message_id: str) -> None:
        """Record one accepted mail. One write(2) on an O_APPEND descriptor puts the whole
        line in the page cache: it survives the process being killed the next instant.
        No fsync: this guards against a killed process, not a lost machine (after a power
        cut the mail would only be sent again, with the same Message-ID)."""
        self._appended.append((action_id, message_id))
        if self.path is None:
            return
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(self._fd, f"{action_id} {message_id}\n".encode())
        except OSError as exc:  # a full disk: the batch's fold still marks it, from memory
            log.warning("sent journal %s not written (a crash now would resend mail %s): %s",
                        self.path, message_id, exc)

    def entries(self) -> list[tuple[int, str]]:
        """What was recorded, in the file (by any earlier process) and here. A last line
        without its newline was torn by a crash mid-write: it is left out."""
        found = dict(self._appended)
        for line in self._lines():
            number, _, message_id = line.partition(" ")
            if number.isdigit() and message_id:
                found.setdefault(int(number), message_id)
        return list(found.items())

    def _lines(self) -> list[str]:
        if self.path is None:
            return []
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        complete, _, _torn = data.rpartition(b"\n")
        return complete.decode("utf-8", "replace").split("\n") if complete else []

    def clear(self) -> None:
        """Empty it once its lines are in the database (a crash before this point only
        folds them again: marking done is idempotent)."""
        self._appended.clear()
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # O_APPEND: the next line starts the file again
        elif self.path is not None and self.path.exists():
            os.truncate(self.path, 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SentJournal:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def fold(engine: Engine, journal: SentJournal) -> int:
    """Mark the journal's mails done in bulk, then empty it; returns how many were marked
    now (those already done, or whose Message-ID is not the action's, are left alone)."""
    entries = journal.entries()
    marked = mark_sent(engine, entries) if entries else 0
    journal.clear()
    return marked


def mark_sent(engine: Engine, entries: Iterable[tuple[int, str]]) -> int:
    """One UPDATE per 500 mails: done, tried once more, and a capability request's
    text dropped (it holds the secret; the relay has it now, the database keeps only
    the digest). Matching the Message-ID too keeps a journal from another database out."""
    entries = list(entries)
    marked = 0
    with Session(engine) as session:
        for start in range(0, len(entries), 500):
            result = session.execute(
                update(OutboxAction)
                .where(OutboxAction.status == "pending", OutboxAction.action == "send",
                       tuple_(OutboxAction.id, OutboxAction.message_id)
                       .in_(entries[start:start + 500]))
                .values(status="done", attempts=OutboxAction.attempts + 1, last_error="",
                        done_at=utcnow(),
                        raw=case((OutboxAction.message_id.startswith(CAPABILITY_KEPT), None),
                                 else_=OutboxAction.raw)))
            marked += result.rowcount
        session.commit()
    return marked
