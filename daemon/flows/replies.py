"""Replies to a ticket: what a mail that joins a ticket means, by who wrote it and what it
carries. A survey answer, a supervisor's verdict, an organ's answer or verdict, or the
citizen writing again after the answer."""

from __future__ import annotations

import logging
from datetime import datetime

from daemon.flows import incidents
from daemon.flows.review import handle_reply, is_review_reply
from daemon.flows.second_level import organ_answered, organ_of, suggestion_answered
from daemon.flows.surveys import record_reply, survey_replied_to
from daemon.mail.imap import FetchedMail
from daemon.mail.parsing import Inbound
from daemon.runtime import Runtime
from daemon.store.batch import BatchLookups, trace
from daemon.store.models import Ticket

log = logging.getLogger("daemon.pipeline")


def reply_effects(rt: Runtime, lookups: BatchLookups, inbound: Inbound, mail: FetchedMail,
                      ticket_id: str, now: datetime) -> list[str]:
    """An organ answering its derivation, or a citizen writing after the answer."""
    ticket = lookups.session.get(Ticket, ticket_id)
    if ticket is None:
        return []  # opened in this very batch: nothing to update yet
    survey = survey_replied_to(lookups.session, inbound)
    if survey is not None:
        outcome = record_reply(rt, lookups.session, survey, inbound, now)
        log.info("survey reply for %s: %s", ticket_id, outcome)
        return []
    if is_review_reply(rt, inbound):
        outcome = handle_reply(rt, lookups.session, ticket, inbound, mail.internaldate, now)
        log.info("review reply for %s from %s: %s", ticket_id, inbound.from_address, outcome)
        return []
    organ = organ_of(rt, inbound.from_address)
    if organ and ticket.kind == "incidencia":
        outcome = incidents.organ_replied(rt, lookups.session, ticket, organ,
                                          mail.internaldate, inbound.text, now)
        log.info("%s on incident %s: %s", organ, ticket_id, outcome)
        return [f"Respuesta_{organ}"]
    if organ and ticket.organ == organ and ticket.kind == "sugerencia":
        suggestion_answered(rt, lookups.session, ticket, organ, mail.internaldate, inbound.text,
                            now)
        return [f"Respuesta_{organ}"]
    if organ and ticket.organ == organ:
        organ_answered(rt, lookups.session, ticket, organ, mail.internaldate, inbound.subject,
                       now)
        return [f"Respuesta_{organ}"]
    if ticket.answered_at is not None and inbound.from_address == ticket.citizen_address:
        # rules.yaml followups.after_answer is "reopen" here ("new_ticket" never gets here).
        effective = rt.calendar.effective_receipt(mail.internaldate)
        ticket.status, ticket.answered_at = "reopened", None
        ticket.effective_receipt = effective
        ticket.deadline = rt.calendar.deadline(ticket.kind, effective, rt.settings.deadlines)
        lookups.session.add(ticket)
        trace(lookups.pending, ticket_id, "reopened",
              f"the citizen wrote again after the answer; new deadline "
              f"{ticket.deadline.isoformat()}", now)
        return ["Reabierta"]
    return []
