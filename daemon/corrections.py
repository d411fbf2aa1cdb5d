"""Learning from the mailbox: the assistants' moves between category folders become
corrections, and the hand-sorted folders of a live mailbox become labelled examples."""

from __future__ import annotations

import logging
import re

from sqlmodel import Session, select

from classifiers.text import judged_text
from daemon.imap import MailboxClient
from daemon.models import LabelledExample, Ticket
from daemon.parsing import parse_message
from daemon.runtime import Runtime
from daemon.store import add_trace, mailbox_state, utcnow

log = logging.getLogger("daemon.corrections")

TICKET_KEYWORD = re.compile(rb"^[A-Z]+-[0-9]{4}-[0-9]+$")


def watched_folders(rt: Runtime) -> list[str]:
    folders = rt.settings.folders
    return [*folders.categories, folders.review]


def record_corrections(rt: Runtime, mailbox: str, client: MailboxClient) -> int:
    """Look at what arrived in each category folder since the last look: a ticketed mail
    an assistant put in another folder than buzon did is a correction (and a new
    labelled example when it went to a category)."""
    found = 0
    categories = set(rt.settings.folders.categories)
    for folder in watched_folders(rt):
        uidvalidity = client.select(folder)
        with Session(rt.engine) as session:
            state = mailbox_state(session, mailbox, folder)
            if state.uidvalidity != uidvalidity:
                state.uidvalidity, state.last_uid = uidvalidity, 0
            uids = client.uids_after(state.last_uid)
            flags = client.client.fetch(uids, ["FLAGS"]) if uids else {}
            now = utcnow()
            for uid in uids:
                ticket_ids = [f.decode() for f in flags.get(uid, {}).get(b"FLAGS", ())
                              if TICKET_KEYWORD.match(f)]
                for ticket_id in ticket_ids:
                    ticket = session.get(Ticket, ticket_id)
                    if ticket is None or ticket.mailbox != mailbox or ticket.folder == folder:
                        continue
                    add_trace(session, ticket.id, "reclassified",
                              f"moved by an assistant from {ticket.folder} to {folder}", now,
                              actor="assistant")
                    if folder in categories and ticket.question:
                        key = f"correction:{ticket.id}"
                        example = session.get(LabelledExample, key) or LabelledExample(
                            key=key, text=ticket.question, label=folder, source="correction",
                            ticket_id=ticket.id, created_at=now)
                        example.label = folder
                        session.add(example)
                    if not ticket.first_folder:
                        ticket.first_folder = ticket.folder
                    ticket.folder = folder
                    session.add(ticket)
                    found += 1
            if uids:
                state.last_uid = max(uids)
            session.add(state)
            session.commit()
    if found:
        log.info("%s: %d corrections recorded from the assistants' moves", mailbox, found)
    return found


def harvest(rt: Runtime, mailbox: str, client: MailboxClient) -> int:
    """Every mail in the category folders becomes a labelled example (years of mail
    sorted by hand are the best training data the agency has)."""
    added = 0
    for folder in rt.settings.folders.categories:
        client.select(folder)
        uids = client.uids_after(0)
        for start in range(0, len(uids), 500):
            mails = client.fetch_mails(uids[start:start + 500])
            with Session(rt.engine) as session:
                for mail in mails:
                    inbound = parse_message(mail.raw)
                    if inbound.problem:
                        continue
                    key = f"harvest:{mailbox}:{inbound.message_id or mail.sha256}"
                    if session.get(LabelledExample, key) is None:
                        session.add(LabelledExample(
                            key=key, text=judged_text(inbound.subject, inbound.text)[:4000],
                            label=folder, source="harvest", created_at=utcnow()))
                        added += 1
                session.commit()
        log.info("harvested %s/%s: %d mails", mailbox, folder, len(uids))
    return added


def examples_in_database(rt: Runtime) -> int:
    with Session(rt.engine) as session:
        return len(list(session.exec(select(LabelledExample.key))))
