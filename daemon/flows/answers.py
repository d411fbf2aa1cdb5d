"""Answers: a reply in the mailbox's Sent folder, or a consulta moved to "Atendidos",
marks its ticket answered, with who answered and the response time. A reply that left
with the suggested draft's note for the assistant still in it, or a legal answer that
left without a supervisor's approval, is told once per ticket to whom it concerns."""

from __future__ import annotations

import logging
from datetime import datetime

from imapclient.imapclient import SENT
from sqlmodel import Session, select

from daemon.decide.pipeline import referenced_ticket
from daemon.decide.scrub import NOTE_END, NOTE_START, has_note
from daemon.flows import relay
from daemon.flows.answered import mark_answered
from daemon.flows.knowledge import judge_use
from daemon.mail.imap import MailboxClient
from daemon.mail.parsing import Inbound, own_part, parse_message
from daemon.runtime import Runtime
from daemon.store.db import DatabaseLookups, add_trace, new_in_folder, utcnow
from daemon.store.models import MessageLink, Review, Ticket
from daemon.store.notify import claim, plan_mail

log = logging.getLogger("daemon.answers")


def record_answer_text(session: Session, ticket: Ticket, text: str) -> None:
    """Keep what was sent (it grows the knowledge) and judge the suggestion, if any."""
    ticket.answer_text = own_part(text)[:20000]
    session.add(ticket)
    outcome = judge_use(session, ticket, text)
    if outcome:
        add_trace(session, ticket.id, "suggestion " + outcome,
                  "the reply sent compared with buzon's suggested draft", utcnow())


def attribute(rt: Runtime, inbound: Inbound) -> str:
    """Who answered: the assistant whose signature closes the reply, else the sender
    when it is an assistant's own address."""
    people = rt.settings.people
    # The signature is what tells who answered: only the quoted mail is left out here.
    own_text = inbound.text.split("\n>")[0][:5000].lower()
    found = [(own_text.rfind(name.lower()), address)
             for address, name in people.signatures.items() if name.lower() in own_text]
    if found:
        return max(found)[1]
    if inbound.from_address in people.assistants:
        return inbound.from_address
    return ""


def to_staff_only(rt: Runtime, inbound: Inbound) -> bool:
    """A mail whose every recipient is an organ or one of the agency's mailboxes: staff
    writing to an organ, or forwarding to the other mailbox."""
    staff = {organ.address.lower() for organ in rt.settings.organs.values()}
    staff |= {address.lower() for address in rt.own_addresses}
    return bool(inbound.to) and set(inbound.to) <= staff


def sent_folder(client: MailboxClient) -> str | None:
    return client.client.find_special_folder(SENT)


def record_answers(rt: Runtime, mailbox: str, client: MailboxClient) -> int:
    """Tie each new mail of the Sent folder to its ticket and mark the ticket answered."""
    folder = sent_folder(client)
    if folder is None:
        return 0
    answered = 0
    now = utcnow()
    own_domain = rt.settings.own_message_id_domain()
    news = new_in_folder(rt.engine, client, mailbox, folder, f"sent:{folder}")
    with news as (session, uids, _uidvalidity):
        lookups = DatabaseLookups(session)
        for mail in client.fetch_mails(uids):
            inbound = parse_message(mail.raw)
            if inbound.message_id.endswith(f"@{own_domain}>"):
                continue  # a copy of buzon's own mail
            found = referenced_ticket(lookups, mailbox, inbound)
            if found is None:
                continue
            ticket = session.get(Ticket, found[0])
            if inbound.message_id and session.get(
                    MessageLink, (inbound.message_id, ticket.id)) is None:
                session.add(MessageLink(message_id=inbound.message_id, ticket_id=ticket.id,
                                        direction="out"))
            # An organ's answer waiting for an assistant is sent on to the citizen, or
            # sent back to the organ (daemon.flows.relay).
            if relay.sent_from_mailbox(rt, session, ticket, inbound, mail.internaldate,
                                       now) == "sent back" or to_staff_only(rt, inbound):
                continue  # a mail to an organ or a mailbox answers no citizen
            # An incident is answered through relay, a suggestion by its result.
            if ticket.kind != "consulta":
                continue
            by = attribute(rt, inbound)
            if mark_answered(rt, session, ticket, mail.internaldate, by, "mail"):
                answered += 1
                record_answer_text(session, ticket, inbound.text)
                if is_legal(ticket) and not approved(session, ticket):
                    tell_unapproved(rt, session, ticket, by, now)
            if has_note(inbound.text):
                tell_note_sent(rt, session, ticket, inbound, by, now)
    if answered:
        log.info("%s: %d consultas answered through %s", mailbox, answered, folder)
    return answered


# What left through Sent that should not have ----------------------------------------------

LEGAL = "Legal"  # the category whose answers a supervisor approves (manual 7.4.1.1)


def is_legal(ticket: Ticket) -> bool:
    return LEGAL in (ticket.category, ticket.folder.split("/")[0])


def approved(session: Session, ticket: Ticket) -> bool:
    return session.exec(select(Review).where(Review.ticket_id == ticket.id,
                                             Review.decision == "approved")).first() is not None


def tell_note_sent(rt: Runtime, session: Session, ticket: Ticket, inbound: Inbound, by: str,
                   now: datetime) -> None:
    """The assistant who sent it learns, once per ticket, that the citizen got the note."""
    if not claim(session, f"note-sent:{ticket.id}", now):
        return
    # Sent from the shared mailbox by no one known: the assistants as a group are told.
    own = {address.lower() for address in rt.own_addresses}
    writer = by or ("" if inbound.from_address in own else inbound.from_address)
    to = [writer] if writer else rt.settings.people.assistants
    add_trace(session, ticket.id, "note sent to the citizen", "the reply in Sent still held "
              f"the suggested draft's note for the assistant; told {', '.join(to)}", now)
    if to:
        plan_mail(rt, session, mailbox=ticket.mailbox, template="nota_en_respuesta",
                  values={"ticket": ticket, "nota_inicio": NOTE_START, "nota_fin": NOTE_END},
                  to=to, now=now, ticket_id=ticket.id)


def tell_unapproved(rt: Runtime, session: Session, ticket: Ticket, by: str,
                    now: datetime) -> None:
    """The supervisors learn, once per ticket, of a legal answer sent without approval."""
    if not claim(session, f"legal-unapproved:{ticket.id}", now):
        return
    supervisors = rt.settings.people.supervisors
    add_trace(session, ticket.id, "legal answer sent without approval",
              f"a reply left through Sent with no approved review; told "
              f"{', '.join(supervisors) or 'no supervisor (none configured)'}", now)
    if supervisors:
        plan_mail(rt, session, mailbox=ticket.mailbox, template="legal_sin_aprobacion",
                  values={"ticket": ticket, "asistente": by,
                          "carpeta_revision": rt.settings.review.folder},
                  to=supervisors, now=now, ticket_id=ticket.id)
