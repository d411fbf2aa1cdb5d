"""Legal answers reviewed by a supervisor, by mail (manual 7.4.1.1).

An assistant puts a draft in "Legal/Revisión"; the supervisors get a review request
whose Message-ID is a single-use capability bound to that ticket and draft; the first
valid reply decides. APROBADO sends exactly the reviewed draft to the citizen; OBSERVADO
returns it to the assistant with the observations. The proof a reply needs is checked
by daemon.flows.proofs, as for every command given by mail.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from daemon.decide.pipeline import referenced_ticket
from daemon.decide.trust import holds_role
from daemon.flows import proofs
from daemon.flows.second_level import citizen_thread
from daemon.mail.compose import compose_raw, new_message_id
from daemon.mail.imap import MailboxClient
from daemon.mail.parsing import Inbound, folded, one_line, own_part, parse_message
from daemon.runtime import Runtime
from daemon.store.db import DatabaseLookups, add_trace, as_aware, new_in_folder
from daemon.store.models import MessageLink, OutboxAction, Review, Ticket
from daemon.store.notify import plan_mail

log = logging.getLogger("daemon.review")

# Pure decisions -------------------------------------------------------------------------

def verdict(body: str) -> tuple[str, str]:
    """('approved' | 'observed' | '', observations) from the first non-blank line of
    what the supervisor typed (quotes, forwards and signature left out)."""
    lines = [line for line in own_part(body).split("\n") if line.strip()]
    if not lines:
        return "", ""
    first = folded(lines[0].strip())
    if first.startswith("APROBADO"):
        return "approved", ""
    if first.startswith("OBSERVADO"):
        rest = lines[0].strip()[len("OBSERVADO"):].lstrip(" :.-")
        return "observed", "\n".join([rest] + lines[1:]).strip()
    return "", ""


@dataclass(frozen=True)
class DraftText:
    text: str
    html: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"{self.text}\x00{self.html}".encode()).hexdigest()


def draft_text(raw: bytes) -> DraftText:
    import mailparser

    parsed = mailparser.parse_from_bytes(raw)

    def joined(parts: list[str]) -> str:  # line ends as a mail client types them
        return "\n".join(parts or []).replace("\r\n", "\n").strip()

    return DraftText(joined(parsed.text_plain), joined(parsed.text_html))


# Requests ------------------------------------------------------------------------------

def record_drafts(rt: Runtime, mailbox: str, client: MailboxClient, now: datetime) -> int:
    """A review request for every new draft in the review folder tied to a ticket."""
    folder = rt.settings.review.folder
    requested = 0
    with new_in_folder(rt.engine, client, mailbox, folder) as (session, uids, uidvalidity):
        lookups = DatabaseLookups(session)
        for mail in client.fetch_mails(uids):
            inbound = parse_message(mail.raw)
            found = referenced_ticket(lookups, mailbox, inbound)
            if found is None:
                log.warning("draft %s/%s uid=%s names no ticket: left alone", mailbox, folder,
                            mail.uid)
                continue
            ticket = session.get(Ticket, found[0])
            author = drafter(rt, inbound)
            request_review(rt, session, ticket, folder, uidvalidity, mail.uid,
                           draft_text(mail.raw), author, now)
            requested += 1
    return requested


def drafter(rt: Runtime, inbound: Inbound) -> str:
    """Who wrote a draft, to be credited with the answer once approved. Drafts written
    in the shared mailbox come From the mailbox itself: then the signature tells, and
    with none known the assistants as a group are the ones to tell ("")."""
    from daemon.flows.answers import attribute

    if inbound.from_address in rt.own_addresses:
        return attribute(rt, inbound)
    return inbound.from_address


def request_review(rt: Runtime, session: Session, ticket: Ticket, folder: str,
                   uidvalidity: int, uid: int, draft: DraftText, drafted_by: str,
                   now: datetime) -> Review:
    expires = now + timedelta(hours=rt.settings.review.token_hours)
    for earlier in session.exec(select(Review).where(Review.ticket_id == ticket.id,
                                                     Review.decision == "")):
        earlier.decision, earlier.decided_at = "superseded", now  # a new round replaces it
        session.add(earlier)
    proofs.revoke(session, ticket.id, SUPERVISOR, STEP, now)
    review = Review(ticket_id=ticket.id, draft_folder=folder, draft_uidvalidity=uidvalidity,
                    draft_uid=uid, draft_sha256=draft.sha256, draft_text=draft.text,
                    draft_html=draft.html, drafted_by=drafted_by, requested_at=now,
                    expires_at=expires)
    session.add(review)
    session.flush()  # its id binds the capability
    ticket.status = "in_review"
    session.add(ticket)
    send_request(rt, session, ticket, review, now)
    add_trace(session, ticket.id, "review requested",
              f"draft {draft.sha256[:12]} sent to the supervisors", now)
    return review


def send_request(rt: Runtime, session: Session, ticket: Ticket, review: Review,
                 now: datetime) -> None:
    """The request to the supervisors; its Message-ID is the capability for this round."""
    zone = rt.settings.zone
    left = as_aware(ticket.deadline) - now
    hours = max(1, round((as_aware(review.expires_at) - now).total_seconds() / 3600))
    review.request_message_id = plan_mail(
        rt, session, mailbox=ticket.mailbox, template="revision_solicitud",
        values={"ticket": ticket, "borrador": review.draft_text,
                "plazo": as_aware(ticket.deadline).astimezone(zone),
                "horas_restantes": round(left.total_seconds() / 3600, 1),
                "vence_token": as_aware(review.expires_at).astimezone(zone)},
        to=rt.settings.people.supervisors, now=now, ticket_id=ticket.id,
        grant=proofs.grant(rt, SUPERVISOR, STEP, now, bound=str(review.id), hours=hours))
    session.add(review)


# Replies -------------------------------------------------------------------------------

SUPERVISOR, STEP = "supervisor", "review"


def supervisor_claim(rt: Runtime) -> proofs.Claim:
    return proofs.Claim(SUPERVISOR, STEP, tuple(rt.settings.people.supervisors))


def is_review_reply(rt: Runtime, session: Session, inbound: Inbound) -> bool:
    """Written by a supervisor, or carrying a supervisor's capability (whoever sent it)."""
    return (holds_role(inbound.from_address, rt.settings.people.supervisors)
            or any(c.holder == SUPERVISOR for c in proofs.carried(session, inbound)))


def handle_reply(rt: Runtime, session: Session, ticket: Ticket, inbound: Inbound,
                 received_at: datetime, now: datetime) -> str:
    """Apply a supervisor's reply (arrived at `received_at`); returns what happened."""
    claim = supervisor_claim(rt)
    checked = proofs.check(rt, session, ticket, inbound, claim, received_at, now)
    review = (session.get(Review, int(checked.capability.bound))
              if checked.capability is not None and checked.capability.bound else None)
    problem = checked.problem
    if review is not None and review.decision == "superseded":
        problem = "the proof belongs to an older draft"
    elif (problem and checked.spent_before and review is not None and review.decision
          and review.decided_by.lower() != inbound.from_address.lower()
          and holds_role(inbound.from_address, claim.addresses)):
        # Another supervisor got there first: this one is told so.
        add_trace(session, ticket.id, "review reply too late",
                  f"{inbound.from_address} answered after {review.decided_by} decided", now)
        plan_mail(rt, session, mailbox=ticket.mailbox, template="revision_ya_decidida",
                  values={"ticket": ticket, "decision": review.decision,
                          "por": review.decided_by},
                  to=[inbound.from_address], now=now, ticket_id=ticket.id)
        return "already decided"
    decision, observations = verdict(inbound.text)
    if problem or not decision:
        if problem:
            proofs.refuse(session, ticket, inbound, claim, problem, now)
        else:
            add_trace(session, ticket.id, "review reply without a verdict",
                      f"{inbound.from_address} wrote no APROBADO or OBSERVADO on the first "
                      "line", now, actor=inbound.from_address)
        if proofs.still_awaited(checked, ticket, claim) and review is not None \
                and review.decision == "":
            # The capability it carried may now be read in the ticket's folder: spent.
            send_request(rt, session, ticket, review, now)
            add_trace(session, ticket.id, "review requested again",
                      "the earlier request's capability was spent by a reply that decided "
                      "nothing", now)
        return f"rejected: {problem}" if problem else "no verdict on the first line"
    claimed = session.exec(select(Review).where(Review.id == review.id, Review.decision == "")
                           .with_for_update()).first()
    if claimed is None:
        return "already decided"
    review.decision, review.decided_by, review.decided_at = decision, inbound.from_address, now
    review.observations = observations
    session.add(review)
    if decision == "approved":
        _approve(rt, session, ticket, review, now)
    else:
        _observe(rt, session, ticket, review, now)
    return decision


def _approve(rt: Runtime, session: Session, ticket: Ticket, review: Review,
             now: datetime) -> None:
    from daemon.flows.answered import mark_answered
    from daemon.flows.answers import record_answer_text

    settings = rt.settings
    box = settings.mailboxes[ticket.mailbox]
    in_reply_to, references = citizen_thread(session, ticket)
    message_id = new_message_id(settings.own_message_id_domain(), f"answer.{ticket.id}")
    subject = one_line(ticket.subject)
    if f"[{ticket.id}]" not in subject:
        subject = f"RE: {subject} [{ticket.id}]"
    # Exactly the reviewed draft: its text and HTML as the supervisors saw them.
    raw = compose_raw(sender=(box.display_name, box.address),
                      recipients=[ticket.citizen_address], subject=subject,
                      message_id=message_id, now=now, text=review.draft_text,
                      html=review.draft_html or None, in_reply_to=in_reply_to,
                      references=references, automatic=False)  # the assistant's words
    for action, target in (("send", ticket.citizen_address), ("append", "\\Sent")):
        session.add(OutboxAction(mailbox=ticket.mailbox, action=action, target=target,
                                 message_id=message_id, raw=raw, ticket_id=ticket.id,
                                 created_at=now))
    session.add(OutboxAction(mailbox=ticket.mailbox, action="move", folder=review.draft_folder,
                             uidvalidity=review.draft_uidvalidity, uid=review.draft_uid,
                             target=settings.review.approved_folder, ticket_id=ticket.id,
                             created_at=now))
    session.add(MessageLink(message_id=message_id, ticket_id=ticket.id, direction="out"))
    # The answer is the drafter's; the supervisor stays on the review as its approver.
    mark_answered(rt, session, ticket, now, by=review.drafted_by, channel="approved")
    record_answer_text(session, ticket, review.draft_text)  # the approved text teaches
    plan_mail(rt, session, mailbox=ticket.mailbox, template="revision_aprobada",
              values={"ticket": ticket, "supervisor": review.decided_by},
              to=[review.drafted_by] if review.drafted_by else settings.people.assistants,
              now=now, ticket_id=ticket.id)
    add_trace(session, ticket.id, "approved", f"by {review.decided_by}; draft "
              f"{review.draft_sha256[:12]} sent to {ticket.citizen_address}", now,
              actor=review.decided_by)


def _observe(rt: Runtime, session: Session, ticket: Ticket, review: Review,
             now: datetime) -> None:
    settings = rt.settings
    ticket.status = "open"
    session.add(ticket)
    session.add(OutboxAction(mailbox=ticket.mailbox, action="move", folder=review.draft_folder,
                             uidvalidity=review.draft_uidvalidity, uid=review.draft_uid,
                             target=settings.review.observed_folder, ticket_id=ticket.id,
                             created_at=now))
    plan_mail(rt, session, mailbox=ticket.mailbox, template="revision_observada",
              values={"ticket": ticket, "supervisor": review.decided_by,
                      "observaciones": review.observations},
              to=[review.drafted_by] if review.drafted_by else settings.people.assistants,
              now=now, ticket_id=ticket.id)
    add_trace(session, ticket.id, "observed", f"by {review.decided_by}: "
              f"{review.observations[:300]}", now, actor=review.decided_by)
