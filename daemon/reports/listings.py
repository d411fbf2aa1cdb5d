"""Ticket listings for the command line and, later, the workbooks."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from daemon.store.db import as_aware
from daemon.store.models import Ticket


def list_tickets(engine: Engine, open_only: bool = False) -> list[Ticket]:
    with Session(engine) as session:
        query = select(Ticket).order_by(Ticket.created_at, Ticket.id)
        if open_only:
            query = query.where(Ticket.answered_at.is_(None), Ticket.status != "closed")
        tickets = list(session.exec(query))
        session.expunge_all()
    return tickets


def _iso(moment, zone: ZoneInfo) -> str | None:
    moment = as_aware(moment)
    return moment.astimezone(zone).isoformat() if moment else None


def ticket_row(ticket: Ticket, zone: ZoneInfo) -> dict:
    return {
        "ticket": ticket.id,
        "mailbox": ticket.mailbox,
        "kind": ticket.kind,
        "status": ticket.status,
        "folder": ticket.folder,
        "citizen": ticket.citizen_address,
        "subject": ticket.subject,
        "received": _iso(ticket.received_at, zone),
        "effective_receipt": _iso(ticket.effective_receipt, zone),
        "deadline": _iso(ticket.deadline, zone),
        "answered_at": _iso(ticket.answered_at, zone),
        "acknowledged": ticket.acknowledged,
        "classification": ticket.classification_source,
        "organ": ticket.organ,
        "linked_ticket": ticket.linked_ticket,
        "incident": ticket.incident,
        "criticality": ticket.criticality,
        "complexity": ticket.complexity,
        "level": ticket.level,
        "solved_by": ticket.solved_by,
        "resolved_level": ticket.resolved_level,
        "result": ticket.result,
    }
