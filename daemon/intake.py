"""Intake of new mail: fetch, decide, and record each decision in one transaction."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session, select

from daemon.compose import new_message_id, render_mail
from daemon.imap import FetchedMail, MailboxClient
from daemon.models import MailRecord, MessageLink, OutboxAction, Ticket
from daemon.parsing import Inbound, parse_message
from daemon.pipeline import Arrival, Decision, decide
from daemon.runtime import Runtime
from daemon.store import (
    DatabaseLookups,
    add_trace,
    format_ticket_id,
    mailbox_state,
    next_ticket_number,
    utcnow,
)

log = logging.getLogger("daemon.pipeline")


def ticket_keywords(ticket: Ticket, zone) -> list[str]:
    """IMAP keywords an assistant sees as tags: ticket id, receipt date, deadline date."""
    return [
        ticket.id,
        f"Recibido_{ticket.effective_receipt.astimezone(zone):%Y-%m-%d}",
        f"Vence_{ticket.deadline.astimezone(zone):%Y-%m-%d}",
    ]


def sync_position(rt: Runtime, mailbox: str, folder: str, uidvalidity: int) -> int:
    """The last UID handled in this folder; a new UIDVALIDITY starts over from UID 0."""
    with Session(rt.engine) as session:
        state = mailbox_state(session, mailbox, folder)
        if state.uidvalidity != uidvalidity:
            if state.uidvalidity:
                log.warning("UIDVALIDITY changed from %s to %s in %s/%s: re-syncing by "
                            "Message-ID and content hash", state.uidvalidity, uidvalidity,
                            mailbox, folder)
            state.uidvalidity = uidvalidity
            state.last_uid = 0
            session.add(state)
        last_uid = state.last_uid
        session.commit()
    return last_uid


def process_new_mail(rt: Runtime, mailbox: str, client: MailboxClient) -> int:
    """Decide and record every mail that arrived since the last UID; returns how many."""
    folder = rt.settings.mailboxes[mailbox].imap.inbox
    uidvalidity = client.select(folder)
    last_uid = sync_position(rt, mailbox, folder, uidvalidity)
    uids = client.uids_after(last_uid)
    batch_size = rt.settings.watcher.fetch_batch
    for start in range(0, len(uids), batch_size):
        batch = uids[start:start + batch_size]
        mails = client.fetch_mails(batch)
        for mail in mails:
            record_mail(rt, mailbox, folder, uidvalidity, mail)
        if mails:
            rt.crash_point("after_commit")
        if len(mails) < len(batch):
            # Expunged before we fetched them: nothing to do, but move the position on.
            _advance(rt, mailbox, folder, batch[-1])
    return len(uids)


def _advance(rt: Runtime, mailbox: str, folder: str, uid: int) -> None:
    with Session(rt.engine) as session:
        state = mailbox_state(session, mailbox, folder)
        state.last_uid = max(state.last_uid, uid)
        session.add(state)
        session.commit()


def record_mail(rt: Runtime, mailbox: str, folder: str, uidvalidity: int,
                mail: FetchedMail) -> Decision:
    inbound = parse_message(mail.raw)
    kind = rt.settings.mailbox_kind(mailbox)
    arrival = Arrival(mailbox=mailbox, kind=kind, internaldate=mail.internaldate,
                      sha256=mail.sha256)
    with Session(rt.engine) as session:
        seen = session.exec(select(MailRecord.id).where(
            MailRecord.mailbox == mailbox, MailRecord.folder == folder,
            MailRecord.uidvalidity == uidvalidity, MailRecord.uid == mail.uid)).first()
        if seen is not None:
            return Decision(outcome="seen")
        decision = decide(inbound, arrival, rt.pipeline_context(DatabaseLookups(session)))
        now = utcnow()
        ticket_id = _apply_decision(rt, session, mailbox, folder, uidvalidity, mail, inbound,
                                    decision, kind, now)
        session.add(MailRecord(
            mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, uid=mail.uid,
            message_id=inbound.message_id, sha256=mail.sha256, sha256_scope=mail.sha256_scope,
            size=mail.size, internaldate=mail.internaldate, sender=inbound.from_address,
            subject=inbound.subject[:300], outcome=decision.outcome, reason=decision.reason,
            destination=decision.folder if decision.folder != folder else "",
            stage=decision.stage, ticket_id=ticket_id, recorded_at=now,
        ))
        state = mailbox_state(session, mailbox, folder)
        state.last_uid = max(state.last_uid, mail.uid)
        session.add(state)
        session.commit()
    log.info("mail %s/%s uid=%s: %s%s (%s)", mailbox, folder, mail.uid, decision.outcome,
             f" {ticket_id}" if ticket_id else "", decision.reason)
    return decision


def _apply_decision(rt: Runtime, session: Session, mailbox: str, folder: str, uidvalidity: int,
                    mail: FetchedMail, inbound: Inbound, decision: Decision, kind: str,
                    now: datetime) -> str | None:
    """Write the ticket, trace and planned actions a decision calls for; returns the ticket id."""
    zone = rt.settings.zone
    keywords: list[str] = []
    ticket_id = decision.ticket_id
    if decision.outcome == "ticket":
        ticket = _open_ticket(rt, session, mailbox, kind, inbound, decision, mail, now)
        ticket_id = ticket.id
        keywords = ticket_keywords(ticket, zone)
        if decision.acknowledge:
            _plan_acknowledgement(rt, session, mailbox, kind, ticket, inbound, mail, now)
    elif decision.outcome in ("followup", "duplicate") and ticket_id:
        ticket = session.get(Ticket, ticket_id)
        keywords = ticket_keywords(ticket, zone)
        add_trace(session, ticket_id, decision.outcome,
                  f"{inbound.from_address} wrote again: {inbound.subject[:200]}", now)
    if decision.outcome == "followup" and inbound.message_id and ticket_id:
        if session.get(MessageLink, (inbound.message_id, ticket_id)) is None:
            session.add(MessageLink(message_id=inbound.message_id, ticket_id=ticket_id))

    def action(name: str, **values) -> None:
        session.add(OutboxAction(mailbox=mailbox, action=name, folder=folder,
                                 uidvalidity=uidvalidity, uid=mail.uid, ticket_id=ticket_id,
                                 created_at=now, **values))

    if keywords:
        action("keywords", keywords=" ".join(keywords))
    if decision.folder and decision.folder != folder:
        action("move", target=decision.folder)
    return ticket_id


def _open_ticket(rt: Runtime, session: Session, mailbox: str, kind: str, inbound: Inbound,
                 decision: Decision, mail: FetchedMail, now: datetime) -> Ticket:
    prefix = rt.settings.ticket_prefix(mailbox)
    year = decision.effective_receipt.year
    ticket_id = format_ticket_id(prefix, year, next_ticket_number(session, prefix, year))
    ticket = Ticket(
        id=ticket_id, mailbox=mailbox, kind=kind, status="open",
        folder=decision.folder or "", citizen_address=inbound.reply_address,
        citizen_name=inbound.from_name, subject=inbound.subject[:300],
        received_at=mail.internaldate, effective_receipt=decision.effective_receipt,
        deadline=decision.deadline, classification_source=decision.classification_source,
        classification_confidence=decision.confidence, created_at=now,
        acknowledged=decision.acknowledge,
    )
    session.add(ticket)
    if inbound.message_id:
        session.add(MessageLink(message_id=inbound.message_id, ticket_id=ticket_id))
    details = [f"from {inbound.from_address}", f"folder {decision.folder or 'INBOX'}"]
    if decision.classification_source:
        details.append(f"classified by {decision.classification_source}")
    add_trace(session, ticket_id, "received", "; ".join(details + list(decision.notes)), now)
    return ticket


def _plan_acknowledgement(rt: Runtime, session: Session, mailbox: str, kind: str, ticket: Ticket,
                          inbound: Inbound, mail: FetchedMail, now: datetime) -> None:
    settings = rt.settings
    zone = settings.zone
    box = settings.mailboxes[mailbox]
    message_id = new_message_id(settings.own_message_id_domain(), f"ack.{ticket.id}")
    received = mail.internaldate.astimezone(zone)
    effective = ticket.effective_receipt.astimezone(zone)
    values = {
        "ticket_id": ticket.id,
        "asunto": inbound.subject[:120],
        "nombre": inbound.from_name,
        "recibido": received,
        "recepcion_oficial": effective,
        "plazo": ticket.deadline.astimezone(zone),
        "fuera_de_horario": effective.date() != received.date(),
        "hora_corte": settings.calendar.cutoff.strftime("%H:%M"),
    }
    outgoing = render_mail(
        rt.templates, f"acuse_{kind}", values, sender=(box.display_name, box.address),
        recipient=ticket.citizen_address, message_id=message_id, now=now,
        in_reply_to=inbound.message_id, references=inbound.references,
    )
    session.add(OutboxAction(mailbox=mailbox, action="send", target=outgoing.recipient,
                             message_id=message_id, raw=outgoing.raw, ticket_id=ticket.id,
                             created_at=now))
    session.add(MessageLink(message_id=message_id, ticket_id=ticket.id, direction="out"))
    add_trace(session, ticket.id, "acknowledgement planned", f"to {outgoing.recipient}", now)
