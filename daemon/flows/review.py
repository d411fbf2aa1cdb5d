"""Legal answers reviewed by a supervisor, by mail (manual 7.4.1.1).

An assistant puts a draft in "Legal/Revisión"; the supervisors get a review request
carrying a single-use token; the first valid reply decides. APROBADO sends exactly the
reviewed draft to the citizen; OBSERVADO returns it to the assistant with the
observations. A From header is easy to forge, so an approval counts only with a live
token quoted from the request, from a configured supervisor, and (where configured) with
the agency's own border server vouching for the sender's domain.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import authres
from sqlmodel import Session, select

from daemon.decide.pipeline import referenced_ticket
from daemon.flows.second_level import citizen_thread
from daemon.mail.compose import compose_raw, new_message_id
from daemon.mail.imap import MailboxClient
from daemon.mail.parsing import Inbound, folded, one_line, parse_message
from daemon.runtime import Runtime
from daemon.store.db import DatabaseLookups, add_trace, as_aware, new_in_folder
from daemon.store.models import MessageLink, OutboxAction, Review, Ticket
from daemon.store.notify import plan_mail

log = logging.getLogger("daemon.review")

TOKEN = re.compile(r"\bREV-([0-9a-f]{32})\b")
_FORWARD = re.compile(r"^-{2,}\s*(Forwarded message|Mensaje reenviado|Mensaje original|"
                      r"Original Message)\s*-{2,}", re.IGNORECASE | re.MULTILINE)


# Pure decisions -------------------------------------------------------------------------

def new_token() -> str:
    return secrets.token_hex(16)  # 128 bits


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def verdict(body: str) -> tuple[str, str]:
    """('approved' | 'observed' | '', observations) from the reply's first non-blank line."""
    lines = body.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        first = folded(line.strip())
        if first.startswith("APROBADO"):
            return "approved", ""
        if first.startswith("OBSERVADO"):
            rest = line.strip()[len("OBSERVADO"):].lstrip(" :.-")
            after = [rest] + lines[index + 1:]
            own = "\n".join(after).split("\n>")[0]
            return "observed", _FORWARD.split(own)[0].strip()
        return "", ""
    return "", ""


def quoted_tokens(subject: str, body: str) -> list[str]:
    """Tokens that count: in the Subject, or in a quoted (">") line of the reply before
    any forwarded message. A token only present in forwarded text does not count."""
    found = TOKEN.findall(subject)
    own = _FORWARD.split(body)[0]
    for line in own.split("\n"):
        if line.lstrip().startswith(">"):
            found += TOKEN.findall(line)
    return list(dict.fromkeys(found))


def vouched_for(results: tuple[str, ...], authserv_id: str, domain: str) -> bool:
    """dkim=pass or dmarc=pass for `domain`, by the named server only."""
    for header in results:
        try:
            parsed = authres.AuthenticationResultsHeader.parse(
                f"Authentication-Results: {header}")
        except Exception:  # noqa: BLE001 - an unreadable header vouches for nothing
            continue
        if parsed.authserv_id.lower() != authserv_id.lower():
            continue
        for result in parsed.results:
            if result.method not in ("dkim", "dmarc") or result.result != "pass":
                continue
            for prop in result.properties:
                value = str(prop.value).lower().lstrip("@")
                if (prop.type, prop.name) in (("header", "d"), ("header", "from"),
                                              ("header", "i")) and value == domain.lower():
                    return True
    return False


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
            # Drafts written in the shared mailbox come From the mailbox itself: then the
            # assistants as a group are the ones to tell.
            author = "" if inbound.from_address in rt.own_addresses else inbound.from_address
            request_review(rt, session, ticket, folder, uidvalidity, mail.uid,
                           draft_text(mail.raw), author, now)
            requested += 1
    return requested


def request_review(rt: Runtime, session: Session, ticket: Ticket, folder: str,
                   uidvalidity: int, uid: int, draft: DraftText, drafted_by: str,
                   now: datetime) -> Review:
    token = new_token()
    expires = now + timedelta(hours=rt.settings.review.token_hours)
    for earlier in session.exec(select(Review).where(Review.ticket_id == ticket.id,
                                                     Review.decision == "")):
        earlier.decision, earlier.decided_at = "superseded", now  # a new round replaces it
        session.add(earlier)
    review = Review(ticket_id=ticket.id, draft_folder=folder, draft_uidvalidity=uidvalidity,
                    draft_uid=uid, draft_sha256=draft.sha256, draft_text=draft.text,
                    draft_html=draft.html, drafted_by=drafted_by,
                    token_sha256=token_digest(token), requested_at=now, expires_at=expires)
    session.add(review)
    ticket.status = "in_review"
    session.add(ticket)
    zone = rt.settings.zone
    left = as_aware(ticket.deadline) - now
    review.request_message_id = plan_mail(
        rt, session, mailbox=ticket.mailbox, template="revision_solicitud",
        values={"ticket": ticket, "borrador": draft.text, "token": f"REV-{token}",
                "plazo": as_aware(ticket.deadline).astimezone(zone),
                "horas_restantes": round(left.total_seconds() / 3600, 1),
                "vence_token": expires.astimezone(zone)},
        to=rt.settings.people.supervisors, now=now, ticket_id=ticket.id)
    add_trace(session, ticket.id, "review requested",
              f"draft {draft.sha256[:12]} sent to the supervisors", now)
    return review


# Replies -------------------------------------------------------------------------------

def is_review_reply(rt: Runtime, inbound: Inbound) -> bool:
    return bool(TOKEN.search(inbound.subject) or TOKEN.search(inbound.text)
                or inbound.from_address in rt.settings.people.supervisors)


def handle_reply(rt: Runtime, session: Session, ticket: Ticket, inbound: Inbound,
                 received_at: datetime, now: datetime) -> str:
    """Apply a supervisor's reply (arrived at `received_at`); returns what happened."""
    decision, observations = verdict(inbound.text)
    if not decision:
        return "no verdict on the first line"
    problem = _why_not(rt, session, inbound, received_at)
    if isinstance(problem, str):
        _reject(rt, session, ticket, inbound, problem, now)
        return f"rejected: {problem}"
    review = problem
    claimed = session.exec(select(Review).where(Review.id == review.id, Review.decision == "")
                           .with_for_update()).first()
    if claimed is None:
        add_trace(session, ticket.id, "review reply too late",
                  f"{inbound.from_address} answered after {review.decided_by} decided", now)
        plan_mail(rt, session, mailbox=ticket.mailbox, template="revision_ya_decidida",
                  values={"ticket": ticket, "decision": review.decision,
                          "por": review.decided_by},
                  to=[inbound.from_address], now=now, ticket_id=ticket.id)
        return "already decided"
    review.decision, review.decided_by, review.decided_at = decision, inbound.from_address, now
    review.observations = observations
    session.add(review)
    if decision == "approved":
        _approve(rt, session, ticket, review, now)
    else:
        _observe(rt, session, ticket, review, now)
    return decision


def _why_not(rt: Runtime, session: Session, inbound: Inbound,
             received_at: datetime) -> str | Review:
    """The review this reply may decide, or why it may not."""
    supervisors = [a.lower() for a in rt.settings.people.supervisors]
    if inbound.from_address.lower() not in supervisors:
        return f"{inbound.from_address} is not a configured supervisor"
    authserv = rt.settings.trust.authserv_id
    domain = inbound.from_address.rpartition("@")[2]
    if authserv and not vouched_for(inbound.authentication_results, authserv, domain):
        return f"{authserv} does not vouch (dkim/dmarc) for {domain}: the sender may be forged"
    tokens = quoted_tokens(inbound.subject, inbound.text)
    if not tokens:
        return "no review token in the Subject or in the quoted request"
    for token in tokens:
        digest = token_digest(token)
        for review in session.exec(select(Review)):
            if not hmac.compare_digest(review.token_sha256, digest):
                continue
            if review.decision == "superseded":
                return "the token belongs to an older draft"
            if review.decision and review.decided_by.lower() == inbound.from_address.lower():
                return f"the token was already used ({review.decision}): a replay"
            if review.decision:
                return review  # another supervisor got there first: they are told so
            if as_aware(review.expires_at) < received_at:
                return "the token expired"
            return review
    return "the token is unknown"


def _reject(rt: Runtime, session: Session, ticket: Ticket, inbound: Inbound, why: str,
            now: datetime) -> None:
    add_trace(session, ticket.id, "review reply rejected",
              f"from {inbound.from_address}: {why}", now)
    if rt.settings.people.coordinators:
        plan_mail(rt, session, mailbox=ticket.mailbox, template="revision_rechazada",
                  values={"ticket": ticket, "remitente": inbound.from_address, "motivo": why,
                          "asunto": inbound.subject},
                  to=rt.settings.people.coordinators, now=now, ticket_id=ticket.id)
    log.warning("review reply for %s rejected: %s", ticket.id, why)


def _approve(rt: Runtime, session: Session, ticket: Ticket, review: Review,
             now: datetime) -> None:
    from daemon.flows.answers import mark_answered, record_answer_text

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
                      references=references)
    for action, target in (("send", ticket.citizen_address), ("append", "\\Sent")):
        session.add(OutboxAction(mailbox=ticket.mailbox, action=action, target=target,
                                 message_id=message_id, raw=raw, ticket_id=ticket.id,
                                 created_at=now))
    session.add(OutboxAction(mailbox=ticket.mailbox, action="move", folder=review.draft_folder,
                             uidvalidity=review.draft_uidvalidity, uid=review.draft_uid,
                             target=settings.review.approved_folder, ticket_id=ticket.id,
                             created_at=now))
    session.add(MessageLink(message_id=message_id, ticket_id=ticket.id, direction="out"))
    mark_answered(rt, session, ticket, now, by=review.decided_by, channel="approved")
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
