"""Rows one intake batch writes, held until the batch's transaction inserts them in bulk,
and the pipeline lookups that must already see them (a reply in the same batch, say)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from functools import cache

from pydantic_core import PydanticUndefined
from sqlalchemy import insert
from sqlmodel import Session, SQLModel, select

from daemon.decide.pipeline import cap_keys
from daemon.store.db import DatabaseLookups, TicketNumbers
from daemon.store.models import (
    QUARANTINED,
    MailRecord,
    MessageLink,
    Notice,
    OutboxAction,
    SuggestedAnswer,
    Ticket,
    TraceEvent,
)

INSERT_ORDER = (Ticket, MessageLink, TraceEvent, OutboxAction, MailRecord, Notice,
                SuggestedAnswer)


@cache
def _defaults(model: type[SQLModel]) -> dict:
    """Every column's default, so all rows of a bulk insert carry the same keys."""
    defaults = {}
    for name, field in model.model_fields.items():
        if name == "id" and model is not Ticket:
            continue  # autoincrement
        defaults[name] = None if field.default is PydanticUndefined else field.default
    return defaults


class PendingRows:
    def __init__(self) -> None:
        self.rows: dict[type, list[dict]] = defaultdict(list)
        self.tickets: dict[str, dict] = {}
        self.links: dict[str, str] = {}
        self.mails: dict[tuple[str, str], tuple[str, str]] = {}

    def clear(self) -> None:
        self.__init__()

    def add(self, model: type[SQLModel], **values) -> dict:
        row = {**_defaults(model), **values}
        self.rows[model].append(row)
        if model is Ticket:
            self.tickets[row["id"]] = row
        elif model is MessageLink:
            self.links.setdefault(row["message_id"], row["ticket_id"])
        elif model is MailRecord:
            self.mails[(row["message_id"], row["sha256"])] = (row["ticket_id"] or "",
                                                               row["destination"])
        return row

    def has_link(self, message_id: str, ticket_id: str) -> bool:
        return any(r["message_id"] == message_id and r["ticket_id"] == ticket_id
                   for r in self.rows[MessageLink])

    def write(self, session: Session) -> None:
        """Insert everything held, in bulk; afterwards the database answers alone."""
        for model in INSERT_ORDER:
            if self.rows[model]:
                session.execute(insert(model.__table__), self.rows[model])
        self.clear()


def trace(pending: PendingRows, ticket_id: str, event: str, detail: str, at: datetime) -> None:
    pending.add(TraceEvent, ticket_id=ticket_id, at=at, event=event, detail=detail[:2000])


class BatchLookups(DatabaseLookups):
    """The database's answers, plus what this batch holds but has not yet inserted.

    `prefetch` reads in a few queries what the pipeline would otherwise ask once per mail;
    what the batch plans is counted in with `count_sent` once it is sure to be kept.
    """

    def __init__(self, session: Session, pending: PendingRows):
        super().__init__(session)
        self.pending = pending
        self.numbers = TicketNumbers(session)
        self.clock: datetime | None = None  # the time due decisions are made at
        self._recorded: dict[tuple[str, str], tuple[str, str]] | None = None
        self._covered: tuple[datetime, datetime] | None = None  # what `_sent` holds
        self._sent: dict[str, list[tuple[str, datetime]]] = {"ack": [], "draft": []}
        self._counts: dict[tuple[str, datetime, datetime], Counter] = {}

    def prefetch(self, mailbox: str, arrivals: list) -> None:
        shas = {arrival.sha256 for arrival in arrivals}
        self._recorded = {}
        for message_id, sha, ticket_id, destination in self.session.exec(
            select(MailRecord.message_id, MailRecord.sha256, MailRecord.ticket_id,
                   MailRecord.destination)
            .where(MailRecord.mailbox == mailbox, MailRecord.sha256.in_(shas),
                   MailRecord.outcome != QUARANTINED)
        ):
            self._recorded.setdefault((message_id, sha), (ticket_id or "", destination))
        if not arrivals:
            self._covered = None
            return
        # Every acknowledgement and draft around the batch's arrivals: the caps count per
        # sender, per domain and for everyone, each in a day or an hour of arrival.
        earliest = min(a.internaldate for a in arrivals) - timedelta(days=1)
        latest = max(a.internaldate for a in arrivals) + timedelta(days=1)
        self._covered = (earliest, latest)
        self._sent = {kind: self.sent_between(kind, earliest, latest) for kind in self._sent}
        self._counts = {}

    def count_sent(self, kind: str, address: str, at: datetime) -> None:
        """An acknowledgement or a draft ("ack", "draft") this batch planned and keeps."""
        self._sent[kind].append((address, at))
        for (counted_kind, start, end), counts in self._counts.items():
            if counted_kind == kind and start <= at <= end:
                counts.update(cap_keys(address))

    def _count(self, kind: str, key: str, start: datetime, end: datetime) -> int:
        if self._covered is None or not self._covered[0] <= start <= end <= self._covered[1]:
            return super()._count(kind, key, start, end)
        counts = self._counts.get((kind, start, end))
        if counts is None:  # one pass per window, then kept up to date by count_sent
            counts = self._counts[(kind, start, end)] = Counter(
                name for address, at in self._sent[kind] if start <= at <= end
                for name in cap_keys(address))
        return counts[key]

    def ticket_by_reference(self, mailbox, ticket_ids, message_ids):
        for ticket_id in ticket_ids:
            row = self.pending.tickets.get(ticket_id)
            if row and row["mailbox"] == mailbox:
                return row["id"], row["folder"]
        for message_id in message_ids:
            row = self.pending.tickets.get(self.pending.links.get(message_id, ""))
            if row and row["mailbox"] == mailbox:
                return row["id"], row["folder"]
        return super().ticket_by_reference(mailbox, ticket_ids, message_ids)

    def duplicate_of(self, mailbox, message_id, sha256):
        held = self.pending.mails.get((message_id, sha256))
        if held is not None:
            return held
        if self._recorded is not None:
            return self._recorded.get((message_id, sha256))
        return super().duplicate_of(mailbox, message_id, sha256)

    def is_answered(self, ticket_id):
        if ticket_id in self.pending.tickets:
            return False
        return super().is_answered(ticket_id)

    def ticket(self, ticket_id: str) -> dict | None:
        row = self.pending.tickets.get(ticket_id)
        if row is not None:
            return row
        found = self.session.get(Ticket, ticket_id)
        return found.model_dump() if found else None

    def has_link(self, message_id: str, ticket_id: str) -> bool:
        return (self.pending.has_link(message_id, ticket_id)
                or self.session.get(MessageLink, (message_id, ticket_id)) is not None)
