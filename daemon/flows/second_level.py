"""Second level (manual 7.2, 8.2.2): a consulta moved to "Derivar/<ORGAN>" goes to that
organ with its ticket id, the citizen is told, the organ's answer comes back to the
assistants, and an organ past its deadline is chased once per working day."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, or_
from sqlmodel import Session, select

from daemon.flows.proofs import grant, organ_holder
from daemon.mail.parsing import folded
from daemon.runtime import Runtime
from daemon.store.db import add_trace, as_aware
from daemon.store.models import MailRecord, Ticket
from daemon.store.notify import claim, plan_mail

log = logging.getLogger("daemon.second_level")


DERIVATION = "derivation"
# The step an incident waits for, by its status (daemon.flows.incidents).
INCIDENT_STEPS = {"derived": "incident", "escalated": "third_level", "validating": "validation"}


def awaited_step(ticket: Ticket) -> str:
    """What the ticket waits for from its organ: a derived consulta or suggestion the
    organ's answer, an incident the step its status names ("" when none)."""
    if ticket.kind == "incidencia":
        return INCIDENT_STEPS.get(ticket.status, "")
    return DERIVATION if ticket.status == "derived" else ""


def citizen_thread(session: Session, ticket: Ticket) -> tuple[str, tuple[str, ...]]:
    """(In-Reply-To, References) that thread a mail to the citizen's own messages: the
    one that opened the ticket and the citizen's later ones, never an organ's or staff's
    (their Message-IDs would tell the citizen who wrote internally)."""
    ids = list(dict.fromkeys(session.exec(select(MailRecord.message_id).where(
        MailRecord.ticket_id == ticket.id, MailRecord.message_id != "",
        or_(MailRecord.outcome == "ticket",
            func.lower(MailRecord.sender) == ticket.citizen_address.lower()))
        .order_by(MailRecord.internaldate, MailRecord.id))))
    return (ids[0] if ids else ""), tuple(ids)


def derive(rt: Runtime, session: Session, ticket: Ticket, organ: str, now: datetime) -> None:
    settings = rt.settings.organs.get(organ)
    if settings is None:
        add_trace(session, ticket.id, "derivation refused", f"no organ named {organ} in "
                  "rules.yaml", now)
        return
    if ticket.organ == organ and ticket.derived_at is not None:
        return
    ticket.organ, ticket.derived_at, ticket.status = organ, now, "derived"
    ticket.organ_answered_at = None
    ticket.organ_deadline = rt.calendar.add_working_days(now, settings.deadline_working_days)
    if ticket.kind == "consulta" and ticket.organ_deadline > as_aware(ticket.deadline):
        # Second level (manual 7.2): the consulta is due on the organ's term, not on the
        # first level's 24 hours; the citizen is told the new date below.
        add_trace(session, ticket.id, "deadline extended",
                  f"{as_aware(ticket.deadline).isoformat()} -> "
                  f"{ticket.organ_deadline.isoformat()}: derived to {organ}", now)
        ticket.deadline = ticket.organ_deadline
    values = {"ticket": ticket, "organo": organ, "plazo": ticket.organ_deadline.astimezone(
        rt.settings.zone), "dias": settings.deadline_working_days}
    proof = grant(rt, organ_holder(organ), DERIVATION, now)
    if ticket.kind == "sugerencia":
        # The citizen hears the result, when the organ gives it (manual 9.1).
        plan_mail(rt, session, mailbox=ticket.mailbox, template="derivacion_sugerencia",
                  values=values, to=[settings.address], now=now, ticket_id=ticket.id,
                  grant=proof)
    else:
        plan_mail(rt, session, mailbox=ticket.mailbox, template="derivacion_organo",
                  values=values, to=[settings.address], now=now, ticket_id=ticket.id,
                  grant=proof)
        in_reply_to, references = citizen_thread(session, ticket)
        plan_mail(rt, session, mailbox=ticket.mailbox, template="derivacion_ciudadano",
                  values=values, to=[ticket.citizen_address], now=now, ticket_id=ticket.id,
                  in_reply_to=in_reply_to, references=references)
    add_trace(session, ticket.id, "derived", f"sent to {organ} ({settings.address}); the organ "
              f"is due {ticket.organ_deadline.isoformat()}", now)


def organ_of(rt: Runtime, address: str) -> str | None:
    for name, organ in rt.settings.organs.items():
        if organ.address.lower() == address.lower():
            return name
    return None


SUGGESTION_RESULTS = (("NO IMPLEMENTADA", "not_implemented"), ("NO SE IMPLEMENTARA",
                      "not_implemented"), ("IMPLEMENTADA", "implemented"),
                      ("SE IMPLEMENTARA", "implemented"), ("EN EVALUACION", "evaluating"))


def suggestion_result(text: str) -> str:
    """What the organ decided, from the first line of its reply (accents ignored)."""
    first = folded(next((line.strip() for line in text.splitlines() if line.strip()), ""))
    return next((result for prefix, result in SUGGESTION_RESULTS if first.startswith(prefix)),
                "answered")


def suggestion_answered(rt: Runtime, session: Session, ticket: Ticket, organ: str,
                        at: datetime, answer: str, now: datetime) -> None:
    """With automatic relay: the organ's result goes on to the citizen and closes the
    ticket."""
    ticket.organ_answered_at = ticket.organ_answered_at or at
    ticket.answered_at, ticket.status = at, "closed"
    ticket.result = suggestion_result(answer)
    session.add(ticket)
    _tell_result(rt, session, ticket, organ, answer, now)
    add_trace(session, ticket.id, "suggestion answered",
              f"{organ}: {ticket.result}; the answer was sent on to the citizen", at,
              actor=organ)


def suggestion_in_evaluation(rt: Runtime, session: Session, ticket: Ticket, organ: str,
                             at: datetime, answer: str, now: datetime,
                             tell_citizen: bool) -> None:
    """EN EVALUACIÓN is no result: the suggestion stays open, waiting for the organ's
    result. The assistants hear it (or, with automatic relay, the citizen)."""
    ticket.result = "evaluating"
    session.add(ticket)
    add_trace(session, ticket.id, "suggestion in evaluation",
              f"{organ} is evaluating it; the suggestion stays open", at, actor=organ)
    if tell_citizen:
        _tell_result(rt, session, ticket, organ, answer, now)
    else:
        tell_assistants(rt, session, ticket, organ, answer, now)


def _tell_result(rt: Runtime, session: Session, ticket: Ticket, organ: str, answer: str,
                 now: datetime) -> None:
    """The organ's result, to the citizen as the organ wrote it (automatic relay)."""
    in_reply_to, references = citizen_thread(session, ticket)
    plan_mail(rt, session, mailbox=ticket.mailbox, template="resultado_sugerencia",
              values={"ticket": ticket, "organo": organ, "respuesta": answer[:6000]},
              to=[ticket.citizen_address], now=now, ticket_id=ticket.id,
              in_reply_to=in_reply_to, references=references,
              automatic=False)  # the organ's own words, relayed


def tell_assistants(rt: Runtime, session: Session, ticket: Ticket, organ: str, answer: str,
                    now: datetime) -> None:
    """The organ's answer, for the assistants to check and send on to the citizen."""
    plan_mail(rt, session, mailbox=ticket.mailbox, template="respuesta_organo",
              values={"ticket": ticket, "organo": organ, "carpeta": ticket.folder,
                      "respuesta": answer[:20000]},
              to=rt.settings.people.assistants or rt.settings.people.coordinators, now=now,
              ticket_id=ticket.id)


def organ_answered(rt: Runtime, session: Session, ticket: Ticket, organ: str,
                   at: datetime, subject: str, answer: str, now: datetime) -> None:
    """The organ replied on a derived consulta: record it and hand the answer to the
    assistants to send."""
    if ticket.organ_answered_at is None:
        ticket.organ_answered_at = at
    ticket.status = "organ_answered"
    session.add(ticket)
    late = ticket.organ_deadline is not None and at > as_aware(ticket.organ_deadline)
    add_trace(session, ticket.id, "organ answered",
              f"{organ} answered{' after its deadline' if late else ''}: {subject[:150]}", at,
              actor=organ)
    tell_assistants(rt, session, ticket, organ, answer, now)


def chase_late_organs(rt: Runtime, session: Session, now: datetime) -> int:
    """Once per working day, a reminder to every organ past its deadline, coordinators
    in copy."""
    local = now.astimezone(rt.settings.zone)
    if not rt.calendar.is_working_day(local.date()):
        return 0
    chased = 0
    # Consultas and incidents at an organ, incidents at IT or awaiting validation.
    late = session.exec(select(Ticket).where(
        Ticket.status.in_(("derived", "escalated", "validating")),
        Ticket.organ_answered_at.is_(None),
        Ticket.organ_deadline < now))
    for ticket in late:
        organ = rt.settings.organs.get(ticket.organ)
        if organ is None or not claim(session, f"chase:{ticket.id}:{local.date()}", now):
            continue
        values = {"ticket": ticket, "organo": ticket.organ,
                  "plazo": as_aware(ticket.organ_deadline).astimezone(rt.settings.zone)}
        # The organ may answer the reminder itself: it carries a capability of its own,
        # so the coordinators get their copy as a separate mail.
        plan_mail(rt, session, mailbox=ticket.mailbox, template="recordatorio_organo",
                  values=values, to=[organ.address], now=now, ticket_id=ticket.id,
                  grant=grant(rt, organ_holder(ticket.organ), awaited_step(ticket), now))
        if rt.settings.people.coordinators:
            plan_mail(rt, session, mailbox=ticket.mailbox, template="recordatorio_organo",
                      values=values, to=rt.settings.people.coordinators, now=now,
                      ticket_id=ticket.id)
        add_trace(session, ticket.id, "organ chased", f"{ticket.organ} is past its deadline",
                  now)
        chased += 1
    return chased
