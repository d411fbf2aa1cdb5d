"""A ticket's first answer: when, by whom, through which channel, and the response time
in office hours and in calendar hours."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from daemon.runtime import Runtime
from daemon.store.db import add_trace, as_aware
from daemon.store.models import Ticket


def mark_answered(rt: Runtime, session: Session, ticket: Ticket, at: datetime, by: str,
                  channel: str) -> bool:
    """Record the first answer of a ticket; False when it already had one."""
    if ticket.answered_at is not None or ticket.kind not in ("consulta", "incidencia"):
        return False
    effective = as_aware(ticket.effective_receipt)
    ticket.answered_at = at
    ticket.answered_by = by
    ticket.answer_channel = channel
    ticket.status = "answered"
    ticket.response_hours = round(max((at - effective).total_seconds(), 0) / 3600, 2)
    ticket.response_working_hours = rt.calendar.working_hours_between(effective, at)
    session.add(ticket)
    how = {"mail": "a reply left through Sent", "other": "moved to Atendidos (another channel)",
           "approved": "the approved legal answer was sent",
           "incident": "turned into an incident; the citizen was told",
           "organ": "the organ's answer was sent to the citizen"}.get(channel, channel)
    add_trace(session, ticket.id, "answered", f"{how}; {ticket.response_working_hours} working "
              f"hours after the official receipt", at, actor=by or "assistant")
    return True
