"""The decision pipeline: guard → thread → receipt → classify → ticket → plan (pure).

Each stage reads the Inbound record and the decision so far and returns the decision
extended; none touches IMAP, SMTP or the database. Lookups the stages need (known
tickets, duplicates, acknowledgements and drafts already written) come in through
`Lookups`.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from classifiers.outcomes import OFF_TOPIC, SPAM
from classifiers.vague import too_vague
from daemon.config import Settings
from daemon.decide.calendar import WorkCalendar
from daemon.decide.courtesy import is_courtesy
from daemon.decide.routing import CompiledRule, route
from daemon.decide.trust import mailbox_key, vouched_for
from daemon.mail.automatic import automatic_signal
from daemon.mail.parsing import Inbound, own_part

TICKET_ID = re.compile(r"\[([A-Z]+-[0-9]{4}-[0-9]+)\]")
# In staff's own words a ticket is often named without brackets ("la consulta C-2026-...").
BARE_TICKET_ID = re.compile(r"\b([A-Z]{1,3}-[0-9]{4}-[0-9]{6})\b")


class Lookups(Protocol):
    def ticket_by_reference(
        self, mailbox: str, ticket_ids: tuple[str, ...], message_ids: tuple[str, ...]
    ) -> tuple[str, str] | None:
        """(ticket id, its folder) of a ticket of this mailbox named by id or Message-ID."""

    def duplicate_of(self, mailbox: str, message_id: str, sha256: str) -> tuple[str, str] | None:
        """(ticket id or '', its destination folder) of an identical mail already recorded."""

    def acknowledgements(self, key: str, start: datetime, end: datetime) -> int:
        """How many acknowledgements went to the addresses `key` stands for (see
        cap_keys), for mail received between start and end."""

    def drafts(self, key: str, start: datetime, end: datetime) -> int:
        """How many suggested replies were put in Drafts for such mail."""

    def is_answered(self, ticket_id: str) -> bool:
        """Whether the ticket already has its answer."""

    def ticket(self, ticket_id: str) -> dict | None:
        """The ticket's row, or None when there is no such ticket."""

    def latest_ticket_of(self, citizen_address: str, other_than_mailbox: str) -> str:
        """The citizen's latest ticket in another mailbox ('' when none)."""

    def is_own_card(self, mailbox: str, message_id: str) -> bool:
        """Whether this Message-ID is a ticket card buzon appended in this mailbox."""


class Classifier(Protocol):
    def predict(self, inbound: Inbound) -> tuple[str, float]:
        """(category folder, confidence between 0 and 1)."""


@dataclass(frozen=True)
class Arrival:
    """Facts about a mail that come from the server, not from its content."""

    mailbox: str
    kind: str  # consulta or sugerencia
    internaldate: datetime
    sha256: str


@dataclass(frozen=True)
class Decision:
    outcome: str = ""  # ticket, followup, automatic, duplicate, quarantine
    stage: str = ""
    reason: str = ""
    folder: str | None = None  # where the mail goes; None leaves it in the inbox
    ticket_id: str | None = None  # an existing ticket this mail joins
    effective_receipt: datetime | None = None
    deadline: datetime | None = None
    category: str | None = None
    classification_source: str = ""
    confidence: float | None = None
    acknowledge: bool = False
    echo: bool = False  # the acknowledgement may repeat the mail's Subject and sender name
    draft: bool = False  # a suggested reply may go to Drafts (under the sender's cap)
    cap_reached: CapReached | None = None  # the domain or hourly cap this mail ran into
    linked_ticket: str = ""  # an answered ticket this new one continues
    notes: tuple[str, ...] = field(default_factory=tuple)
    # A stage that raised: a fault of buzon (or its configuration), not of the mail. The
    # exception's type and where it was raised, which tells one fault from another.
    failure: str = ""

    @property
    def final(self) -> bool:
        return self.outcome in ("automatic", "card", "duplicate", "quarantine", "followup",
                                "spam")


@dataclass(frozen=True)
class PipelineContext:
    settings: Settings
    calendar: WorkCalendar
    rules: tuple[CompiledRule, ...]
    lookups: Lookups
    classifier: Classifier | None = None
    confidence_threshold: float = 0.0
    own_addresses: frozenset[str] = frozenset()
    organ_addresses: frozenset[str] = frozenset()


Stage = Callable[[Inbound, Arrival, Decision, PipelineContext], Decision]


def guard(
    inbound: Inbound, arrival: Arrival, decision: Decision, ctx: PipelineContext
) -> Decision:
    folders = ctx.settings.folders
    if inbound.problem:
        return replace(decision, outcome="quarantine", reason=inbound.problem,
                       folder=folders.quarantine)
    signal = automatic_signal(
        inbound, ctx.settings.automatic_mail.noreply_patterns,
        [ctx.settings.own_message_id_domain()],
    )
    if inbound.from_address in ctx.own_addresses and inbound.message_id and \
            ctx.lookups.is_own_card(arrival.mailbox, inbound.message_id):
        # A ticket card appended to the INBOX (where suggestions stay): left where it is.
        return replace(decision, outcome="card", reason="buzon's own ticket card",
                       folder=None, acknowledge=False)
    if signal is None and inbound.from_address in ctx.own_addresses:
        signal = f"sent by buzon's own mailbox {inbound.from_address}"
    if signal:
        return replace(decision, outcome="automatic", reason=signal, folder=folders.automatic)
    original = ctx.lookups.duplicate_of(arrival.mailbox, inbound.message_id, arrival.sha256)
    if original is not None:
        ticket_id, folder = original
        return replace(decision, outcome="duplicate", ticket_id=ticket_id or None,
                       reason="same Message-ID and content as a mail already recorded",
                       folder=folder or None)
    marked = spam_mark(inbound, ctx.settings.automatic_mail.spam_headers)
    if marked:
        return replace(decision, outcome="spam", reason=f"marked as spam: {marked}",
                       folder=folders.off_topic)
    return decision


def spam_mark(inbound: Inbound, spam_headers: dict[str, str]) -> str:
    """The border filter's spam mark on this mail ("X-Spam-Flag: YES"), or ''."""
    for name, start in spam_headers.items():
        value = inbound.headers.get(name.lower(), "")
        if value.strip().lower().startswith(start.lower()):
            return f"{name}: {value[:80]}"
    return ""


def referenced_ticket(lookups: Lookups, mailbox: str, inbound: Inbound) -> tuple[str, str] | None:
    """The ticket a mail names: by a ticket id in its Subject, or by In-Reply-To and
    References pointing to one of the ticket's messages."""
    ticket_ids = tuple(dict.fromkeys(TICKET_ID.findall(inbound.subject)))
    return lookups.ticket_by_reference(mailbox, ticket_ids, inbound.thread_ids)


def thread(
    inbound: Inbound, arrival: Arrival, decision: Decision, ctx: PipelineContext
) -> Decision:
    if inbound.forwarded_by:
        return forwarded(inbound, arrival, decision, ctx)
    known = referenced_ticket(ctx.lookups, arrival.mailbox, inbound)
    if known is None:
        return decision
    ticket_id, folder = known
    # A new ticket for new work only: "Gracias" after the answer joins the answered
    # ticket, where it is recorded as a courtesy (daemon.flows.replies).
    if (ctx.settings.followups.after_answer == "new_ticket"
            and inbound.from_address not in ctx.organ_addresses
            and ctx.lookups.is_answered(ticket_id)
            and not is_courtesy(own_part(inbound.text, inbound.from_name))):
        return replace(decision, linked_ticket=ticket_id,
                       notes=decision.notes + (f"continues the answered ticket {ticket_id}",))
    return replace(decision, outcome="followup", ticket_id=ticket_id, folder=folder or None,
                   reason="joins an existing ticket")


def forwarded(
    inbound: Inbound, arrival: Arrival, decision: Decision, ctx: PipelineContext
) -> Decision:
    """A forward from another of the agency's mailboxes opens a ticket of its own for the
    citizen, linked to the ticket it came from: named in the forward, else the citizen's
    latest ticket in another mailbox."""
    named = [found for found in BARE_TICKET_ID.findall(inbound.forward_note)
             if ctx.lookups.ticket(found) is not None]
    linked = named[0] if named else ctx.lookups.latest_ticket_of(inbound.from_address,
                                                                 arrival.mailbox)
    note = f"forwarded by {inbound.forwarded_by}" + (f", from {linked}" if linked else "")
    return replace(decision, linked_ticket=linked or "", notes=decision.notes + (note,))


def receipt(
    inbound: Inbound, arrival: Arrival, decision: Decision, ctx: PipelineContext
) -> Decision:
    effective = ctx.calendar.effective_receipt(arrival.internaldate)
    deadline = ctx.calendar.deadline(arrival.kind, effective, ctx.settings.deadlines)
    return replace(decision, effective_receipt=effective, deadline=deadline)


def classify(
    inbound: Inbound, arrival: Arrival, decision: Decision, ctx: PipelineContext
) -> Decision:
    if arrival.kind != "consulta":
        return decision  # suggestions wait in their inbox for the person responsible
    rule = route(inbound, ctx.rules)
    if rule is not None:
        return replace(decision, category=rule.folder, folder=rule.folder,
                       classification_source="rule", confidence=1.0,
                       notes=decision.notes + (f"routing rule {rule.name}",))
    if ctx.classifier is not None:
        try:
            category, confidence = ctx.classifier.predict(inbound)
        except Exception as exc:  # noqa: BLE001 - the model is optional: the mail waits
            return replace(decision, folder=ctx.settings.folders.review,
                           classification_source="abstain", notes=decision.notes + (
                               f"the model failed ({type(exc).__name__}): left for review",))
        minimum = ctx.settings.classifier.min_meaningful_words
        if too_vague(inbound.question, minimum):  # however sure the model is
            return replace(decision, folder=ctx.settings.folders.review,
                           classification_source="too_short", confidence=confidence,
                           notes=decision.notes + (
                               f"fewer than {minimum} meaningful words: left for review",))
        if category == SPAM:  # advertising or phishing: no ticket, nobody is answered
            return replace(decision, outcome="spam", folder=ctx.settings.folders.off_topic,
                           classification_source="model", confidence=confidence,
                           reason=f"the model judged it advertising or phishing "
                                  f"({confidence:.2f})")
        if category == OFF_TOPIC:  # for someone else: a ticket, and maybe an orientation
            return replace(decision, folder=ctx.settings.folders.off_topic,
                           classification_source="model", confidence=confidence)
        if confidence >= ctx.confidence_threshold:
            return replace(decision, category=category, folder=category,
                           classification_source="model", confidence=confidence)
        return replace(decision, folder=ctx.settings.folders.review,
                       classification_source="abstain", confidence=confidence)
    return replace(decision, folder=ctx.settings.folders.review, classification_source="abstain")


def ticket(
    inbound: Inbound, arrival: Arrival, decision: Decision, ctx: PipelineContext
) -> Decision:
    return replace(decision, outcome="ticket", reason="new ticket")


def acknowledgement_address(inbound: Inbound) -> str:
    """Where buzon's automatic mail about this mail goes: its From. Never a Reply-To: it is
    proven by nothing, and anyone can write a victim's address there (RFC 3834 section 4
    sends automatic responses to the sender, never to Reply-To)."""
    return inbound.from_address


def cap_keys(address: str) -> tuple[str, str, str]:
    """The counters an acknowledgement to `address` counts in: its mailbox (lower case,
    +tag dropped), its domain, and everyone's."""
    key = mailbox_key(address)
    return f"to:{key}", f"domain:{key.rpartition('@')[2]}", "all"


def counted(key: str, addresses) -> int:
    """How many of `addresses` count under `key` (one of cap_keys)."""
    return sum(1 for address in addresses if key in cap_keys(address))


@dataclass(frozen=True)
class CapReached:
    """A cap on acknowledgements a mail ran into: its counter and its window."""

    key: str  # domain:<name> or all
    cap: int
    start: datetime  # the window, office time: the day (domain) or the hour (all)
    end: datetime

    @property
    def episode(self) -> str:
        """One key per domain and day, or per hour: the coordinators are told once."""
        window = self.start.strftime("%Y-%m-%d" if self.key != "all" else "%Y-%m-%dT%H")
        return f"ack-cap:{self.key}:{window}"


def windows(moment: datetime, zone) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
    """The office day and the office hour a moment falls in, as (start, end) each."""
    local = moment.astimezone(zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    hour = local.replace(minute=0, second=0, microsecond=0)
    tick = timedelta(microseconds=1)
    return (day, day + timedelta(days=1) - tick), (hour, hour + timedelta(hours=1) - tick)


def may_echo(inbound: Inbound, settings: Settings) -> bool:
    """The acknowledgement repeats the Subject and the sender's name only when the border
    server vouches for the sender's domain: then the one who gets it is the one who wrote
    them. Otherwise anyone could make the mailbox send their text to any address."""
    authserv = settings.trust.authserv_id
    if not authserv or "@" not in inbound.from_address:
        return False
    domain = inbound.from_address.rpartition("@")[2]
    return vouched_for(inbound.trace_fields, authserv, settings.trust.internal_hops,
                       domain).vouched


def plan(
    inbound: Inbound, arrival: Arrival, decision: Decision, ctx: PipelineContext
) -> Decision:
    address = acknowledgement_address(inbound)
    if not address or address in ctx.own_addresses:
        return replace(decision, notes=decision.notes + ("no address to acknowledge",))
    caps = ctx.settings.automatic_mail
    day, hour = windows(arrival.internaldate, ctx.calendar.zone)
    to, domain, everyone = cap_keys(address)
    drafted = ctx.lookups.drafts(to, *day)
    decision = replace(decision, draft=drafted < caps.draft_cap_per_sender_per_day)
    if not decision.draft:
        decision = replace(decision, notes=decision.notes + (
            f"no suggested reply: {drafted} already in Drafts for {address} today "
            f"(cap {caps.draft_cap_per_sender_per_day})",))
    for key, (start, end), cap in ((to, day, caps.ack_cap_per_sender_per_day),
                                   (domain, day, caps.ack_cap_per_domain_per_day),
                                   (everyone, hour, caps.ack_cap_per_hour)):
        sent = ctx.lookups.acknowledgements(key, start, end)
        if sent >= cap:
            reached = CapReached(key, cap, start, end) if key != to else None
            return replace(decision, cap_reached=reached, notes=decision.notes + (
                f"acknowledgement withheld: {sent} already sent ({key}, cap {cap})",))
    return replace(decision, acknowledge=True, echo=may_echo(inbound, ctx.settings))


STAGES: tuple[tuple[str, Stage], ...] = (
    ("guard", guard),
    ("thread", thread),
    ("receipt", receipt),
    ("classify", classify),
    ("ticket", ticket),
    ("plan", plan),
)


def _fault(exc: Exception) -> str:
    """"TypeError at calendar.py:71": the same for every mail the same fault hits."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


def decide(inbound: Inbound, arrival: Arrival, ctx: PipelineContext) -> Decision:
    """Run the stages in order; a stage that raises sends the mail to quarantine."""
    decision = Decision()
    for name, stage in STAGES:
        try:
            decision = replace(stage(inbound, arrival, decision, ctx), stage=name)
        except Exception as exc:  # noqa: BLE001 - one bad mail never stops a mailbox
            reason = f"stage {name} failed: {type(exc).__name__}: {exc}"[:500]
            return Decision(outcome="quarantine", stage=name, reason=reason,
                            folder=ctx.settings.folders.quarantine, failure=_fault(exc))
        if decision.final:
            return decision
    return decision
