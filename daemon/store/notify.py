"""Planning the mails buzon writes to people (staff, organs, citizens) as outbox rows,
each at most once per event key, in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from daemon.mail.capability import hashed_id, new_capability
from daemon.mail.compose import Attachment, new_message_id, render_mail
from daemon.runtime import Runtime
from daemon.store.models import Capability, MessageLink, Notice, OutboxAction


@dataclass(frozen=True)
class Grant:
    """The capability a request carries: who may answer it, for which step, until when."""

    holder: str  # supervisor, organ:<NAME>, citizen
    step: str
    expires_at: datetime
    bound: str = ""


def claim(session: Session, key: str, now: datetime) -> bool:
    """True the first time `key` is claimed; the claim commits with the caller's work."""
    if session.get(Notice, key) is not None:
        return False
    session.add(Notice(key=key, at=now))
    session.flush()
    return True


def plan_mail(
    rt: Runtime,
    session: Session,
    *,
    mailbox: str,
    template: str,
    values: dict,
    to: list[str],
    now: datetime,
    ticket_id: str | None = None,
    cc: list[str] | tuple[str, ...] = (),
    in_reply_to: str = "",
    references: tuple[str, ...] = (),
    attachments: tuple[Attachment, ...] = (),
    grant: Grant | None = None,
    automatic: bool = True,
) -> str:
    """Render a mail from the mailbox's address and queue it; returns its Message-ID as
    kept (a capability's hashed).

    The mail's Message-ID is linked to the ticket, so replies to it thread back. With a
    `grant` (to one role holder only) it is a capability for a reply to this request."""
    box = rt.settings.mailboxes[mailbox]
    tag = f"{template}.{ticket_id}" if ticket_id else template
    domain = rt.settings.own_message_id_domain()
    if grant is not None:
        message_id, digest = new_capability(domain, tag.replace("_", "-"))
        session.add(Capability(digest=digest, ticket_id=ticket_id or "", holder=grant.holder,
                               step=grant.step, bound=grant.bound, issued_at=now,
                               expires_at=grant.expires_at))
    else:
        message_id = new_message_id(domain, tag.replace("_", "-"))
    outgoing = render_mail(
        rt.templates, template, values, sender=(box.display_name, box.address), recipient=to,
        cc=cc, message_id=message_id, now=now, in_reply_to=in_reply_to,
        references=references, attachments=attachments, automatic=automatic,
    )
    kept = hashed_id(message_id)  # the outbox forgets the raw mail once it is sent
    session.add(OutboxAction(mailbox=mailbox, action="send", target=outgoing.recipient,
                             message_id=kept, raw=outgoing.raw, ticket_id=ticket_id,
                             created_at=now))
    if ticket_id:
        session.add(MessageLink(message_id=kept, ticket_id=ticket_id, direction="out"))
    return kept


def flag_ticket_mail(session: Session, mailbox: str, ticket_id: str, folder: str,
                     keywords: list[str], now: datetime) -> None:
    """Queue keywords (and flags) for the ticket's mail wherever it lies in `folder`:
    the executor finds it by its ticket-id keyword."""
    session.add(OutboxAction(mailbox=mailbox, action="flag_ticket", folder=folder,
                             target=ticket_id, keywords=" ".join(keywords),
                             ticket_id=ticket_id, created_at=now))
