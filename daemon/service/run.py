"""Running buzon: one pass over every mailbox (--once), or watchers until told to stop."""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler

from daemon.flows import alerts, intake, sweeps
from daemon.flows.answers import record_answers
from daemon.flows.moves import record_moves, watched_folders
from daemon.flows.review import record_drafts
from daemon.mail.imap import MailboxAccessError, MailboxClient
from daemon.mail.smtp import close_shared_pool
from daemon.runtime import Runtime
from daemon.service.periodic import Job, run_due_jobs
from daemon.service.training import FIRST_MODEL_HOLD_SECONDS, hold_for_first_model, train_in_child
from daemon.store import outbox
from daemon.store.db import heartbeats, record_heartbeat, stale_seconds, utcnow
from daemon.store.leases import mailbox_lease, sweeps_lease

log = logging.getLogger("daemon.service")


def folders_to_create(rt: Runtime, name: str) -> list[str]:
    folders = rt.settings.folders
    common = [folders.quarantine, folders.automatic, folders.off_topic,
              *watched_folders(rt, name)]
    if rt.settings.mailbox_kind(name) == "sugerencia":
        return common
    review = rt.settings.review
    return [*folders.categories, folders.review, *common, review.folder,
            review.approved_folder, review.observed_folder]


def open_mailbox(rt: Runtime, name: str) -> MailboxClient:
    box = rt.settings.mailboxes[name]
    client = MailboxClient(name, box.imap, rt.password(box.imap.password_env) or "")
    client.connect()
    refused = client.ensure_folders(folders_to_create(rt, name))
    if refused:  # told once a day; moves into them are refused and parked one by one
        alerts.part_failed(rt, f"folders:{name}", RuntimeError(
            "; ".join(f"{folder}: {error}" for folder, error in refused.items())))
    return client


def run_once(rt: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Process everything pending in every mailbox, do the work due at `now`, flush the
    outbox. A mailbox another buzon process is working is left to it."""
    now = now or utcnow()
    counts: dict[str, int] = {}
    clients = {}
    leases = []
    if rt.first_model is not None:  # the mail waiting is judged with the first model
        rt.first_model.wait(FIRST_MODEL_HOLD_SECONDS)
    try:
        for name in rt.settings.mailboxes:
            lease = mailbox_lease(rt.engine, rt.settings, name)
            if not lease.acquire():
                log.warning("mailbox %s is being worked by another buzon process: left to it",
                            name)
                continue
            leases.append(lease)
            clients[name] = open_mailbox(rt, name)
            counts[name] = _pass(rt, name, clients[name], now)
            record_heartbeat(rt.engine, name, "INBOX", "run --once", utcnow())
        periodic = sweeps_lease(rt.engine, rt.settings)
        if periodic.acquire():
            leases.append(periodic)
            run_due_work(rt, now, alive=tuple(clients))
        for name, client in clients.items():
            outbox.flush(rt, name, client, now)
    finally:
        close_shared_pool()
        for client in clients.values():
            client.close()
        for lease in leases:
            lease.release()
    return counts


def _pass(rt: Runtime, name: str, client: MailboxClient, now: datetime) -> int:
    """Read the assistants' moves and answers, apply what is left planned, take in new
    mail batch by batch and apply its effects (the inbox is left selected, for IDLE)."""
    record_moves(rt, name, client, now)
    if rt.settings.mailbox_kind(name) == "consulta":
        record_drafts(rt, name, client, now)
    record_answers(rt, name, client)  # suggestions' results are sent on through Sent too
    outbox.flush(rt, name, client)
    if rt.knowledge is not None:
        try:
            rt.knowledge.refresh()  # what was answered is a source for the mail that follows
        except Exception as exc:  # noqa: BLE001 - the index as it was serves on
            alerts.part_failed(rt, "knowledge", exc, now)
    flusher = outbox.BackgroundFlusher(rt, name, lambda: open_mailbox(rt, name))
    try:
        return intake.process_new_mail(rt, name, client, after_batch=flusher.request,
                                       clock=now)
    finally:
        flusher.close()


def periodic_jobs(rt: Runtime) -> list[Job]:
    schedule = rt.settings.schedule
    jobs = [Job("morning_summary", schedule.morning_summary, sweeps.morning_summary),
            Job("daily_register", schedule.daily_register, _report("daily_register_job")),
            Job("monthly_indicators", schedule.monthly_indicators,
                _report("monthly_indicators_job"))]
    if rt.settings.incidents_enabled:
        jobs.append(Job("incident_report", schedule.incident_report,
                        _report("incident_report_job")))
    if rt.settings.classifier.enabled:
        jobs.append(Job("retrain", rt.settings.classifier.retrain_cron, retrain_job))
    return jobs


def _report(job_name: str):
    """A report job of daemon.reports.report_mail, imported when it first runs: openpyxl
    and the charts cost a third of a second at every start otherwise."""

    def job(rt: Runtime, now: datetime):
        from daemon.reports import report_mail

        return getattr(report_mail, job_name)(rt, now)

    job.__name__ = job_name
    return job


def retrain_job(rt: Runtime, now: datetime) -> str:
    # Trained in a child process: scikit-learn (over 100 MB) never stays in the daemon,
    # which predicts with the model's arrays and picks the promoted model up by itself.
    settings = rt.settings
    entry = train_in_child(settings.classifier.model_dir, settings.database,
                           list(settings.folders.categories), first=False)
    return ("promoted" if entry["promoted"] else "kept the current model") + \
        f" (held-out macro-F1 new {entry['held_out_macro_f1_new']}, " \
        f"current {entry['held_out_macro_f1_current']})"


def run_due_work(rt: Runtime, now: datetime, alive: tuple[str, ...] = ()) -> None:
    """Periodic work due at `now`: state-driven sweeps read tickets and decide. `alive`:
    mailboxes this very process has just worked (their heartbeat is not in question)."""
    stale = {name: state for name, state in stale_heartbeats(rt, now).items()
             if name not in alive}
    if stale:
        alerts.stalled_watchers(rt, stale, now)
    done = sweeps.sweep(rt, now)
    # An idle daemon sweeps every minute and finds nothing: only a sweep that did
    # something is worth a line at info (1,440 lines a day otherwise).
    log.log(logging.INFO if re.search(r"[1-9]", done) else logging.DEBUG,
            "sweep at %s: %s", rt.settings.stamp(now), done)
    run_due_jobs(rt, periodic_jobs(rt), now)


def stale_heartbeats(rt: Runtime, now: datetime) -> dict:
    """The heartbeat of each mailbox whose watcher has not reported in time."""
    limit = rt.settings.watcher.heartbeat_stale_seconds
    return {name: state for name, state in heartbeats(rt.engine).items()
            if stale_seconds(state, now) > limit}


class LeaseLost(Exception):
    """The database connection holding this process's lease on a mailbox went away."""


class Watcher(threading.Thread):
    """Watches one mailbox: IDLE where offered, else polling; reconnects with backoff."""

    def __init__(self, rt: Runtime, name: str, stop: threading.Event):
        super().__init__(name=f"watcher-{name}", daemon=True)
        self.rt = rt
        self.mailbox = name
        self.stop = stop

    def run(self) -> None:
        lease = mailbox_lease(self.rt.engine, self.rt.settings, self.mailbox)
        try:
            if self._wait_for(lease):
                self._run(lease)
        finally:
            lease.release()

    def _wait_for(self, lease) -> bool:
        """Stand by until no other buzon process works this mailbox."""
        waiting = False
        while not self.stop.is_set():
            try:
                if lease.acquire():
                    if waiting:
                        log.warning("mailbox %s: taken over from the other buzon process",
                                    self.mailbox)
                    return True
            except Exception as exc:  # noqa: BLE001 - the database may be restarting
                log.warning("mailbox %s: cannot reach the database for the lease: %s",
                            self.mailbox, exc)
            if not waiting:
                log.info("mailbox %s: worked by another buzon process; standing by",
                         self.mailbox)
                waiting = True
            self.stop.wait(self.rt.settings.watcher.lease_retry_seconds)
        return False

    def _run(self, lease) -> None:
        settings = self.rt.settings.watcher
        delay = settings.backoff_initial_seconds
        while not self.stop.is_set():
            client = None
            try:
                if not lease.held() and not self._wait_for(lease):
                    return
                client = open_mailbox(self.rt, self.mailbox)
                delay = settings.backoff_initial_seconds
                self._watch(client, lease)
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect after a pause
                pause = min(delay, settings.backoff_max_seconds) * random.uniform(0.5, 1.0)
                # A refused login or a port of the wrong kind is a setting to fix, not a
                # passing fault: an error, said as the setting to look at.
                log.log(logging.ERROR if isinstance(exc, MailboxAccessError) else logging.WARNING,
                        "mailbox %s: %s: %s; reconnecting in %.1f s", self.mailbox,
                        type(exc).__name__, exc, pause)
                record_heartbeat(self.rt.engine, self.mailbox, "INBOX",
                                 f"reconnecting after {type(exc).__name__}", utcnow())
                delay = min(delay * 2, settings.backoff_max_seconds)
                self.stop.wait(pause)
            finally:
                if client is not None:
                    client.close()

    def _watch(self, client: MailboxClient, lease) -> None:
        settings = self.rt.settings.watcher

        def keep_alive() -> None:
            client.client.noop()
            record_heartbeat(self.rt.engine, self.mailbox, "INBOX",
                             "waiting for the first model", utcnow())

        hold_for_first_model(self.rt, self.mailbox, self.stop, keep_alive)
        while not self.stop.is_set():
            if not lease.held():
                raise LeaseLost(f"the lease on mailbox {self.mailbox} was lost")
            _pass(self.rt, self.mailbox, client, utcnow())
            mode = "idle" if client.has_idle else "poll"
            record_heartbeat(self.rt.engine, self.mailbox, "INBOX", mode, utcnow())
            if client.has_idle:
                self._idle(client, settings.idle_check_seconds)
            else:
                self.stop.wait(settings.poll_seconds)

    def _idle(self, client: MailboxClient, seconds: int) -> None:
        """Wait in IDLE until the server reports something, or `seconds` pass.

        Leaving IDLE every `seconds` (30 by default) keeps it far inside the 10-minute
        re-issue bound and refreshes the heartbeat; short idle_check calls keep the
        socket read bounded so a dead connection is noticed.
        """
        client.client.idle()
        try:
            # Mail that arrived during the pass, or as IDLE began, was announced before the
            # server's "+ idling" (imaplib kept that EXISTS aside) or right behind it, in
            # imaplib's buffer: idle_check, which polls the socket, would see neither.
            # Go round again at once instead of waiting for the re-issue.
            if client.has_unseen_announcement() or client.has_buffered_response():
                return
            ends = time.monotonic() + seconds
            while not self.stop.is_set() and time.monotonic() < ends:
                responses = client.client.idle_check(timeout=1)
                if any(b"BYE" in r if isinstance(r, tuple) else False for r in responses):
                    raise ConnectionError("server said BYE")
                if responses:
                    break
        finally:
            client.client.idle_done()


def run_forever(rt: Runtime, stop: threading.Event) -> None:
    """The daemon: a watcher per mailbox and the periodic sweeps, until `stop` is set."""
    scheduler = BackgroundScheduler(timezone=rt.settings.zone)
    periodic = sweeps_lease(rt.engine, rt.settings)

    def due_work() -> None:
        # One process runs the sweeps and the periodic mail: whoever holds the lease.
        try:
            if periodic.acquire():
                run_due_work(rt, utcnow())
        except Exception:  # noqa: BLE001 - logged; tried again next minute
            log.exception("periodic work failed; it is tried again in a minute")

    scheduler.add_job(due_work, "interval", minutes=1, id="due-work", max_instances=1,
                      coalesce=True, next_run_time=datetime.now(rt.settings.zone))
    scheduler.start()
    watchers = [Watcher(rt, name, stop) for name in rt.settings.mailboxes]
    for watcher in watchers:
        watcher.start()
    log.info("buzon running: %d mailboxes watched", len(watchers))
    try:
        while not stop.wait(1):  # a timed wait: the signal handler always gets its turn
            pass
    finally:
        scheduler.shutdown(wait=False)
        if rt.first_model is not None:
            rt.first_model.stop()  # a first training is not waited for
        for watcher in watchers:
            watcher.join(timeout=10)
        close_shared_pool()  # QUIT to the relay, once no watcher sends any more
        periodic.release()
        log.info("buzon stopped")
