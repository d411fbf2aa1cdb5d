"""Periodic work decided from state: a job is due when its schedule fired since it last
ran, so a restart (or `run --once --now`) loses nothing and repeats nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from apscheduler.triggers.cron import CronTrigger
from sqlmodel import Session

from daemon.models import PeriodicRun
from daemon.runtime import Runtime

log = logging.getLogger("daemon.periodic")


@dataclass(frozen=True)
class Job:
    name: str
    cron: str  # crontab line, in the office time zone
    work: Callable[[Runtime, datetime], str]  # returns a short note for the record


def is_due(cron: str, zone, last_run: datetime, now: datetime) -> bool:
    """Due when the schedule fired after the last run and at or before now."""
    trigger = CronTrigger.from_crontab(cron, timezone=zone)
    upcoming = trigger.get_next_fire_time(None, last_run)
    return upcoming is not None and upcoming <= now


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
        if not is_due(job.cron, rt.settings.zone, last, now):
            continue
        try:
            note = job.work(rt, now)
        except Exception:  # noqa: BLE001 - one failing job never stops the others
            log.exception("periodic job %s failed; it stays due", job.name)
            continue
        with Session(rt.engine) as session:
            record = session.get(PeriodicRun, job.name) or PeriodicRun(job=job.name, last_run=now)
            record.last_run, record.note = now, note[:500]
            session.add(record)
            session.commit()
        log.info("periodic job %s ran at %s: %s", job.name, now.isoformat(), note)
        ran.append(job.name)
    return ran
