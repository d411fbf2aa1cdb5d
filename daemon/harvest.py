"""`buzon train --from-mailbox`: the hand-sorted category folders of a live mailbox
become labelled examples (years of mail sorted by hand are the agency's best data)."""

from __future__ import annotations

import logging

from sqlmodel import Session

from daemon.imap import MailboxClient
from daemon.models import LabelledExample
from daemon.parsing import parse_message
from daemon.runtime import Runtime
from daemon.store import utcnow

log = logging.getLogger("daemon.harvest")


def harvest(rt: Runtime, mailbox: str, client: MailboxClient) -> int:
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
                            key=key, text=inbound.question[:4000], label=folder,
                            source="harvest", created_at=utcnow()))
                        added += 1
                session.commit()
        log.info("harvested %s/%s: %d mails", mailbox, folder, len(uids))
    return added
