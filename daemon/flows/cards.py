"""The ticket card ("Ficha"): a short note buzon appends beside a ticket's mail, in the
same folder and threaded under it, so an assistant sees the ticket id, the official
receipt and the deadline in any mail client, without a byte of the citizen's mail
changed and without a keyword per ticket (see daemon.flows.mail_identity).

The card is never sent. It is recognised when it comes back through the INBOX (where a
suggestion stays) by its Message-ID, which only buzon knows, and is left alone."""

from __future__ import annotations

from datetime import datetime

from daemon.config import Settings
from daemon.mail.compose import new_message_id, render_mail
from daemon.runtime import Runtime

CARD_TAG = "ficha"


def card_message_id(settings: Settings, ticket_id: str) -> str:
    return new_message_id(settings.own_message_id_domain(), f"{CARD_TAG}.{ticket_id}")


def render_card(rt: Runtime, mailbox: str, ticket, folder: str, now: datetime,
                in_reply_to: str = "", references: tuple[str, ...] = ()) -> tuple[str, str]:
    """(Message-ID, raw mail) of the card for `ticket` (a Ticket or the batch's row)."""
    settings = rt.settings
    zone = settings.zone
    box = settings.mailboxes[mailbox]
    ticket_id = ticket["id"] if isinstance(ticket, dict) else ticket.id

    def value(name):
        return ticket[name] if isinstance(ticket, dict) else getattr(ticket, name)

    message_id = card_message_id(settings, ticket_id)
    outgoing = render_mail(
        rt.templates, "ficha", {
            "ticket": ticket,
            "recibido": value("received_at").astimezone(zone),
            "recepcion_oficial": value("effective_receipt").astimezone(zone),
            "plazo": value("deadline").astimezone(zone),
            "carpeta": folder,
        },
        sender=(box.display_name, box.address), recipient=box.address,
        message_id=message_id, now=now, in_reply_to=in_reply_to, references=references,
    )
    return message_id, outgoing.raw
