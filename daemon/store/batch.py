"""Rows one intake batch writes, held until the batch's transaction inserts them in bulk,
and the pipeline lookups that must already see them (a reply in the same batch, say)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, tzinfo
from functools import cache, lru_cache

from pydantic_core import PydanticUndefined
from sqlalchemy import func, insert
from sqlmodel import Session, SQLModel, select

from daemon.decide.pipeline import cap_keys, windows
from daemon.store.db import DatabaseLookups, TicketNumbers, sent_query
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

# A backlog counts the same senders' addresses again for every batch.
_cap_keys = lru_cache(maxsize=1 << 14)(cap_keys)

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
        # The caps' counters of each window the batch's mail falls in, by (kind, start,
        # end): the database's at prefetch, plus what the batch planned since. An hour
        # window holds only the total ("all"), the only counter an hour caps.
        self._counts: dict[tuple[str, datetime, datetime], Counter] = {}
        self._totals_only: set[tuple[str, datetime, datetime]] = set()

    def prefetch(self, mailbox: str, arrivals: list, zone: tzinfo) -> None:
        shas = {arrival.sha256 for arrival in arrivals}
        self._recorded = {}
        for message_id, sha, ticket_id, destination in self.session.exec(
            select(MailRecord.message_id, MailRecord.sha256, MailRecord.ticket_id,
                   MailRecord.destination)
            .where(MailRecord.mailbox == mailbox, MailRecord.sha256.in_(shas),
                   MailRecord.outcome != QUARANTINED)
        ):
            self._recorded.setdefault((message_id, sha), (ticket_id or "", destination))
        # The caps count per sender and per domain in the office day of arrival, and for
        # everyone in its hour (daemon.decide.pipeline.plan): the windows of this batch's
        # mail, counted by the database, one row per address (a backlog's earlier
        # batches are not read again row by row for every batch).
        self._counts, self._totals_only = {}, set()
        for day, hour in {windows(a.internaldate, zone) for a in arrivals}:
            for kind in ("ack", "draft"):
                if (kind, *day) not in self._counts:
                    self._counts[(kind, *day)] = self._by_address(kind, *day)
            if ("ack", *hour) not in self._counts:
                self._counts[("ack", *hour)] = Counter(all=self._total("ack", *hour))
                self._totals_only.add(("ack", *hour))

    def _by_address(self, kind: str, start: datetime, end: datetime) -> Counter:
        counts: Counter = Counter()
        for address, sent in self.session.exec(
                sent_query(kind, start, end, Ticket.citizen_address, func.count())
                .group_by(Ticket.citizen_address)):
            for name in _cap_keys(address):
                counts[name] += sent
        return counts

    def _total(self, kind: str, start: datetime, end: datetime) -> int:
        return self.session.exec(sent_query(kind, start, end, func.count())).one()

    def count_sent(self, kind: str, address: str, at: datetime) -> None:
        """An acknowledgement or a draft ("ack", "draft") this batch planned and keeps."""
        for (counted_kind, start, end), counts in self._counts.items():
            if counted_kind == kind and start <= at <= end:
                counts.update(_cap_keys(address))

    def _count(self, kind: str, key: str, start: datetime, end: datetime) -> int:
        window = (kind, start, end)
        if window in self._counts and (key == "all" or window not in self._totals_only):
            return self._counts[window][key]
        return super()._count(kind, key, start, end)  # a window no mail of the batch is in

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
