"""`buzon train --from-mailbox`: the hand-sorted category folders of a live mailbox
become labelled examples (years of mail sorted by hand are the agency's best data)."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from classifiers.corpus import Example
from daemon.mail.imap import MailboxClient
from daemon.mail.parsing import parse_message
from daemon.runtime import Runtime
from daemon.store.db import utcnow
from daemon.store.models import LabelledExample

log = logging.getLogger("daemon.harvest")


def mailbox_examples(engine: Engine) -> list[Example]:
    """Every labelled example the mailbox gave: harvested folders and the assistants'
    corrections."""
    with Session(engine) as session:
        rows = list(session.exec(select(LabelledExample)))
    return [Example(row.text, row.label, f"mail:{row.key}", row.source) for row in rows]


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
