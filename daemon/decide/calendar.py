"""The working calendar: official receipt times, working days and deadlines (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from daemon.config import CalendarSettings, DeadlineSettings


@lru_cache(maxsize=64)
def _national_holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year).keys())


@dataclass(frozen=True)
class WorkCalendar:
    """Receipt and deadline rules of the manual, in one time zone."""

    zone: ZoneInfo
    cutoff: time = time(16, 30)
    day_start: time = time(8, 30)
    country: str = "PE"
    working_weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    extra_days_off: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, settings: CalendarSettings, zone: ZoneInfo) -> WorkCalendar:
        return cls(
            zone=zone,
            cutoff=settings.cutoff,
            day_start=settings.day_start,
            country=settings.country,
            working_weekdays=frozenset(settings.working_weekdays),
            extra_days_off=frozenset(settings.extra_days_off),
        )

    def is_working_day(self, day: date) -> bool:
        return (
            day.weekday() in self.working_weekdays
            and day not in self.extra_days_off
            and day not in _national_holidays(self.country, day.year)
        )

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        candidate = day + timedelta(days=1)
        while not self.is_working_day(candidate):
            candidate += timedelta(days=1)
        return candidate

    def _at(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, tzinfo=self.zone)

    def effective_receipt(self, received: datetime) -> datetime:
        """When a mail counts as received.

        On a working day up to the cutoff (16:30:00 inclusive) it counts when it arrived,
        or at the start of the day if it arrived before the office opened; after the
        cutoff or on a non-working day it counts at the start of the next working day.
        """
        local = received.astimezone(self.zone)
        day = local.date()
        if self.is_working_day(day):
            if local.timetz().replace(tzinfo=None) <= self.cutoff:
                return max(local, self._at(day, self.day_start))
        return self._at(self.next_working_day(day), self.day_start)

    def roll_to_working_day(self, moment: datetime) -> datetime:
        """A deadline on a non-working day moves to the next working day, same time."""
        local = moment.astimezone(self.zone)
        day = local.date()
        if self.is_working_day(day):
            return local
        return datetime.combine(self.next_working_day(day), local.timetz())

    def add_working_days(self, start: datetime, days: int) -> datetime:
        local = start.astimezone(self.zone)
        day = local.date()
        for _ in range(days):
            day = self.next_working_day(day)
        return datetime.combine(day, local.timetz())

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Office hours (start of day to cutoff, working days) between two moments."""
        if end <= start:
            return 0.0
        local_start, local_end = start.astimezone(self.zone), end.astimezone(self.zone)
        total = 0.0
        day = local_start.date()
        while day <= local_end.date():
            if self.is_working_day(day):
                opens, closes = self._at(day, self.day_start), self._at(day, self.cutoff)
                overlap = min(closes, local_end) - max(opens, local_start)
                total += max(overlap.total_seconds(), 0.0)
            day += timedelta(days=1)
        return round(total / 3600, 2)

    def consulta_deadline(self, effective: datetime, hours: int) -> datetime:
        return self.roll_to_working_day(effective + timedelta(hours=hours))

    def deadline(self, kind: str, effective: datetime, rules: DeadlineSettings) -> datetime:
        if kind == "sugerencia":
            return self.add_working_days(effective, rules.sugerencia_working_days)
        return self.consulta_deadline(effective, rules.consulta_hours)


@dataclass(frozen=True)
class Probe:
    """One synthetic instant of the calendar self-test, what it gave and what was due."""

    label: str
    received: datetime
    expected: datetime
    got: datetime | None = None
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and self.got == self.expected


def self_test(calendar: WorkCalendar, rules: DeadlineSettings, today: date) -> list[Probe]:
    """The official receipt of a few instants after `today` (before opening, in office
    hours, at and after the cutoff, a day off, a configured holiday), each against what the
    manual's rule gives: a calendar that raises or answers wrong is caught before mail is."""
    day = calendar.next_working_day(today)
    following = calendar.next_working_day(day)
    opens = calendar._at(day, calendar.day_start)
    closes = calendar._at(day, calendar.cutoff)
    probes = [
        ("in office hours", opens + (closes - opens) / 2, opens + (closes - opens) / 2),
        ("at the cutoff", closes, closes),
        ("a minute after the cutoff", closes + timedelta(minutes=1),
         calendar._at(following, calendar.day_start)),
    ]
    if calendar.day_start > time(0, 0):
        probes.insert(0, ("before the office opens", opens - timedelta(minutes=1), opens))
    off = next((day + timedelta(days=n) for n in range(1, 15)
                if (day + timedelta(days=n)).weekday() not in calendar.working_weekdays), None)
    holiday = next((d for d in sorted(calendar.extra_days_off) if d > today), None)
    national = next((d for year in (today.year, today.year + 1)
                     for d in sorted(_national_holidays(calendar.country, year))
                     if d > today and d.weekday() in calendar.working_weekdays), None)
    for label, free in (("a weekly day off", off), ("a configured day off", holiday),
                        ("a national holiday", national)):
        if free is not None:
            noon = datetime.combine(free, time(12, 0), tzinfo=calendar.zone)
            probes.append((f"{label} ({free:%a})", noon,
                           calendar._at(calendar.next_working_day(free), calendar.day_start)))
    results = []
    for label, received, expected in probes:
        try:
            got = calendar.effective_receipt(received)
            calendar.deadline("consulta", got, rules)
            calendar.deadline("sugerencia", got, rules)
            results.append(Probe(label, received, expected, got))
        except Exception as exc:  # noqa: BLE001 - every failure is a finding, reported
            results.append(Probe(label, received, expected, error=f"{type(exc).__name__}: {exc}"))
    return results
