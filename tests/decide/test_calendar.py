"""The receipt and deadline rules of the manual (pure, table-driven)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from daemon.config import DeadlineSettings
from daemon.decide.calendar import WorkCalendar

LIMA = ZoneInfo("America/Lima")
CALENDAR = WorkCalendar(LIMA, extra_days_off=frozenset({date(2026, 12, 24)}))
RULES = DeadlineSettings()


def lima(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LIMA)


@pytest.mark.parametrize(
    ("received", "effective", "deadline"),
    [
        # 16:30:00 exactly is on time; one second later is the next working day.
        ("2026-11-27 16:30:00", "2026-11-27 16:30:00", "2026-11-30 16:30:00"),
        ("2026-11-27 16:30:01", "2026-11-30 08:30:00", "2026-12-01 08:30:00"),
        # Friday 16:45: received Monday 08:30, due Tuesday 08:30 (the manual's example).
        ("2026-11-20 16:45:00", "2026-11-23 08:30:00", "2026-11-24 08:30:00"),
        # A Saturday counts on Monday.
        ("2026-11-28 10:00:00", "2026-11-30 08:30:00", "2026-12-01 08:30:00"),
        # Peru's holiday 2026-12-08 (and 12-09): received on the 10th.
        ("2026-12-08 11:00:00", "2026-12-10 08:30:00", "2026-12-11 08:30:00"),
        # An extra public-sector day off from rules.yaml (2026-12-24), then Christmas.
        ("2026-12-24 09:00:00", "2026-12-28 08:30:00", "2026-12-29 08:30:00"),
        # Long weekend: Holy Thursday and Good Friday 2026 (April 2-3).
        ("2026-04-01 17:00:00", "2026-04-06 08:30:00", "2026-04-07 08:30:00"),
        # A deadline landing on the holidays moves to the next working day, same time.
        ("2026-12-07 10:00:00", "2026-12-07 10:00:00", "2026-12-10 10:00:00"),
        # Before the office opens it counts from the start of the day.
        ("2026-11-26 07:10:00", "2026-11-26 08:30:00", "2026-11-27 08:30:00"),
    ],
)
def test_consulta_receipt_and_deadline(received, effective, deadline):
    got_effective = CALENDAR.effective_receipt(lima(received))
    assert got_effective == lima(effective)
    assert CALENDAR.deadline("consulta", got_effective, RULES) == lima(deadline)


def test_receipt_uses_the_office_time_zone_not_utc():
    # 21:31 UTC is 16:31 in Lima: after the cutoff.
    received = datetime.fromisoformat("2026-11-26T21:31:00+00:00")
    assert CALENDAR.effective_receipt(received) == lima("2026-11-27 08:30:00")


def test_suggestions_get_ten_working_days():
    effective = lima("2026-12-01 10:00:00")
    # 10 working days skipping Dec 8 and 9.
    assert CALENDAR.deadline("sugerencia", effective, RULES) == lima("2026-12-17 10:00:00")


def test_cutoff_and_start_of_day_are_configurable():
    from datetime import time

    calendar = WorkCalendar(LIMA, cutoff=time(17, 0), day_start=time(9, 0))
    assert calendar.effective_receipt(lima("2026-11-27 16:45:00")) == lima("2026-11-27 16:45:00")
    assert calendar.effective_receipt(lima("2026-11-27 17:00:01")) == lima("2026-11-30 09:00:00")


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        ("2026-11-23 08:30:00", "2026-11-23 11:00:00", 2.5),
        # Friday 16:00 to Monday 09:30: half an hour on Friday, one on Monday.
        ("2026-11-20 16:00:00", "2026-11-23 09:30:00", 1.5),
        # Over the December 8-9 holidays: Monday 15:30 to Thursday 09:00.
        ("2026-12-07 15:30:00", "2026-12-10 09:00:00", 1.5),
        ("2026-11-23 18:00:00", "2026-11-23 19:00:00", 0.0),
    ],
)
def test_working_hours_between(start, end, hours):
    assert CALENDAR.working_hours_between(lima(start), lima(end)) == hours


def test_the_self_test_passes_a_sound_calendar_and_names_each_instant():
    from daemon.decide.calendar import self_test

    calendar = WorkCalendar(LIMA, extra_days_off=frozenset({date(2026, 12, 24)}))
    probes = self_test(calendar, DeadlineSettings(), date(2026, 12, 3))
    assert all(probe.passed for probe in probes)
    labels = [probe.label for probe in probes]
    assert labels[:4] == ["before the office opens", "in office hours", "at the cutoff",
                          "a minute after the cutoff"]
    assert {"a weekly day off (Sat)", "a configured day off (Thu)"} <= set(labels)
    after_cutoff = probes[3]
    assert after_cutoff.got == datetime(2026, 12, 7, 8, 30, tzinfo=LIMA)  # Friday → Monday


def test_the_self_test_catches_the_calendar_an_unquoted_cutoff_made():
    """What pydantic made of `cutoff: 16:30` unquoted before: 990 seconds, in UTC."""
    from datetime import UTC

    from daemon.decide.calendar import self_test

    broken = WorkCalendar(LIMA, cutoff=time(0, 16, 30, tzinfo=UTC))
    probes = self_test(broken, DeadlineSettings(), date(2026, 12, 3))
    assert not any(probe.passed for probe in probes if "office" in probe.label
                   or "cutoff" in probe.label)
    assert any("TypeError" in probe.error for probe in probes)
