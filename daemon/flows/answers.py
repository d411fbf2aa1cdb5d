"""Answers: a reply in the mailbox's Sent folder, or a consulta moved to "Atendidos",
marks its ticket answered, with who answered and the response time."""

from __future__ import annotations

import logging

from imapclient.imapclient import SENT
from sqlmodel import Session

from daemon.decide.pipeline import referenced_ticket
from daemon.flows import relay
from daemon.flows.answered import mark_answered
from daemon.flows.knowledge import judge_use
from daemon.mail.imap import MailboxClient
from daemon.mail.parsing import Inbound, own_part, parse_message
from daemon.runtime import Runtime
from daemon.store.db import DatabaseLookups, add_trace, new_in_folder, utcnow
from daemon.store.models import MessageLink, Ticket

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


def to_organs_only(rt: Runtime, inbound: Inbound) -> bool:
    """A mail whose every recipient is an organ: staff writing to an organ."""
    organs = {organ.address.lower() for organ in rt.settings.organs.values()}
    return bool(inbound.to) and set(inbound.to) <= organs


def sent_folder(client: MailboxClient) -> str | None:
    return client.client.find_special_folder(SENT)


def record_answers(rt: Runtime, mailbox: str, client: MailboxClient) -> int:
    """Tie each new mail of the Sent folder to its ticket and mark the ticket answered."""
    folder = sent_folder(client)
    if folder is None:
        return 0
    answered = 0
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
                                       utcnow()) == "sent back" or to_organs_only(rt, inbound):
                continue  # a mail to an organ answers no citizen
            # An incident is answered through relay, a suggestion by its result.
            if ticket.kind == "consulta" and mark_answered(
                    rt, session, ticket, mail.internaldate, attribute(rt, inbound), "mail"):
                answered += 1
                record_answer_text(session, ticket, inbound.text)
    if answered:
        log.info("%s: %d consultas answered through %s", mailbox, answered, folder)
    return answered
