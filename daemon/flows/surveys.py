"""Satisfaction surveys: at most one short survey per answered ticket (reply with a number
from 1 to 5 and an optional comment); a citizen can opt out and is never asked again."""

from __future__ import annotations

import logging
import re
from datetime import datetime

from sqlmodel import Session, select

from daemon.flows.proofs import grant
from daemon.flows.second_level import citizen_thread
from daemon.mail.parsing import Inbound, folded, own_part
from daemon.runtime import Runtime
from daemon.store.db import add_trace
from daemon.store.models import Survey, SurveyOptOut, Ticket
from daemon.store.notify import plan_mail

log = logging.getLogger("daemon.surveys")

CITIZEN, SURVEY = "citizen", "survey"
_SCORE = re.compile(r"^\s*([1-5])\b(.*)$", re.S)


def _fold(text: str) -> str:
    return " ".join(folded(text).split())


def read_reply(text: str, opt_out_phrases: list[str]) -> tuple[str, int | None, str]:
    """('score', n, comment) | ('opt_out', None, '') | ('', None, '') from a reply (pure)."""
    lines = [line for line in own_part(text).split("\n") if line.strip()]
    if not lines:
        return "", None, ""
    first = _fold(lines[0])
    if any(first.startswith(_fold(phrase)) for phrase in opt_out_phrases):
        return "opt_out", None, ""
    match = _SCORE.match(lines[0])
    if match:
        comment = "\n".join([match.group(2).strip(" .:-")] + lines[1:]).strip()
        return "score", int(match.group(1)), comment[:2000]
    return "", None, ""


def send_surveys(rt: Runtime, session: Session, now: datetime) -> int:
    """A survey to every answered ticket that has none yet, unless its citizen opted out."""
    if not rt.settings.surveys.enabled:
        return 0
    opted_out = set(session.exec(select(SurveyOptOut.address)))
    surveyed = select(Survey.ticket_id)
    sent = 0
    # Consultas and incidents that were attended (manual 6.6.2): never a suggestion
    # (nor one closed as "No es sugerencia"), nor a consulta that became an incident,
    # surveyed when the incident is resolved.
    for ticket in session.exec(select(Ticket).where(
            Ticket.answered_at.is_not(None), Ticket.id.not_in(surveyed),
            Ticket.citizen_address != "", Ticket.kind.in_(("consulta", "incidencia")),
            Ticket.answer_channel != "incident")):
        if ticket.citizen_address in opted_out:
            continue
        in_reply_to, references = citizen_thread(session, ticket)
        message_id = plan_mail(rt, session, mailbox=ticket.mailbox, template="encuesta",
                               values={"ticket": ticket}, to=[ticket.citizen_address], now=now,
                               ticket_id=ticket.id, in_reply_to=in_reply_to,
                               references=references,
                               grant=grant(rt, CITIZEN, SURVEY, now))
        session.add(Survey(ticket_id=ticket.id, message_id=message_id, sent_at=now))
        session.flush()
        sent += 1
    return sent


def survey_replied_to(session: Session, inbound: Inbound) -> Survey | None:
    if not inbound.thread_ids:
        return None
    return session.exec(select(Survey).where(Survey.message_id.in_(inbound.thread_ids))).first()


def record_reply(rt: Runtime, session: Session, survey: Survey, inbound: Inbound,
                 now: datetime) -> str:
    kind, score, comment = read_reply(inbound.text, rt.settings.surveys.opt_out_phrases)
    if kind == "opt_out":
        if session.get(SurveyOptOut, inbound.from_address) is None:
            session.add(SurveyOptOut(address=inbound.from_address, at=now))
        add_trace(session, survey.ticket_id, "survey opt-out",
                  f"{inbound.from_address} asked for no more surveys", now, actor="citizen")
        return "opt-out"
    if kind == "score" and survey.score is None:
        survey.score, survey.comment, survey.answered_at = score, comment, now
        session.add(survey)
        add_trace(session, survey.ticket_id, "survey answered", f"score {score}", now,
                  actor="citizen")
        return f"score {score}"
    return "not a survey answer"
