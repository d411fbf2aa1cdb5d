"""What the assistants' moves mean. buzon looks at what arrived in each watched folder
since its last look and acts on the ticketed mail found there:

- a category folder or "Por clasificar" other than buzon's choice: a correction, and a
  labelled example for the classifier;
- "Atendidos": the consulta was answered by another channel (phone, in person);
- "Derivar/<ORGAN>": the consulta (or suggestion) goes to a second-level organ;
- "No es sugerencia" (in sugerencias@): the mail is closed, the citizen told where to go;
- "Incidencias/<criticality>": the consulta becomes an incident (daemon.flows.incidents).

A move that sends mail (all but the sorting ones) waits `folders.move_grace_minutes`
first: a mail moved there by mistake and moved back in time sends nothing.

It also reads the complexity keywords assistants put on the mail in the incident folders.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session, select

from classifiers.outcomes import OFF_TOPIC
from daemon.flows import incidents, second_level
from daemon.flows.answered import mark_answered
from daemon.mail.imap import MailboxClient
from daemon.runtime import Runtime
from daemon.store import mail_identity
from daemon.store.db import add_trace, new_in_folder
from daemon.store.models import LabelledExample, Ticket
from daemon.store.notify import plan_mail

log = logging.getLogger("daemon.moves")

def derive_folder(rt: Runtime, organ: str) -> str:
    return f"{rt.settings.folders.derive}/{organ}"


def watched_folders(rt: Runtime, mailbox: str) -> list[str]:
    folders = rt.settings.folders
    organs = [derive_folder(rt, organ) for organ in rt.settings.organs]
    if rt.settings.mailbox_kind(mailbox) == "sugerencia":
        return [folders.not_a_suggestion, *organs]
    incident_folders = incidents.incident_folders(rt) if rt.settings.incidents_enabled else []
    return [*folders.categories, folders.review, folders.off_topic, folders.answered, *organs,
            *incident_folders]


def record_moves(rt: Runtime, mailbox: str, client: MailboxClient, now: datetime) -> int:
    found = _record_new_moves(rt, mailbox, client, now)
    _apply_due_moves(rt, mailbox, client, now)
    return found


def _record_new_moves(rt: Runtime, mailbox: str, client: MailboxClient, now: datetime) -> int:
    found = 0
    for folder in watched_folders(rt, mailbox):
        incident_folder = incidents.criticality_of(rt, folder) is not None
        with new_in_folder(rt.engine, client, mailbox, folder) as (session, uids, _validity):
            # Keywords change on mail already in an incident folder: the whole (small)
            # folder is read there.
            looked_at = client.client.search() if incident_folder else uids
            identities = mail_identity.fetch_identities(client, looked_at)
            owner_of = mail_identity.owners(session, mailbox, identities)
            for uid in uids:
                ticket = session.get(Ticket, owner_of[uid]) if uid in owner_of else None
                if (ticket is None or ticket.folder == folder
                        or ticket.kind == "incidencia"):  # moves with its consulta
                    continue
                _moved(rt, session, ticket, folder, now)
                found += 1
            if incident_folder and owner_of:
                session.flush()
                flags = client.client.fetch(list(owner_of), ["FLAGS"])
                incidents.read_complexity_keywords(
                    rt, session, [(owner_of[uid], data.get(b"FLAGS", ()))
                                  for uid, data in flags.items() if uid in owner_of], now)
    if found:
        log.info("%s: %d moves by the assistants recorded", mailbox, found)
    return found


def _not_a_suggestion(rt: Runtime, session: Session, ticket: Ticket, now: datetime) -> None:
    ticket.status, ticket.result, ticket.answered_at = "closed", "not_a_suggestion", now
    if rt.settings.suggestions.reply_when_not_a_suggestion:
        in_reply_to, references = second_level.citizen_thread(session, ticket)
        plan_mail(rt, session, mailbox=ticket.mailbox, template="no_es_sugerencia",
                  values={"ticket": ticket}, to=[ticket.citizen_address], now=now,
                  ticket_id=ticket.id, in_reply_to=in_reply_to, references=references)
    add_trace(session, ticket.id, "closed", "not a suggestion", now, actor="assistant")


def sends_mail(rt: Runtime, folder: str) -> bool:
    """Whether a move to this folder makes buzon write to someone (not a sorting move)."""
    folders = rt.settings.folders
    return (folder in (folders.answered, folders.not_a_suggestion)
            or folder.startswith(f"{folders.derive}/")
            or incidents.criticality_of(rt, folder) is not None)


def is_sorting(folders, folder: str) -> bool:
    """A folder an assistant sorts consultas into: a move there is a reclassification."""
    return folder in (*folders.categories, folders.review, folders.off_topic)


def _moved(rt: Runtime, session: Session, ticket: Ticket, folder: str, now: datetime) -> None:
    folders = rt.settings.folders
    previous = ticket.folder
    sorting = is_sorting(folders, folder)
    add_trace(session, ticket.id, "reclassified" if sorting else "moved",
              f"moved by an assistant from {previous} to {folder}", now, actor="assistant")
    ticket.folder = folder
    if ticket.pending_move and ticket.pending_move != folder:
        add_trace(session, ticket.id, "move undone",
                  f"moved out of {ticket.pending_move} within the grace period: nothing "
                  "was sent", now, actor="assistant")
        ticket.pending_move, ticket.pending_move_at = "", None
    grace = rt.settings.folders.move_grace_minutes
    if sends_mail(rt, folder) and grace:
        ticket.pending_move, ticket.pending_move_at = folder, now
        add_trace(session, ticket.id, "move pending",
                  f"takes effect in {grace} minutes unless the mail is moved back", now)
    else:
        _act(rt, session, ticket, folder, now, previous)
    session.add(ticket)


def _apply_due_moves(rt: Runtime, mailbox: str, client: MailboxClient, now: datetime) -> None:
    """Moves whose grace period is over take effect, if the mail is still there."""
    due = now - timedelta(minutes=rt.settings.folders.move_grace_minutes)
    with Session(rt.engine) as session:
        for ticket in session.exec(select(Ticket).where(
                Ticket.mailbox == mailbox, Ticket.pending_move != "",
                Ticket.pending_move_at <= due)):
            folder = ticket.pending_move
            still_there = client.client.folder_exists(client.server_name(folder))
            if still_there:
                client.select(folder)
                still_there = bool(mail_identity.locate(client, session, mailbox,
                                                        [ticket.id]).get(ticket.id))
            ticket.pending_move, ticket.pending_move_at = "", None
            if still_there:
                _act(rt, session, ticket, folder, now)
            else:
                add_trace(session, ticket.id, "move undone",
                          f"no longer in {folder} when its grace period ended: nothing was "
                          "sent", now)
            session.add(ticket)
        session.commit()


def _act(rt: Runtime, session: Session, ticket: Ticket, folder: str, now: datetime,
         previous: str = "") -> None:
    """What a move to `folder` (from `previous`) means for the ticket."""
    folders = rt.settings.folders
    sorting = is_sorting(folders, folder)
    if sorting:
        if not ticket.first_folder:
            ticket.first_folder = previous
        if folder in (*folders.categories, folders.off_topic):
            # Off-topic mail has no category: the reports count it under its folder.
            off_topic = folder == folders.off_topic
            ticket.category = "" if off_topic else folder
            if ticket.question:
                label = OFF_TOPIC if off_topic else folder
                key = f"correction:{ticket.id}"
                example = session.get(LabelledExample, key) or LabelledExample(
                    key=key, text=ticket.question, label=label, source="correction",
                    ticket_id=ticket.id, created_at=now)
                example.label = label
                session.add(example)
    elif folder == folders.answered:
        mark_answered(rt, session, ticket, now, by="", channel="other")
    elif folder == folders.not_a_suggestion and ticket.kind == "sugerencia":
        _not_a_suggestion(rt, session, ticket, now)
    elif folder.startswith(f"{folders.derive}/"):
        second_level.derive(rt, session, ticket, folder.split("/", 1)[1], now)
    elif incidents.criticality_of(rt, folder) and ticket.kind == "consulta":
        incidents.open_incident(rt, session, ticket, folder, now)
    session.add(ticket)
