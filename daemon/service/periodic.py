"""Periodic work decided from state: a job is due when its schedule fired since it last
ran, so a restart (or `run --once --now`) loses nothing and repeats nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlmodel import Session

from daemon.runtime import Runtime
from daemon.store.models import PeriodicRun

log = logging.getLogger("daemon.periodic")


@dataclass(frozen=True)
class Job:
    name: str
    cron: str  # crontab line, in the office time zone
    work: Callable[[Runtime, datetime], str]  # returns a short note for the record


MAX_CATCH_UP = 31  # firings made up for after a long stop, at most


def firings(cron: str, zone, last_run: datetime, now: datetime) -> list[datetime]:
    """The times the schedule fired after the last run, up to now, oldest first."""
    trigger = CronTrigger.from_crontab(cron, timezone=zone)
    times: list[datetime] = []
    moment = trigger.get_next_fire_time(None, last_run)
    while moment is not None and moment <= now and len(times) < MAX_CATCH_UP:
        if moment > last_run:
            times.append(moment)
        moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
    return times


def run_due_jobs(rt: Runtime, jobs: list[Job], now: datetime) -> list[str]:
    """Run every job whose schedule fired since it last ran. A job seen for the first
    time starts counting from now (a fresh install does not run a week of jobs)."""
    ran = []
    for job in jobs:
        with Session(rt.engine) as session:
            record = session.get(PeriodicRun, job.name)
            if record is None:
                session.add(PeriodicRun(job=job.name, last_run=now, note="first seen"))
                session.commit()
                continue
            last = record.last_run
        for fired in firings(job.cron, rt.settings.zone, last, now):
            # Each missed firing runs as of its own time: a register of Friday 17:00 made
            # up on Monday morning is still Friday's register.
            try:
                note = job.work(rt, fired)
            except Exception:  # noqa: BLE001 - one failing job never stops the others
                log.exception("periodic job %s failed; it stays due", job.name)
                break
            with Session(rt.engine) as session:
                record = session.get(PeriodicRun, job.name)
                record.last_run, record.note = fired, note[:500]
                session.add(record)
                session.commit()
            log.info("periodic job %s for %s: %s", job.name, rt.settings.stamp(fired), note)
            ran.append(job.name)
    return ran
