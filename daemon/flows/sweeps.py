"""The periodic sweeps over the tickets: reminders, escalation of breaches, chasing late
organs, the digest of refused commands and the morning summary. Each reads state and
plans mail under a one-time key, in one transaction, so a restart sends nothing twice."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session, select

from daemon.flows.proofs import send_digest
from daemon.flows.second_level import chase_late_organs
from daemon.flows.surveys import send_surveys
from daemon.runtime import Runtime
from daemon.store.db import add_trace, as_aware
from daemon.store.models import Ticket
from daemon.store.notify import claim, flag_ticket_mail, plan_mail

log = logging.getLogger("daemon.sweeps")

UNANSWERED = ("open", "derived", "organ_answered", "reopened", "in_review")


# The deadline buckets, a fixed keyword each (never a date: see daemon.store.mail_identity).
DUE_TODAY, DUE_SOON, OVERDUE = "Vence_hoy", "Por_vencer", "Vencido"


def consulta_mailbox(rt: Runtime) -> str:
    return next((name for name in rt.settings.mailboxes
                 if rt.settings.mailbox_kind(name) == "consulta"),
                next(iter(rt.settings.mailboxes)))


def _unanswered(session: Session):
    return session.exec(select(Ticket).where(
        Ticket.kind == "consulta", Ticket.answered_at.is_(None),
        Ticket.status.in_(UNANSWERED)).order_by(Ticket.deadline))


def sweep(rt: Runtime, now: datetime) -> str:
    """Every run: flag what is due soon, escalate what is overdue, chase late organs."""
    soon = now + timedelta(hours=rt.settings.deadlines.reminder_hours)
    zone = rt.settings.zone
    today = now.astimezone(zone).date()
    with Session(rt.engine) as session:
        flagged, overdue = 0, []
        for ticket in _unanswered(session):
            deadline = as_aware(ticket.deadline)
            if deadline < now:
                if claim(session, f"escalation:{ticket.id}", now):
                    overdue.append(ticket)
                    flag_ticket_mail(session, ticket.mailbox, ticket.id, ticket.folder,
                                     ["\\Flagged", OVERDUE, f"-{DUE_SOON}", f"-{DUE_TODAY}"],
                                     now)
                    add_trace(session, ticket.id, "escalated",
                              "deadline passed without an answer: coordinators told", now)
            elif deadline.astimezone(zone).date() == today:
                if claim(session, f"due_today:{ticket.id}", now):
                    flag_ticket_mail(session, ticket.mailbox, ticket.id, ticket.folder,
                                     ["\\Flagged", DUE_TODAY, f"-{DUE_SOON}"], now)
                    flagged += 1
            elif deadline <= soon and claim(session, f"reminder:{ticket.id}", now):
                flag_ticket_mail(session, ticket.mailbox, ticket.id, ticket.folder,
                                 ["\\Flagged", DUE_SOON], now)
                flagged += 1
        if overdue and rt.settings.people.coordinators:
            plan_mail(rt, session, mailbox=consulta_mailbox(rt), template="escalamiento",
                      values={"tickets": overdue, "zona": rt.settings.zone, "ahora": now},
                      to=rt.settings.people.coordinators, now=now)
        chased = chase_late_organs(rt, session, now)
        surveyed = send_surveys(rt, session, now)
        refused = send_digest(rt, session, now)
        session.commit()
    rt.crash_point("after_sweep_commit")
    return (f"{flagged} flagged, {len(overdue)} escalated, {chased} organs chased, "
            f"{surveyed} surveys, {refused} refused commands reported")


def morning_summary(rt: Runtime, now: datetime) -> str:
    local = now.astimezone(rt.settings.zone)
    if not rt.calendar.is_working_day(local.date()):
        return "not a working day"
    horizon = datetime.combine(rt.calendar.next_working_day(local.date()),
                               rt.settings.calendar.cutoff, tzinfo=rt.settings.zone)
    with Session(rt.engine) as session:
        if not claim(session, f"summary:{local.date()}", now):
            return "already sent"
        tickets = list(_unanswered(session))
        overdue = [t for t in tickets if as_aware(t.deadline) < now]
        due = [t for t in tickets if now <= as_aware(t.deadline) <= horizon]
        waiting_organ = [t for t in tickets if t.status == "derived"]
        in_review = [t for t in tickets if t.status == "in_review"]
        # Organs' answers the assistants still have to send on (daemon.flows.relay).
        to_send = list(session.exec(select(Ticket).where(
            Ticket.status.in_(("to_relay", "organ_answered"))).order_by(Ticket.deadline)))
        recipients = rt.settings.people.assistants or rt.settings.people.coordinators
        if recipients:
            plan_mail(rt, session, mailbox=consulta_mailbox(rt), template="resumen_matutino",
                      values={"vencidas": overdue, "por_vencer": due, "en_organo": waiting_organ,
                              "en_revision": in_review, "por_enviar": to_send,
                              "zona": rt.settings.zone,
                              "dia": local},
                      to=recipients, now=now)
        session.commit()
    return f"{len(due)} due, {len(overdue)} overdue"
