"""The executor: applies planned actions (keywords, moves, mails) and marks each done."""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import aiosmtplib
from sqlmodel import Session

from daemon.imap import MailboxClient
from daemon.models import OutboxAction
from daemon.runtime import Runtime
from daemon.smtp import send_batch
from daemon.store import add_trace, mark_actions, pending_actions, utcnow

log = logging.getLogger("daemon.outbox")

SEND_BATCH = 200


def flush(rt: Runtime, mailbox: str, client: MailboxClient | None) -> int:
    """Apply every pending action of a mailbox; returns how many were done.

    Each action is idempotent (adding a keyword twice, moving a UID that is gone, and
    resending a mail with its planned Message-ID are harmless), so a crash between doing
    and marking only repeats harmless work.
    """
    with Session(rt.engine) as session:
        actions = pending_actions(session, mailbox)
        session.expunge_all()
    sends = [a for a in actions if a.action == "send"]
    if client is None or not sends:
        return (_apply_imap(rt, mailbox, client, actions) if client else 0) + \
            _send_mail(rt, mailbox, sends)
    # The relay and the IMAP server work at the same time: mail goes out from a second
    # thread while this one stores keywords and moves messages.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"smtp-{mailbox}") as pool:
        sending = pool.submit(_send_mail, rt, mailbox, sends)
        applied = _apply_imap(rt, mailbox, client, actions)
        return applied + sending.result()


def _apply_imap(rt: Runtime, mailbox: str, client: MailboxClient,
                actions: list[OutboxAction]) -> int:
    done = 0
    keyword_groups: dict[tuple, list[OutboxAction]] = defaultdict(list)
    move_groups: dict[tuple, list[OutboxAction]] = defaultdict(list)
    for action in actions:
        if action.action == "keywords":
            keyword_groups[(action.folder, action.uidvalidity)].append(action)
        elif action.action == "move":
            move_groups[(action.folder, action.uidvalidity, action.target)].append(action)
    selected: dict[str, int] = {}

    def select(folder: str) -> int:
        if folder not in selected:
            selected.clear()
            selected[folder] = client.select(folder)
        return selected[folder]

    tagged: list[int] = []
    for (folder, uidvalidity), group in keyword_groups.items():
        if select(folder) != uidvalidity:
            mark_actions(rt.engine, [a.id for a in group], "failed", "UIDVALIDITY changed")
            continue
        client.add_keywords_each([(a.uid, a.keywords.split()) for a in group])
        tagged += [a.id for a in group]
    mark_actions(rt.engine, tagged, "done")  # re-adding a keyword after a crash is harmless
    done += len(tagged)
    appended = []
    for action in actions:
        if action.action != "append":
            continue
        # A copy for the Sent folder, once: after a crash it may already be there.
        sent = client.client.find_special_folder(b"\\Sent") or "Sent"
        selected.clear()
        client.client.select_folder(sent)
        if not client.client.search(["HEADER", "Message-ID", action.message_id]):
            client.client.append(sent, action.raw.encode("utf-8"), (b"\\Seen",))
        appended.append(action.id)
    mark_actions(rt.engine, appended, "done")
    done += len(appended)
    flag_groups: dict[str, list[OutboxAction]] = defaultdict(list)
    for action in actions:
        if action.action == "flag_ticket":
            flag_groups[action.folder or rt.settings.mailboxes[mailbox].imap.inbox].append(action)
    for folder, group in flag_groups.items():
        select(folder)
        where = _ticket_mail_locations(client, [a.target for a in group])
        client.add_keywords_each([(uid, a.keywords.split()) for a in group
                                  for uid in where.get(a.target, ())])
        mark_actions(rt.engine, [a.id for a in group], "done")
        done += len(group)
    for (folder, uidvalidity, target), group in move_groups.items():
        if select(folder) != uidvalidity:
            mark_actions(rt.engine, [a.id for a in group], "failed", "UIDVALIDITY changed")
            continue
        client.move([a.uid for a in group], target)
        mark_actions(rt.engine, [a.id for a in group], "done")
        done += len(group)
        log.info("moved %d mails of %s/%s to %s", len(group), mailbox, folder, target)
    return done


FEW_TICKETS = 20


def _ticket_mail_locations(client: MailboxClient, ticket_ids: list[str]) -> dict[str, list[int]]:
    """UIDs of the selected folder's mails carrying each ticket's keyword: a SEARCH per
    ticket when they are few, one FETCH of every mail's keywords when they are many."""
    if len(ticket_ids) <= FEW_TICKETS:
        return {t: client.client.search(["KEYWORD", t]) for t in ticket_ids}
    wanted = {t.encode() for t in ticket_ids}
    found: dict[str, list[int]] = defaultdict(list)
    uids = client.client.search(["ALL"])
    for uid, data in (client.client.fetch(uids, ["FLAGS"]).items() if uids else ()):
        for keyword in set(data.get(b"FLAGS", ())) & wanted:
            found[keyword.decode()].append(uid)
    return found


def _send_mail(rt: Runtime, mailbox: str, sends: list[OutboxAction]) -> int:
    if not sends:
        return 0
    sender = rt.settings.mailboxes[mailbox].address
    smtp = rt.settings.smtp
    done = 0
    for start in range(0, len(sends), SEND_BATCH):
        batch = sends[start:start + SEND_BATCH]
        try:
            results = send_batch(smtp, rt.password(smtp.password_env),
                                 [(sender, a.target.split(","), a.raw.encode("utf-8"))
                                  for a in batch])
        except (OSError, aiosmtplib.SMTPException) as exc:
            log.warning("SMTP relay %s:%s unavailable, %d mails stay queued: %s",
                        smtp.host, smtp.port, len(sends) - start, exc)
            break
        rt.crash_point("after_send")
        sent = [a.id for a, r in zip(batch, results, strict=True) if r is not None and r.ok]
        mark_actions(rt.engine, sent, "done")
        done += len(sent)
        for action, result in zip(batch, results, strict=True):
            if result is None or result.ok:
                continue
            if result.permanent:
                mark_actions(rt.engine, [action.id], "failed", result.error)
                if action.ticket_id:
                    with Session(rt.engine) as session:
                        add_trace(session, action.ticket_id, "mail refused",
                                  f"the relay refused the mail to {action.target}: {result.error}",
                                  utcnow())
                        session.commit()
            log.warning("mail %s to ticket %s not sent: %s", action.message_id,
                        action.ticket_id, result.error)
        if any(result is None for result in results):
            break  # the relay failed part-way; the rest stay pending
    return done


class BackgroundFlusher:
    """Applies the outbox from a thread of its own, on a connection of its own, while
    the intake goes on with the next batch: the IMAP server and the relay do their
    part while this process parses and decides. One flush at a time; requests made
    meanwhile are merged into the next one."""

    def __init__(self, rt: Runtime, mailbox: str, connect: Callable[[], MailboxClient]):
        self.rt, self.mailbox, self._connect = rt, mailbox, connect
        self._requests: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"outbox-{mailbox}", daemon=True)
        self._thread.start()

    def request(self) -> None:
        if self._error is not None:
            raise self._error
        self._requests.put(True)

    def close(self) -> None:
        """Wait for the last flush; raise what went wrong in the thread, if anything."""
        self._requests.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        client = None
        try:
            while True:
                item = self._requests.get()
                stop = item is None
                while not self._requests.empty():  # merge requests made meanwhile
                    stop = stop or self._requests.get() is None
                if client is None:
                    client = self._connect()
                flush(self.rt, self.mailbox, client)
                if stop:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the intake thread
            self._error = exc
        finally:
            if client is not None:
                client.close()
