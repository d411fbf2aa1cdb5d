"""The executor: applies planned actions (keywords, moves, mails) and marks each done."""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import aiosmtplib
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from sqlmodel import Session

from daemon.config import SmtpSettings
from daemon.mail.imap import MailboxClient
from daemon.mail.smtp import shared_pool
from daemon.runtime import Runtime
from daemon.store import mail_identity
from daemon.store.db import (
    add_trace,
    as_aware,
    mark_failed,
    pending_actions,
    reading,
    utcnow,
)
from daemon.store.journal import JournalFolder, OutboxJournal, fold, journal_path
from daemon.store.models import OutboxAction, Ticket
from daemon.store.notify import claim, plan_mail

log = logging.getLogger("daemon.outbox")

SEND_BATCH = 200
NOT_TRIED = "not tried: the relay failed part-way or asked to try later"


def flush(rt: Runtime, mailbox: str, client: MailboxClient | None,
          now: datetime | None = None) -> int:
    """Apply every pending action of a mailbox; returns how many were done.

    The actions are worked a slice at a time (`watcher.outbox_slice`), in the order
    they were planned, so a backlog's mails are never all in memory. Each action is
    idempotent (adding a keyword twice, moving a UID that is gone, and resending a mail
    with its planned Message-ID are harmless), so a crash between doing and marking
    only repeats harmless work. What is done is journaled at once and recorded in the
    database in bulk by a bookkeeping thread (daemon.store.journal), so neither the IMAP
    server nor the relay waits for the database.
    """
    now = now or utcnow()  # `run --once --now` decides which retries are due
    with _journal(rt, mailbox) as journal:
        # What was done before a crash, before anything is done again.
        done, after = fold(rt.engine, journal), 0
        selected: dict[str, int] = {}  # the folder selected now, with its UIDVALIDITY
        # Mails the relay did not take, (action id, error): deferred together at the end,
        # so a day of refusals ends in one alert, not one per mail or per slice.
        failures: list[tuple[int, str]] = []
        with JournalFolder(rt.engine, journal) as folder:
            while True:
                with reading(rt.engine) as session:
                    actions = pending_actions(session, mailbox, after_id=after,
                                              limit=rt.settings.watcher.outbox_slice)
                    session.expunge_all()
                if not actions:
                    break
                after = actions[-1].id
                _flush_slice(rt, mailbox, client, journal, actions, now, failures, selected)
        done += folder.marked
    defer(rt, mailbox, failures, now)
    return done


def _flush_slice(rt: Runtime, mailbox: str, client: MailboxClient | None,
                 journal: OutboxJournal, actions: list[OutboxAction], now: datetime,
                 failures: list[tuple[int, str]], selected: dict[str, int]) -> None:
    sends = [a for a in actions if a.action == "send"
             and (a.next_attempt_at is None or as_aware(a.next_attempt_at) <= now)]
    if failures:  # the relay already failed in this flush: the rest wait their turn
        failures += [(a.id, NOT_TRIED) for a in sends]
        sends = []
    if client is None or not sends:
        if client is not None:
            _apply_imap(rt, mailbox, client, journal, actions, selected, now)
        _send_mail(rt, mailbox, journal, sends, failures)
        return
    # The relay and the IMAP server work at the same time: mail goes out from a second
    # thread while this one stores keywords and moves messages.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"smtp-{mailbox}") as pool:
        sending = pool.submit(_send_mail, rt, mailbox, journal, sends, failures)
        _apply_imap(rt, mailbox, client, journal, actions, selected, now)
        sending.result()


def _apply_imap(rt: Runtime, mailbox: str, client: MailboxClient, journal: OutboxJournal,
                actions: list[OutboxAction], selected: dict[str, int],
                now: datetime) -> None:
    """Keywords, then ticket flags, then moves, then the copies, which need no folder
    selected. `selected` keeps the folder selected from one slice to the next (each
    SELECT of the INBOX lists every ticket keyword it has ever had)."""
    keyword_groups: dict[tuple, list[OutboxAction]] = defaultdict(list)
    move_groups: dict[tuple, list[OutboxAction]] = defaultdict(list)
    flag_groups: dict[str, list[OutboxAction]] = defaultdict(list)
    for action in actions:
        if action.next_attempt_at is not None and as_aware(action.next_attempt_at) > now:
            continue  # refused before: it waits its pause (sends have their own)
        if action.action == "keywords":
            keyword_groups[(action.folder, action.uidvalidity)].append(action)
        elif action.action == "move":
            move_groups[(action.folder, action.uidvalidity, action.target)].append(action)
        elif action.action == "flag_ticket":
            flag_groups[action.folder or rt.settings.mailboxes[mailbox].imap.inbox].append(action)

    def select(folder: str) -> int:
        if folder not in selected:
            selected.clear()
            selected[folder] = client.select(folder)
        return selected[folder]

    refusals: list[tuple[OutboxAction, str]] = []

    def refusing(group: list[OutboxAction], work: Callable[[], None]) -> bool:
        """Run one server command for a group; a refusal is the group's, not the pass's
        (a lost connection still raises: the watcher reconnects)."""
        try:
            work()
            return True
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            refusals.extend((a, f"{type(exc).__name__}: {exc}") for a in group)
            return False

    def validity_of(group: list[OutboxAction], folder: str) -> int | None:
        """The folder selected, its UIDVALIDITY; None when the server refused it."""
        found: list[int] = []
        return found[0] if refusing(group, lambda: found.append(select(folder))) else None

    tagged: list[int] = []
    for (folder, uidvalidity), group in keyword_groups.items():
        validity = validity_of(group, folder)
        if validity is None:
            continue
        if validity != uidvalidity:
            mark_failed(rt.engine, [a.id for a in group], "UIDVALIDITY changed")
            continue
        refused = client.add_keywords_each([(a.uid, a.keywords.split()) for a in group])
        refusals.extend((a, refused[a.uid]) for a in group if a.uid in refused)
        tagged += [a.id for a in group if a.uid not in refused]
    journal.done(tagged)  # re-adding a keyword after a crash is harmless
    for folder, group in flag_groups.items():
        if validity_of(group, folder) is None:
            continue
        with Session(rt.engine) as session:
            where = mail_identity.locate(client, session, mailbox, [a.target for a in group])
        # "-Keyword" takes a keyword off (Por_enviar once the answer was sent on).
        items = [(a, uid, added) for a in group
                 if (added := [k for k in a.keywords.split() if not k.startswith("-")])
                 for uid in where.get(a.target, ())]
        refused = client.add_keywords_each([(uid, added) for _a, uid, added in items])
        failed = {a.id: refused[uid] for a, uid, _added in items if uid in refused}
        for a in group:
            removed = client.storable([k[1:] for k in a.keywords.split() if k.startswith("-")])
            uids = list(where.get(a.target, ()))
            if removed and uids and a.id not in failed:
                refusing([a], lambda u=uids, r=removed: client.client.remove_flags(
                    u, r, silent=True))
        refusals.extend((a, failed[a.id]) for a in group if a.id in failed)
        refused_ids = {r.id for r, _ in refusals}
        journal.done([a.id for a in group if a.id not in refused_ids])
    for (folder, uidvalidity, target), group in move_groups.items():
        validity = validity_of(group, folder)
        if validity is None:
            continue
        if validity != uidvalidity:
            mark_failed(rt.engine, [a.id for a in group], "UIDVALIDITY changed")
            continue
        if not refusing(group, lambda g=group, t=target: client.move([a.uid for a in g], t)):
            continue
        journal.done([a.id for a in group])
        log.info("moved %d mails of %s/%s to %s", len(group), mailbox, folder, target)
    copies = [a for a in actions if a.action in ("append", "draft", "card")
              and (a.next_attempt_at is None or as_aware(a.next_attempt_at) <= now)]
    if copies:
        refusing(copies, lambda: _append_copies(rt, client, journal, copies, selected))
    if refusals:
        selected.clear()  # a refused SELECT leaves no folder selected
        refused_actions(rt, mailbox, refusals, now)


def refused_actions(rt: Runtime, mailbox: str, refusals: list[tuple[OutboxAction, str]],
                    now: datetime) -> None:
    """What the server refused: tried again after a growing pause, then parked with its
    error on the ticket, and the coordinators told once a day. A move parked leaves
    its ticket showing the folder its mail is really in."""
    parked = []
    pauses = rt.settings.watcher.refusal_pauses_seconds
    with Session(rt.engine) as session:
        for action, error in refusals:
            row = session.get(OutboxAction, action.id)
            if row is None or row.status != "pending":
                continue
            row.attempts += 1
            row.last_error = error[:500]
            log.warning("%s: the server refused %s (%s), try %d: %s", mailbox, row.action,
                        row.ticket_id or "-", row.attempts, error)
            if row.attempts <= len(pauses):
                row.next_attempt_at = now + timedelta(seconds=pauses[row.attempts - 1])
            else:
                row.status = "parked"
                parked.append(row)
                _park(session, row, now)
            session.add(row)
        if parked and rt.settings.people.coordinators and claim(
                session, f"parked:{mailbox}:{now.astimezone(rt.settings.zone).date()}", now):
            plan_mail(rt, session, mailbox=mailbox, template="acciones_rechazadas",
                      values={"buzon": rt.settings.mailboxes[mailbox].address,
                              "acciones": [(a.action, a.ticket_id or "", a.last_error)
                                           for a in parked]},
                      to=rt.settings.people.coordinators, now=now)
        session.commit()


def _park(session: Session, action: OutboxAction, now: datetime) -> None:
    if not action.ticket_id:
        return
    add_trace(session, action.ticket_id, "action refused by the server",
              f"{action.action} parked after {action.attempts} tries: {action.last_error}", now)
    ticket = session.get(Ticket, action.ticket_id)
    if action.action == "move" and ticket is not None and ticket.folder == action.target:
        ticket.folder = action.folder  # where the mail still is
        session.add(ticket)


def _append_copies(rt: Runtime, client: MailboxClient, journal: OutboxJournal,
                   copies: list[OutboxAction], selected: dict[str, int]) -> None:
    """Copies put in a folder once (after a crash they may already be there): the
    approved answer in Sent, a suggested reply in Drafts, a ticket's card beside its mail."""
    sent = (client.client.find_special_folder(b"\\Sent") or "Sent", b"\\Seen")
    drafts = (client.client.find_special_folder(b"\\Drafts") or
              client.server_name(rt.settings.answers.drafts_folder), b"\\Draft")

    def place(action: OutboxAction) -> tuple[str, bytes]:
        if action.action == "append":
            return sent
        if action.action == "draft":
            return drafts
        return client.server_name(action.target), b"\\Seen"

    # Tried before means perhaps already there: only those are looked for (a search per
    # copy would cost a backlog dearly). The try is journaled before appending.
    journal.tried([a.id for a in copies])
    groups: dict[tuple[str, bytes], list[OutboxAction]] = defaultdict(list)
    for action in copies:
        groups[place(action)].append(action)
    for (folder, flag), group in groups.items():
        if not client.client.folder_exists(folder):
            client.client.create_folder(folder)
        retried = [a for a in group if a.attempts]
        if retried:
            selected.clear()
            client.client.select_folder(folder)
            there = {a.id for a in retried
                     if client.client.search(["HEADER", "Message-ID", a.message_id])}
            group = [a for a in group if a.id not in there]
        client.append_each(folder, [(a.raw.encode("utf-8"), flag) for a in group])
    journal.done([a.id for a in copies])


def _journal(rt: Runtime, mailbox: str) -> OutboxJournal:
    return OutboxJournal(journal_path(rt.engine, rt.settings, mailbox))


def _send_mail(rt: Runtime, mailbox: str, journal: OutboxJournal,
               sends: list[OutboxAction], failures: list[tuple[int, str]]) -> None:
    """Send due mails; those the relay did not take are added to `failures`. Each mail
    the relay accepts is journaled at once (the bookkeeping thread marks it done)."""
    if not sends:
        return
    sender = rt.settings.mailboxes[mailbox].address
    smtp = rt.settings.smtp
    pool = shared_pool(smtp, rt.password(smtp.password_env))
    for start in range(0, len(sends), SEND_BATCH):
        batch = sends[start:start + SEND_BATCH]
        try:
            results = pool.send(
                [(sender, a.target.split(","), a.raw.encode("utf-8")) for a in batch],
                on_accepted=lambda i, b=batch: journal.sent(b[i].id, b[i].message_id))
        except (OSError, aiosmtplib.SMTPException) as exc:
            log.warning("SMTP relay %s:%s unavailable, %d mails stay queued: %s",
                        smtp.host, smtp.port, len(sends) - start, exc)
            failures += [(a.id, f"relay unavailable: {exc}") for a in sends[start:]]
            break
        rt.crash_point("after_send")
        if _refused(rt, batch, results, failures, sends[start + len(batch):]):
            break


def _refused(rt: Runtime, batch: list[OutboxAction], results: list,
             failures: list[tuple[int, str]], later: list[OutboxAction]) -> bool:
    """Record what the relay refused; True when the rest must wait for another flush."""
    for action, result in zip(batch, results, strict=True):
        if result is None or result.ok:
            continue
        if result.permanent:
            mark_failed(rt.engine, [action.id], result.error)
            if action.ticket_id:
                with Session(rt.engine) as session:
                    add_trace(session, action.ticket_id, "mail refused",
                              f"the relay refused the mail to {action.target}: {result.error}",
                              utcnow())
                    session.commit()
        log.warning("mail %s to ticket %s not sent: %s", action.message_id,
                    action.ticket_id, result.error)
    refused = [(a.id, r.error) for a, r in zip(batch, results, strict=True)
               if r is not None and not r.ok and not r.permanent]
    untried = [a for a, r in zip(batch, results, strict=True) if r is None]
    if refused or untried:
        # The relay asked to try later, or failed part-way: the rest wait their turn.
        failures += refused + [(a.id, NOT_TRIED) for a in untried + later]
    return bool(refused or untried)


def next_attempt(attempts: int, first_failed_at: datetime, now: datetime,
                 settings: SmtpSettings) -> datetime | None:
    """When to try a mail again after `attempts` failed tries; None: give up (pure).
    The deadline runs from the first failure: a mail planned for a made-up firing
    (dated in the past) still gets its full time."""
    if (now - first_failed_at).total_seconds() >= settings.give_up_after_seconds:
        return None
    pause = min(settings.retry_initial_seconds * 2 ** max(attempts - 1, 0),
                settings.retry_max_seconds)
    return now + timedelta(seconds=pause * random.uniform(0.8, 1.0))


def defer(rt: Runtime, mailbox: str, failures: list[tuple[int, str]],
          now: datetime) -> None:
    """Mails the relay did not take (each with its error): retried later, or given up
    past the deadline with the ticket's trace and one alert to the coordinators, in one
    transaction."""
    if not failures:
        return
    given_up = []
    with Session(rt.engine) as session:
        for action_id, error in failures:
            action = session.get(OutboxAction, action_id)
            if action is None or action.status != "pending":
                continue
            action.attempts += 1
            action.last_error = error[:500]
            action.first_failed_at = action.first_failed_at or now
            retry_at = next_attempt(action.attempts, as_aware(action.first_failed_at), now,
                                    rt.settings.smtp)
            if retry_at is not None:
                action.next_attempt_at = retry_at
                continue
            action.status = "failed"
            given_up.append(action)
            if action.ticket_id:
                add_trace(session, action.ticket_id, "mail not delivered",
                          f"gave up on the mail to {action.target} after {action.attempts} "
                          f"tries: {error}", now)
        alertable = [a for a in given_up if not a.message_id.startswith("<envio-fallido.")]
        if alertable:
            log.error("%d mails of %s not delivered after retrying until the deadline; "
                      "the coordinators are told", len(alertable), mailbox)
            if rt.settings.people.coordinators:
                plan_mail(rt, session, mailbox=mailbox, template="envio_fallido",
                          values={"correos": alertable},
                          to=rt.settings.people.coordinators, now=now)
        session.commit()


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
                if stop and item is None and client is None:
                    return  # never asked for anything: no connection needed
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
