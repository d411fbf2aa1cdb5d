"""Which ticket a mail in a folder belongs to, without writing anything on the mail.

buzon puts no per-ticket keyword on mail (servers cap keyword names, and clients show
only keywords defined ahead). A mail is known again by what a move or copy between
folders keeps: its Message-ID, its size and its internal date, as recorded when it
arrived (MailRecord). A forged Message-ID alone does not match: size and date must too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser

from sqlmodel import Session, select

from daemon.mail.imap import MailboxClient
from daemon.mail.parsing import message_ids
from daemon.store.models import MailRecord

IDENTITY_ITEMS = ["RFC822.SIZE", "INTERNALDATE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]

# Below this many tickets, a SEARCH per Message-ID; above, one FETCH of the whole folder.
FEW_TICKETS = 20


@dataclass(frozen=True)
class MailIdentity:
    message_id: str
    size: int
    arrived: int  # the internal date, in whole seconds since the epoch


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def identity_of(data: dict) -> MailIdentity | None:
    """The identity in one FETCH response of IDENTITY_ITEMS (None when it is incomplete)."""
    header = next((value for key, value in data.items()
                   if key.upper().startswith(b"BODY[HEADER.FIELDS")), None)
    size, arrived = data.get(b"RFC822.SIZE"), data.get(b"INTERNALDATE")
    if size is None or arrived is None:
        return None
    found = message_ids(BytesHeaderParser().parsebytes(header or b"").get("message-id", ""))
    return MailIdentity(found[0] if found else "", int(size), _epoch(arrived))


def record_identity(record: MailRecord) -> MailIdentity:
    return MailIdentity(record.message_id, record.size, _epoch(record.internaldate))


def fetch_identities(client: MailboxClient, uids: list[int]) -> dict[int, MailIdentity]:
    """The identities of these mails of the selected folder."""
    if not uids:
        return {}
    found = {}
    for uid, data in client.client.fetch(uids, IDENTITY_ITEMS).items():
        identity = identity_of(data)
        if identity is not None:
            found[uid] = identity
    return found


def owners(session: Session, mailbox: str,
           identities: dict[int, MailIdentity]) -> dict[int, str]:
    """The ticket each mail belongs to, for those that are a ticket's mail."""
    if not identities:
        return {}
    with_id = {i.message_id for i in identities.values() if i.message_id}
    sizes_without_id = {i.size for i in identities.values() if not i.message_id}
    known: dict[MailIdentity, str] = {}
    for chunk in _chunks(sorted(with_id), 500):
        for record in session.exec(_records(mailbox).where(MailRecord.message_id.in_(chunk))):
            known[record_identity(record)] = record.ticket_id
    for chunk in _chunks(sorted(sizes_without_id), 500):
        for record in session.exec(_records(mailbox).where(
                MailRecord.message_id == "", MailRecord.size.in_(chunk))):
            known[record_identity(record)] = record.ticket_id
    return {uid: known[identity] for uid, identity in identities.items() if identity in known}


def ticket_mails(session: Session, mailbox: str,
                 ticket_ids: list[str]) -> dict[str, set[MailIdentity]]:
    """The identities of every mail recorded for each ticket (its first mail and the
    follow-ups that joined it)."""
    found: dict[str, set[MailIdentity]] = defaultdict(set)
    for chunk in _chunks(sorted(set(ticket_ids)), 500):
        for record in session.exec(_records(mailbox).where(MailRecord.ticket_id.in_(chunk))):
            found[record.ticket_id].add(record_identity(record))
    return found


def locate(client: MailboxClient, session: Session, mailbox: str,
           ticket_ids: list[str]) -> dict[str, list[int]]:
    """UIDs, in the selected folder, of each ticket's mails."""
    wanted = ticket_mails(session, mailbox, ticket_ids)
    if not wanted:
        return {}
    identities = [i for found in wanted.values() for i in found]
    if len(wanted) <= FEW_TICKETS and all(i.message_id for i in identities):
        uids = sorted({uid for i in identities
                       for uid in client.client.search(["HEADER", "Message-ID", i.message_id])})
    else:
        uids = client.client.search(["ALL"])
    present = fetch_identities(client, uids)
    where: dict[str, list[int]] = defaultdict(list)
    for ticket_id, mails in wanted.items():
        where[ticket_id] = [uid for uid, identity in present.items() if identity in mails]
    return dict(where)


def _records(mailbox: str):
    return select(MailRecord).where(MailRecord.mailbox == mailbox,
                                    MailRecord.ticket_id.is_not(None))


def _chunks(values: list, size: int):
    for start in range(0, len(values), size):
        yield values[start:start + size]
