"""Organs' answers go back to the assistants, who send them on (manual 9.1, 9.3.7.1).

An organ's answer on an incident or a suggestion is filed beside its ticket with the
keywords Respuesta_<ORGAN> and Por_enviar, the ticket waits in status "to_relay", and the
assistants get a notice with the text. An assistant's reply from the mailbox to the
citizen (it lands in Sent) passes the answer on; a reply to the organ sends it back for
another answer. With second_level.relay "automatic" buzon sends the answer on itself.
Derived consultas already worked this way (status "organ_answered")."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from daemon.decide.trust import holds_role
from daemon.flows import proofs
from daemon.flows.answered import mark_answered
from daemon.flows.second_level import awaited_step, organ_of, tell_assistants
from daemon.mail.parsing import Inbound
from daemon.runtime import Runtime
from daemon.store.db import add_trace
from daemon.store.models import Ticket
from daemon.store.notify import flag_ticket_mail

TO_RELAY = "to_relay"  # an incident's or a suggestion's answer waits for an assistant
WAITING = "Por_enviar"  # the keyword staff see on an organ's answer to pass on


def automatic(rt: Runtime) -> bool:
    return rt.settings.second_level.relay == "automatic"


def hand_over(rt: Runtime, session: Session, ticket: Ticket, organ: str, answer: str,
              outcome: str, at: datetime, now: datetime) -> None:
    """File the organ's answer as waiting to be passed on and tell the assistants.
    `outcome`: what the ticket becomes once sent on (incidents: resolved or
    functional_requirement; suggestions: the organ's result)."""
    ticket.status, ticket.result = TO_RELAY, outcome
    ticket.proposed_answer = answer[:20000]
    ticket.organ_answered_at = ticket.organ_answered_at or at
    session.add(ticket)
    add_trace(session, ticket.id, "answer to pass on",
              f"{organ}'s answer ({outcome}) waits for an assistant to send it on", at,
              actor=organ)
    tell_assistants(rt, session, ticket, organ, answer, now)


def awaiting(session: Session, ticket: Ticket) -> Ticket | None:
    """The ticket whose organ's answer a reply about `ticket` may pass on: the ticket
    itself, or the incident its consulta turned into (the citizen's thread is the
    consulta's)."""
    if ticket.status in (TO_RELAY, "organ_answered"):
        return ticket
    if ticket.incident:
        incident = session.get(Ticket, ticket.incident)
        if incident is not None and incident.status == TO_RELAY:
            return incident
    return None


def sent_from_mailbox(rt: Runtime, session: Session, ticket: Ticket, inbound: Inbound,
                      at: datetime, now: datetime) -> str:
    """A mail an assistant sent about `ticket`: passes on a waiting answer ("sent on"),
    sends it back to the organ it wrote to ("sent back"), or neither ("")."""
    waiting = awaiting(session, ticket)
    if waiting is None:
        return ""
    if holds_role(waiting.citizen_address, inbound.to):
        _sent_on(rt, session, waiting, at, now)
        return "sent on"
    organs = [organ for organ in (organ_of(rt, address) for address in inbound.to) if organ]
    if organs:
        _sent_back(rt, session, waiting, organs[0], at, now)
        return "sent back"
    return ""


def _sent_on(rt: Runtime, session: Session, ticket: Ticket, at: datetime,
             now: datetime) -> None:
    flag_ticket_mail(session, ticket.mailbox, ticket.id, ticket.folder, [f"-{WAITING}"], now)
    if ticket.kind == "consulta":
        return  # answered as any consulta (daemon.flows.answers)
    if ticket.kind == "incidencia":
        if ticket.result == "resolved":
            mark_answered(rt, session, ticket, at, by=ticket.solved_by, channel="organ")
            ticket.resolved_level = ticket.level
        ticket.status = ticket.result  # resolved, or functional_requirement
    else:  # a suggestion: the citizen has the organ's result
        ticket.status, ticket.answered_at = "closed", at
    session.add(ticket)
    add_trace(session, ticket.id, "answer sent on",
              f"an assistant sent {ticket.solved_by or ticket.organ}'s answer to the citizen",
              at, actor="assistant")


def _sent_back(rt: Runtime, session: Session, ticket: Ticket, organ: str, at: datetime,
               now: datetime) -> None:
    """The assistant returned the answer: the ticket waits for the organ again, with a
    fresh term and a fresh capability (the assistant's mail carries none)."""
    flag_ticket_mail(session, ticket.mailbox, ticket.id, ticket.folder, [f"-{WAITING}"], now)
    third = rt.settings.incidents.third_level
    if ticket.kind == "incidencia":
        ticket.status = "escalated" if organ == third else "derived"
        ticket.level = 3 if organ == third else 2
        days = (rt.settings.incidents.third_level_working_days if organ == third
                else rt.settings.organs[organ].deadline_working_days)
    else:
        ticket.status = "derived"
        days = rt.settings.organs[organ].deadline_working_days
    ticket.organ, ticket.result, ticket.organ_answered_at = organ, "", None
    ticket.organ_deadline = rt.calendar.add_working_days(at, days)
    session.add(ticket)
    add_trace(session, ticket.id, "answer sent back",
              f"an assistant returned the answer to {organ}, due "
              f"{ticket.organ_deadline.isoformat()}", at, actor="assistant")
    proofs.reissue(rt, session, ticket, proofs.Claim(
        proofs.organ_holder(organ), awaited_step(ticket),
        (rt.settings.organs[organ].address,)), now, why="sent_back")
