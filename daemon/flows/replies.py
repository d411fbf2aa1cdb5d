"""Replies to a ticket: what a mail that joins a ticket means, by who wrote it and what it
carries. A survey answer, a supervisor's verdict, an organ's answer or verdict, or the
citizen writing again after the answer."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from daemon.decide.courtesy import is_courtesy
from daemon.decide.trust import holds_role
from daemon.flows import incidents, proofs, relay
from daemon.flows.review import handle_reply, is_review_reply
from daemon.flows.second_level import (
    awaited_step,
    organ_answered,
    organ_of,
    suggestion_answered,
    suggestion_in_evaluation,
    suggestion_result,
)
from daemon.flows.surveys import CITIZEN, SURVEY, read_reply, record_reply, survey_replied_to
from daemon.mail.imap import FetchedMail
from daemon.mail.parsing import Inbound, own_part
from daemon.runtime import Runtime
from daemon.store.batch import BatchLookups, trace
from daemon.store.models import Ticket

log = logging.getLogger("daemon.pipeline")


UNVERIFIED = "Sin_verificar"  # the keyword staff see on a refused command
COURTESY = "Agradecimiento"  # a citizen's thanks after the answer


def reply_effects(rt: Runtime, lookups: BatchLookups, inbound: Inbound, mail: FetchedMail,
                  ticket_id: str, now: datetime) -> list[str]:
    """What a mail joining a ticket changes; every command goes through the trust check
    (daemon.flows.proofs). Returns the keywords the mail gets."""
    session = lookups.session
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return []  # opened in this very batch: nothing to update yet
    survey = survey_replied_to(session, inbound)
    if survey is not None:
        claim = proofs.Claim(CITIZEN, SURVEY, (ticket.citizen_address,))
        checked = proofs.check(rt, session, ticket, inbound, claim, mail.internaldate, now)
        # Asking for no more surveys harms no one: after a score spent the survey's
        # capability, the citizen's own address may still opt out.
        opt_out = (checked.spent_before and holds_role(inbound.from_address, claim.addresses)
                   and read_reply(inbound.text, rt.settings.surveys.opt_out_phrases)[0]
                   == "opt_out")
        if checked.problem and not opt_out:
            proofs.refuse(session, ticket, inbound, claim, checked.problem, now)
            return [UNVERIFIED]
        outcome = record_reply(rt, session, survey, inbound, now)
        log.info("survey reply for %s: %s", ticket_id, outcome)
        return []
    if is_review_reply(rt, session, inbound):
        outcome = handle_reply(rt, session, ticket, inbound, mail.internaldate, now)
        log.info("review reply for %s from %s: %s", ticket_id, inbound.from_address, outcome)
        return [UNVERIFIED] if outcome.startswith("rejected") else []
    claim = _organ_claim(rt, session, ticket, inbound)
    if claim is not None:
        return _organ_reply(rt, lookups, ticket, inbound, mail, claim, now)
    if ticket.answered_at is not None and inbound.from_address == ticket.citizen_address:
        if is_courtesy(own_part(inbound.text, inbound.from_name)):
            # "Gracias" is no new work: the ticket, its deadline and response time stand.
            trace(lookups.pending, ticket_id, "courtesy reply",
                  "the citizen thanked or acknowledged the answer", now)
            return [COURTESY]
        # rules.yaml followups.after_answer is "reopen" here ("new_ticket" never gets here).
        effective = rt.calendar.effective_receipt(mail.internaldate)
        ticket.status, ticket.answered_at = "reopened", None
        ticket.effective_receipt = effective
        ticket.deadline = rt.calendar.deadline(ticket.kind, effective, rt.settings.deadlines)
        session.add(ticket)
        trace(lookups.pending, ticket_id, "reopened",
              f"the citizen wrote again after the answer; new deadline "
              f"{ticket.deadline.isoformat()}", now)
        return ["Reabierta"]
    return []


def _organ_claim(rt: Runtime, session: Session, ticket: Ticket,
                 inbound: Inbound) -> proofs.Claim | None:
    """The claim of a mail from an organ's address, or carrying an organ's capability:
    it speaks for the organ the ticket waits for, at the step it waits for."""
    sender_organ = organ_of(rt, inbound.from_address)
    carried = [c for c in proofs.carried(session, inbound) if c.holder.startswith("organ:")]
    if sender_organ is None and not carried:
        return None
    organ = ticket.organ or sender_organ or carried[0].holder[len("organ:"):]
    settings = rt.settings.organs.get(organ)
    return proofs.Claim(proofs.organ_holder(organ), awaited_step(ticket),
                        (settings.address,) if settings else ())


def _organ_reply(rt: Runtime, lookups: BatchLookups, ticket: Ticket, inbound: Inbound,
                 mail: FetchedMail, claim: proofs.Claim, now: datetime) -> list[str]:
    session = lookups.session
    organ = claim.holder[len("organ:"):]
    at = mail.internaldate
    checked = proofs.check(rt, session, ticket, inbound, claim, at, now)
    problem = checked.problem
    if not claim.step:
        problem = f"{ticket.id} is not waiting for an answer from {organ}"
    if problem:
        proofs.refuse(session, ticket, inbound, claim, problem, now)
        if claim.step and proofs.still_awaited(checked, ticket, claim):
            proofs.reissue(rt, session, ticket, claim, now)
        return [UNVERIFIED]
    if ticket.kind == "incidencia":
        outcome = incidents.organ_replied(rt, session, ticket, organ, at, inbound.text, now)
        log.info("%s on incident %s: %s", organ, ticket.id, outcome)
        if outcome == "recorded":  # nothing moved on: the organ still has to answer
            proofs.reissue(rt, session, ticket, claim, now, why="recorded")
    elif ticket.kind == "sugerencia":
        answer = own_part(inbound.text)
        result = suggestion_result(answer)
        if result == "evaluating":
            suggestion_in_evaluation(rt, session, ticket, organ, at, answer, now,
                                     tell_citizen=relay.automatic(rt))
            proofs.reissue(rt, session, ticket, claim, now, why="evaluating")
        elif relay.automatic(rt):
            suggestion_answered(rt, session, ticket, organ, at, answer, now)
        else:
            relay.hand_over(rt, session, ticket, organ, answer, result, at, now)
    else:
        organ_answered(rt, session, ticket, organ, at, inbound.subject,
                       own_part(inbound.text), now)
    waiting = ticket.status in (relay.TO_RELAY, "organ_answered")
    # \Flagged too: where the server keeps no keywords, the flag is what staff see.
    return [f"Respuesta_{organ}"] + (["\\Flagged", relay.WAITING] if waiting else [])
