"""One trust rule for every command given by mail (a supervisor's verdict, an organ's
answer or verdict, the third level's answer, a survey score or opt-out). It is accepted
only from the address holding the role, in a reply carrying the capability of buzon's
request for that ticket, role and step, and with the border server vouching for the
sender's domain when one is configured. Every capability a reply carries back is spent,
accepted or not: it may now be read by others. A refused command changes nothing, is
traced on the ticket, and reaches the coordinators in one digest per sweep."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from daemon.decide.pipeline import TICKET_ID
from daemon.decide.trust import holds_role, vouched_for
from daemon.mail.capability import carried_digests
from daemon.mail.parsing import Inbound
from daemon.runtime import Runtime
from daemon.store.db import add_trace, as_aware
from daemon.store.models import Capability, Ticket, TrustRefusal
from daemon.store.notify import Grant, plan_mail

log = logging.getLogger("daemon.trust")

# A forwarded request is not a reply: its capability came along, its sender did not
# answer it (and may be handing it to someone else).
_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|rv|reenv(iado)?|tr|wg)\s*:", re.IGNORECASE)

ROLE_NAMES = {"supervisor": "supervisor", "citizen": "citizen of the ticket"}


@dataclass(frozen=True)
class Claim:
    """What a mail speaks for: the role (holder), the step the ticket is waiting for,
    and the addresses that hold the role."""

    holder: str  # supervisor, organ:<NAME>, citizen
    step: str
    addresses: tuple[str, ...]

    @property
    def role_name(self) -> str:
        if self.holder.startswith("organ:"):
            return f"address of organ {self.holder[len('organ:'):]}"
        return ROLE_NAMES.get(self.holder, self.holder)


@dataclass(frozen=True)
class Verdict:
    capability: Capability | None  # the one that matched (set even when it was spent)
    problem: str  # "" when the command is accepted
    exposed: tuple[Capability, ...] = ()  # live capabilities this mail spent
    spent_before: bool = False  # the matching capability had already been used

    @property
    def accepted(self) -> bool:
        return not self.problem


def grant(rt: Runtime, holder: str, step: str, now: datetime, bound: str = "",
          hours: int | None = None) -> Grant:
    hours = hours if hours is not None else rt.settings.trust.capability_days * 24
    return Grant(holder=holder, step=step, bound=bound, expires_at=now + timedelta(hours=hours))


def organ_holder(organ: str) -> str:
    return f"organ:{organ}"


def carried(session: Session, inbound: Inbound) -> list[Capability]:
    digests = carried_digests(inbound.thread_ids)
    if not digests:
        return []
    return list(session.exec(select(Capability).where(Capability.digest.in_(digests))))


def check(rt: Runtime, session: Session, ticket: Ticket, inbound: Inbound, claim: Claim,
          received_at: datetime, now: datetime) -> Verdict:
    """Whether this mail may give `claim`'s command on `ticket`; every live capability
    it carries is spent either way."""
    capabilities = carried(session, inbound)
    live = [c for c in capabilities if c.spent_at is None]
    problem = _problem(rt, ticket, inbound, claim, capabilities, received_at)
    match = next((c for c in capabilities if _fits(c, ticket, claim)), None)
    spent_before = match is not None and match.spent_at is not None
    for capability in live:
        capability.spent_at, capability.spent_by = now, inbound.from_address
        capability.spent_for = "refused: " + problem[:200] if problem else "accepted"
        session.add(capability)
    if not problem:
        revoke(session, ticket.id, claim.holder, claim.step, now)  # a reminder's twin too
    return Verdict(match, problem, tuple(live), spent_before)


def _fits(capability: Capability, ticket: Ticket, claim: Claim) -> bool:
    return (capability.ticket_id, capability.holder, capability.step) == (
        ticket.id, claim.holder, claim.step)


def _problem(rt: Runtime, ticket: Ticket, inbound: Inbound, claim: Claim,
             capabilities: list[Capability], received_at: datetime) -> str:
    sender = inbound.from_address
    if not holds_role(sender, claim.addresses):
        return f"{sender or 'the sender'} is not a configured {claim.role_name}"
    trust = rt.settings.trust
    if trust.authserv_id:
        vouching = vouched_for(inbound.trace_fields, trust.authserv_id, trust.internal_hops,
                               sender.rpartition("@")[2])
        if not vouching.vouched:
            return f"{vouching.why}: the sender may be forged"
    if _FORWARD_SUBJECT.match(inbound.subject):
        return "no proof: a forwarded request is not a reply to it"
    if not capabilities:
        return ("no proof: not a reply to buzon's request (a ticket number proves nothing)")
    named = set(TICKET_ID.findall(inbound.subject))
    if named - {ticket.id}:
        return f"the Subject names another ticket ({', '.join(sorted(named - {ticket.id}))})"
    match = next((c for c in capabilities if _fits(c, ticket, claim)), None)
    if match is None:
        other = capabilities[0]
        if other.ticket_id != ticket.id:
            return f"the proof was issued for another ticket ({other.ticket_id})"
        return (f"the proof was issued for {other.holder} at step {other.step}, not for "
                f"{claim.holder} at step {claim.step}")
    if match.spent_at is not None:
        return f"the proof was already used ({match.spent_for or 'spent'}): a replay"
    if as_aware(match.expires_at) < received_at:
        return "the proof expired"
    return ""


def revoke(session: Session, ticket_id: str, holder: str, step: str, now: datetime,
           why: str = "superseded") -> None:
    """Spend every live capability of a ticket's step (its request and reminders)."""
    for capability in session.exec(select(Capability).where(
            Capability.ticket_id == ticket_id, Capability.holder == holder,
            Capability.step == step, Capability.spent_at.is_(None))):
        capability.spent_at, capability.spent_for = now, why
        session.add(capability)


def refuse(session: Session, ticket: Ticket, inbound: Inbound, claim: Claim, problem: str,
           now: datetime) -> None:
    """Trace the refusal on the ticket and keep it for the coordinators' digest."""
    sender = inbound.from_address or "(no address)"
    session.add(TrustRefusal(ticket_id=ticket.id, at=now, sender=sender[:200],
                             holder=claim.holder, reason=problem[:500]))
    add_trace(session, ticket.id, "command refused",
              f"from {sender} as {claim.holder}: {problem}", now)
    log.warning("command on %s from %s as %s refused: %s", ticket.id, sender, claim.holder,
                problem)


def still_awaited(verdict: Verdict, ticket: Ticket, claim: Claim) -> bool:
    """Whether this mail spent a live capability of the very step the ticket waits for:
    then its holder needs a new one."""
    return any(_fits(c, ticket, claim) for c in verdict.exposed)


def reissue(rt: Runtime, session: Session, ticket: Ticket, claim: Claim, now: datetime,
            why: str = "refused") -> None:
    """A new request to an organ whose capability a reply spent, sent to the organ's
    configured address, never to the sender. `why` the organ is asked again: its reply
    was refused, moved nothing on ("recorded"), said EN EVALUACIÓN ("evaluating"), or
    the assistants sent the answer back ("sent_back")."""
    organ = claim.holder[len("organ:"):]
    if not claim.holder.startswith("organ:") or organ not in rt.settings.organs:
        return
    plan_mail(rt, session, mailbox=ticket.mailbox, template="nueva_referencia",
              values={"ticket": ticket, "organo": organ, "motivo": why},
              to=[rt.settings.organs[organ].address], now=now, ticket_id=ticket.id,
              grant=grant(rt, claim.holder, claim.step, now))
    add_trace(session, ticket.id, "new request", f"a new capability was sent to {organ}", now)


def send_digest(rt: Runtime, session: Session, now: datetime) -> int:
    """One mail to the coordinators with every refusal not reported yet."""
    pending = list(session.exec(select(TrustRefusal).where(TrustRefusal.reported_at.is_(None))
                                .order_by(TrustRefusal.at, TrustRefusal.id)))
    if not pending:
        return 0
    coordinators = rt.settings.people.coordinators
    if coordinators:
        tickets = {t.id: t for t in session.exec(select(Ticket).where(
            Ticket.id.in_({r.ticket_id for r in pending})))}
        mailbox = next((tickets[r.ticket_id].mailbox for r in pending if r.ticket_id in tickets),
                       next(iter(rt.settings.mailboxes)))
        plan_mail(rt, session, mailbox=mailbox, template="comandos_rechazados",
                  values={"rechazos": pending, "zona": rt.settings.zone}, to=coordinators,
                  now=now)
    for refusal in pending:
        refusal.reported_at = now
        session.add(refusal)
    return len(pending)
