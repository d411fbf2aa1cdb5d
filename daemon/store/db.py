"""The database: engine set-up, lookups for the pipeline, and the one-transaction record."""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, inspect, text, update
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, create_engine, select

from daemon.decide.pipeline import counted
from daemon.store.database_file import DatabaseMissing, check_database_file
from daemon.store.models import (
    QUARANTINED,
    MailboxState,
    MailRecord,
    MessageLink,
    OutboxAction,
    SuggestedAnswer,
    Ticket,
    TraceEvent,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_aware(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; they were stored in UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


READ_ONLY = "buzon_read_only"


def reading(engine: Engine) -> Session:
    """A session for reading only: on SQLite it does not wait for the write lock. It
    must not write (a read transaction that then writes can fail on SQLite, which is
    why every other transaction takes the lock up front)."""
    return Session(engine.execution_options(**{READ_ONLY: True}))


def make_engine(url: str, create: bool = True) -> Engine:
    """An engine for SQLite (the default) or PostgreSQL, with the tables created. With
    `create=False` (the read-only commands) nothing is created: a database that does not
    exist yet, or has no tables, raises DatabaseMissing."""
    check_database_file(url, must_exist=not create)
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith("sqlite"):
        engine = create_engine(parsed, pool_pre_ping=True)
        _create_or_require_tables(engine, create)
        return engine
    database = parsed.database
    if create and database and database != ":memory:":
        path = Path(database)
        path.parent.mkdir(parents=True, exist_ok=True)
        # The database holds citizens' addresses: readable by buzon's user alone.
        path.touch(mode=0o600, exist_ok=True)
        os.chmod(path, 0o600)
    engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_setup(connection, _record):
        connection.isolation_level = None  # transactions begin in _immediate below
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _immediate(connection):
        # Writers take the lock up front, so two writers never deadlock on upgrade. A
        # read (reading() below) takes none: in WAL mode it reads its snapshot while the
        # intake's transaction holds the write lock, instead of waiting for it.
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    _create_or_require_tables(engine, create)
    return engine


def _create_or_require_tables(engine: Engine, create: bool) -> None:
    if create:
        SQLModel.metadata.create_all(engine)
    elif not inspect(engine).has_table(Ticket.__tablename__):
        raise DatabaseMissing(f"the database {engine.url.render_as_string()} holds no "
                                  "buzon tables yet (`buzon run` creates them)")


def reserve_ticket_numbers(session: Session, prefix: str, year: int, count: int = 1) -> int:
    """Atomically take `count` numbers of a prefix and year; returns the last one taken
    (one INSERT ... ON CONFLICT ... RETURNING, safe under concurrency, SQLite or PostgreSQL)."""
    row = session.exec(
        text(
            "INSERT INTO ticket_sequence (prefix, year, value) VALUES (:prefix, :year, :n) "
            "ON CONFLICT (prefix, year) DO UPDATE SET value = ticket_sequence.value + :n "
            "RETURNING value"
        ).bindparams(prefix=prefix, year=year, n=count)
    ).one()
    return int(row[0])


def next_ticket_number(session: Session, prefix: str, year: int) -> int:
    return reserve_ticket_numbers(session, prefix, year)


class TicketNumbers:
    """Ticket numbers taken from the sequence a block at a time (one statement per block
    instead of one per ticket). Numbers a batch did not use go back before it commits, so
    the numbering has no gaps: the sequence row stays locked until the commit."""

    def __init__(self, session: Session, block: int = 64):
        self.session, self.block = session, block
        self._ranges: dict[tuple[str, int], tuple[int, int]] = {}

    def take(self, prefix: str, year: int) -> int:
        following, last = self._ranges.get((prefix, year), (1, 0))
        if following > last:
            last = reserve_ticket_numbers(self.session, prefix, year, self.block)
            following = last - self.block + 1
        self._ranges[(prefix, year)] = (following + 1, last)
        return following

    def forget(self) -> None:
        """Drop the reserved ranges (after a rollback took their reservation back)."""
        self._ranges.clear()

    def give_back_unused(self) -> None:
        for (prefix, year), (following, last) in self._ranges.items():
            if following <= last:
                self.session.exec(text(
                    "UPDATE ticket_sequence SET value = :used "
                    "WHERE prefix = :prefix AND year = :year AND value = :last"
                ).bindparams(used=following - 1, prefix=prefix, year=year, last=last))
        self._ranges.clear()


def format_ticket_id(prefix: str, year: int, number: int) -> str:
    return f"{prefix}-{year:04d}-{number:06d}"


def sent_query(kind: str, start: datetime, end: datetime, *columns):
    """`columns` of the tickets received between start and end that got an
    acknowledgement (kind "ack") or a suggested reply ("draft"): what the caps count."""
    query = select(*columns).select_from(Ticket).where(
        Ticket.received_at >= start.astimezone(UTC), Ticket.received_at <= end.astimezone(UTC))
    if kind == "ack":
        return query.where(Ticket.acknowledged == True)  # noqa: E712
    return query.join(SuggestedAnswer, SuggestedAnswer.ticket_id == Ticket.id)


@dataclass
class DatabaseLookups:
    """The pipeline's read-only questions, answered from one session."""

    session: Session

    def ticket_by_reference(self, mailbox, ticket_ids, message_ids):
        if ticket_ids:
            row = self.session.exec(
                select(Ticket.id, Ticket.folder)
                .where(Ticket.id.in_(ticket_ids), Ticket.mailbox == mailbox)
            ).first()
            if row:
                return row[0], row[1]
        if message_ids:
            row = self.session.exec(
                select(Ticket.id, Ticket.folder)
                .join(MessageLink, MessageLink.ticket_id == Ticket.id)
                .where(MessageLink.message_id.in_(message_ids), Ticket.mailbox == mailbox)
            ).first()
            if row:
                return row[0], row[1]
        return None

    def duplicate_of(self, mailbox, message_id, sha256):
        row = self.session.exec(
            select(MailRecord.ticket_id, MailRecord.destination)
            .where(MailRecord.mailbox == mailbox, MailRecord.sha256 == sha256,
                   MailRecord.message_id == message_id, MailRecord.outcome != QUARANTINED)
        ).first()
        if row is None:
            return None
        return row[0] or "", row[1] or ""

    def is_answered(self, ticket_id):
        ticket = self.session.get(Ticket, ticket_id)
        return ticket is not None and ticket.answered_at is not None

    def ticket(self, ticket_id: str) -> dict | None:
        found = self.session.get(Ticket, ticket_id)
        return found.model_dump() if found else None

    def latest_ticket_of(self, citizen_address: str, other_than_mailbox: str) -> str:
        found = self.session.exec(
            select(Ticket.id).where(Ticket.citizen_address == citizen_address,
                                    Ticket.mailbox != other_than_mailbox)
            .order_by(Ticket.received_at.desc())).first()
        return found or ""

    def is_own_card(self, mailbox: str, message_id: str) -> bool:
        return self.session.exec(select(OutboxAction.id).where(
            OutboxAction.action == "card", OutboxAction.mailbox == mailbox,
            OutboxAction.message_id == message_id)).first() is not None

    def sent_between(self, kind: str, start: datetime, end: datetime
                     ) -> list[tuple[str, datetime]]:
        """(citizen address, arrival) of every ticket received between start and end
        that got an acknowledgement (kind "ack") or a suggested reply ("draft")."""
        query = sent_query(kind, start, end, Ticket.citizen_address, Ticket.received_at)
        return [(address, as_aware(at)) for address, at in self.session.exec(query)]

    def acknowledgements(self, key, start, end):
        return self._count("ack", key, start, end)

    def drafts(self, key, start, end):
        return self._count("draft", key, start, end)

    def _count(self, kind: str, key: str, start: datetime, end: datetime) -> int:
        return counted(key, (address for address, _ in self.sent_between(kind, start, end)))


def mailbox_state(session: Session, mailbox: str, folder: str) -> MailboxState:
    state = session.get(MailboxState, (mailbox, folder))
    if state is None:
        state = MailboxState(mailbox=mailbox, folder=folder)
        session.add(state)
        session.flush()
    return state


@contextmanager
def new_in_folder(engine: Engine, client, mailbox: str, folder: str, key: str | None = None):
    """(session, UIDs that arrived in `folder` since the last look, its UIDVALIDITY); the
    position moves
    on, with whatever the caller wrote in the session, when the block ends without error.
    A new UIDVALIDITY starts over from UID 0."""
    uidvalidity = client.select(folder)
    with Session(engine) as session:
        state = mailbox_state(session, mailbox, key or folder)
        if state.uidvalidity != uidvalidity:
            state.uidvalidity, state.last_uid = uidvalidity, 0
        uids = client.uids_after(state.last_uid)
        yield session, uids, uidvalidity
        if uids:
            state.last_uid = max(uids)
        session.add(state)
        session.commit()


def record_heartbeat(engine: Engine, mailbox: str, folder: str, note: str, now: datetime) -> None:
    with Session(engine) as session:
        state = mailbox_state(session, mailbox, folder)
        state.heartbeat_at = now
        state.heartbeat_note = note[:200]
        session.add(state)
        session.commit()


def heartbeats(engine: Engine) -> dict[str, MailboxState]:
    """Each mailbox's latest heartbeat (its watcher's state row that has one)."""
    latest: dict[str, MailboxState] = {}
    with reading(engine) as session:
        for state in session.exec(select(MailboxState).where(
                MailboxState.heartbeat_at.is_not(None))):
            known = latest.get(state.mailbox)
            if known is None or as_aware(state.heartbeat_at) > as_aware(known.heartbeat_at):
                latest[state.mailbox] = state
        session.expunge_all()
    return latest


def stale_seconds(state: MailboxState, now: datetime) -> float:
    return (now - as_aware(state.heartbeat_at)).total_seconds()


def pending_actions(session: Session, mailbox: str, after_id: int = 0,
                    limit: int | None = None) -> list[OutboxAction]:
    """Pending actions in the order they were planned, from after `after_id`."""
    return list(session.exec(
        select(OutboxAction)
        .where(OutboxAction.mailbox == mailbox, OutboxAction.status == "pending",
               OutboxAction.id > after_id)
        .order_by(OutboxAction.id).limit(limit)
    ))


def mark_failed(engine: Engine, ids: Iterable[int], error: str) -> None:
    """Actions that cannot be done (what was done goes through the outbox journal), in
    one statement per chunk."""
    with Session(engine) as session:
        for chunk in chunks(list(ids)):
            session.exec(update(OutboxAction).where(OutboxAction.id.in_(chunk)).values(
                status="failed", attempts=OutboxAction.attempts + 1, last_error=error[:500]))
        session.commit()


UPDATE_CHUNK = 500  # ids per UPDATE statement (SQLite's bound-parameter limits)


def chunks(items: list, size: int = UPDATE_CHUNK) -> list[list]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def add_trace(session: Session, ticket_id: str, event_name: str, detail: str, at: datetime,
              actor: str = "buzon") -> None:
    session.add(TraceEvent(ticket_id=ticket_id, at=at, event=event_name, actor=actor,
                           detail=detail[:2000]))
