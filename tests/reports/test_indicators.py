"""Indicators that count right (issue 15 point 7, and incident satisfaction): the day an
answer's register shows it, the routing of incidents, the drafter credited and the
approver shown, the trend of four months and the incidents' satisfaction. Tickets are
written straight to a database; each figure is read back from the workbook."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from conftest import LIMA, at
from sqlmodel import Session
from workbook_tables import after_table, by_first_column, headers, records, rows, workbook

from daemon.config import Settings
from daemon.decide.calendar import WorkCalendar
from daemon.reports.sheets import NO_DATA
from daemon.reports.workbooks import (
    daily_register,
    monthly_indicators,
    register_closes,
    register_day,
)
from daemon.store.db import make_engine
from daemon.store.models import Review, Survey, Ticket

ASSISTANT, SUPERVISOR = "asistente@osce.test", "supervisor@osce.test"
CALENDAR = WorkCalendar(zone=LIMA)
FIVE = time(17, 0)


@pytest.mark.parametrize(("answered", "shown_on"), [
    ("2026-11-23 10:00", date(2026, 11, 23)),  # Monday, before the register
    ("2026-11-23 16:59", date(2026, 11, 23)),
    ("2026-11-23 17:00", date(2026, 11, 24)),  # the register is going: the next one
    ("2026-11-23 17:40", date(2026, 11, 24)),
    ("2026-11-27 18:00", date(2026, 11, 30)),  # Friday evening: Monday
    ("2026-11-28 10:00", date(2026, 11, 30)),  # Saturday: Monday
    ("2026-12-24 17:30", date(2026, 12, 28)),  # Christmas Eve, then Christmas: Monday
    ("2026-12-25 09:00", date(2026, 12, 28)),  # a holiday, in office hours
])
def test_the_register_day_of_an_answer(answered, shown_on):
    assert register_day(at(answered), CALENDAR, FIVE) == shown_on


def test_the_register_closes_when_its_schedule_says():
    assert register_closes("0 17 * * mon-fri") == time(17, 0)
    assert register_closes("30 18 * * mon-fri") == time(18, 30)
    assert register_closes("*/30 17 * * *") == time(17, 0)  # not one time: the default
    assert register_day(at("2026-11-23 17:40"), CALENDAR, time(18, 30)) == date(2026, 11, 23)


@pytest.fixture
def settings() -> Settings:
    return Settings.model_validate({
        "mailboxes": {"consultas": {"address": "consultas@osce.test", "imap": {
            "host": "127.0.0.1", "username": "consultas", "password_env": "P"}}},
        "smtp": {"host": "127.0.0.1"},
        "people": {"supervisors": [SUPERVISOR], "assistants": [ASSISTANT],
                   "signatures": {ASSISTANT: "Ana Torres"}},
        "organs": {name: f"{name.lower()}@osce.test"
                   for name in ("DRNP", "DSEACE", "DTN", "OTI")},
    })


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'buzon.db'}")
    yield engine
    engine.dispose()


_numbers = iter(range(1, 10_000))


def consulta(received: str, answered: str | None = None, by: str = ASSISTANT,
             hours: float | None = 2.0, late: bool = False, **fields) -> Ticket:
    moment = at(received)
    done = at(answered) if answered else None
    deadline = (done - timedelta(hours=1) if late else done + timedelta(hours=1)) \
        if done else moment + timedelta(days=1)
    fields.setdefault("category", "SEACE")
    return Ticket(id=f"C-2026-{next(_numbers):06d}", mailbox="consultas", kind="consulta",
                  status="answered" if done else "open",
                  received_at=moment, effective_receipt=moment, deadline=deadline,
                  answered_at=done, answered_by=by if done else "",
                  response_working_hours=hours if done else None, created_at=moment,
                  **fields)


def store(engine, *rows) -> None:
    with Session(engine, expire_on_commit=False) as session:
        session.add_all(rows)
        session.commit()


def sheet_rows(data: bytes, title: str) -> list[dict]:
    return records(workbook(data)[title])


def answered_in(register) -> list[str]:
    return [row["Ticket"] for row in sheet_rows(register.data, "Registro del día")
            if row.get("Respondida este día") == "sí"]


def test_answers_after_the_register_appear_in_the_next_working_days(engine, settings):
    morning = consulta("2026-11-20 10:00", "2026-11-23 10:00")
    evening = consulta("2026-11-20 10:00", "2026-11-23 17:40")
    friday = consulta("2026-11-20 10:00", "2026-11-27 18:00")
    saturday = consulta("2026-11-20 10:00", "2026-11-28 11:00")
    store(engine, morning, evening, friday, saturday)
    now = at("2026-12-01 09:00")
    monday = daily_register(engine, settings, date(2026, 11, 23), now)
    assert answered_in(monday) == [morning.id] and monday.answered == 1
    tuesday = daily_register(engine, settings, date(2026, 11, 24), now)
    assert answered_in(tuesday) == [evening.id] and tuesday.answered == 1
    assert tuesday.per_assistant == {"Ana Torres": {"answered": 1, "on_time": 1, "late": 0}}
    next_monday = daily_register(engine, settings, date(2026, 11, 30), now)
    assert sorted(answered_in(next_monday)) == sorted([friday.id, saturday.id])
    assert daily_register(engine, settings, date(2026, 11, 27), now).answered == 0


def test_an_approved_legal_answer_is_the_drafters_and_shows_its_approver(engine, settings):
    legal = consulta("2026-11-23 09:00", "2026-11-23 11:00", category="Legal",
                     answer_channel="approved")
    plain = consulta("2026-11-23 09:30", "2026-11-23 10:00")
    store(engine, legal, plain, Review(
        ticket_id=legal.id, draft_folder="Legal/Revisión", draft_uidvalidity=1, draft_uid=1,
        draft_sha256="x", draft_text="Estimada Rosa", drafted_by=ASSISTANT,
        requested_at=at("2026-11-23 10:00"), expires_at=at("2026-11-24 10:00"),
        decision="approved", decided_by=SUPERVISOR, decided_at=at("2026-11-23 11:00")))
    register = daily_register(engine, settings, date(2026, 11, 23), at("2026-11-23 17:00"))
    rows = {row["Ticket"]: row for row in sheet_rows(register.data, "Registro del día")}
    assert (rows[legal.id]["Asistente"], rows[legal.id]["Aprobó"]) == ("Ana Torres", SUPERVISOR)
    assert (rows[plain.id]["Asistente"], rows[plain.id]["Aprobó"]) == ("Ana Torres", None)
    assert register.per_assistant["Ana Torres"]["answered"] == 2
    month = monthly_indicators(engine, settings, "2026-11", at("2026-12-01 09:00"))
    listed = {row["Ticket"]: row for row in sheet_rows(month.data, "Consultas")}
    assert (listed[legal.id]["Asistente"], listed[legal.id]["Aprobó"]) == ("Ana Torres",
                                                                            SUPERVISOR)


def incident(first: str, competent: str, level: int, solved_by: str,
             criticality: str = "Alta") -> Ticket:
    moment = at("2026-11-10 10:00")
    return Ticket(id=f"I-2026-{next(_numbers):06d}", mailbox="consultas", kind="incidencia",
                  status="resolved", received_at=moment, effective_receipt=moment,
                  deadline=moment + timedelta(days=5), answered_at=moment + timedelta(days=2),
                  first_organ=first, competent_organ=competent, organ=competent,
                  level=level, resolved_level=level, solved_by=solved_by,
                  criticality=criticality, created_at=moment)


def incident_figures(data: bytes) -> dict:
    return by_first_column(workbook(data)["Incidencias"])


def test_an_escalation_to_it_is_routed_right_and_a_reroute_is_not(engine, settings):
    escalated = incident("DRNP", "DRNP", 3, "OTI")  # the normal path to the third level
    store(engine, escalated, incident("DSEACE", "DSEACE", 2, "DSEACE"))
    month = monthly_indicators(engine, settings, "2026-11", at("2026-12-01 09:00"))
    assert month.incidents.correctly_routed == 100.0
    assert incident_figures(month.data)["Derivadas correctamente (%)"][0] == 100.0
    # DSEACE answered DERIVAR: DRNP was the competent organ, and it solved it.
    store(engine, incident("DSEACE", "DRNP", 2, "DRNP"),
          incident("DSEACE", "DTN", 3, "OTI"))  # rerouted, then escalated: still wrong
    month = monthly_indicators(engine, settings, "2026-11", at("2026-12-01 09:00"))
    assert incident_figures(month.data)["Derivadas correctamente (%)"][0] == 50.0
    definitions = dict((row["Indicador"], row["Cómo se cuenta"])
                       for row in sheet_rows(month.data, "Definiciones"))
    assert "tercer nivel" in definitions["Incidencias derivadas correctamente (%)"]


def test_the_month_compared_with_the_three_before_per_assistant(engine, settings):
    other = "-luis@correo.test"  # an address from mail: it must stay text
    store(engine,
          consulta("2026-08-10 09:00", "2026-08-10 11:00", hours=2.0),
          consulta("2026-09-10 09:00", "2026-09-10 13:00", hours=4.0),
          consulta("2026-09-11 09:00", "2026-09-11 13:00", hours=4.0, late=True),
          consulta("2026-10-12 09:00", "2026-10-12 15:00", hours=6.0),
          consulta("2026-11-10 09:00", "2026-11-10 10:00", hours=1.0),
          consulta("2026-11-11 09:00", "2026-11-11 12:00", hours=3.0, late=True),
          consulta("2026-11-12 09:00", "2026-11-12 11:00", by=other, hours=2.0),
          consulta("2026-11-13 09:00"),  # received, not answered
          consulta("2026-07-30 09:00", "2026-07-30 10:00"))  # before the four months
    month = monthly_indicators(engine, settings, "2026-11", at("2026-12-01 09:00"))
    sheet = workbook(month.data)["Tendencia"]
    assert headers(sheet) == ["Indicador", "Asistente", "2026-08", "2026-09", "2026-10",
                              "2026-11", "Promedio de los 3 meses anteriores",
                              "Diferencia con ese promedio"]
    trend = {(row[0], row[1]): row[2:] for row in rows(sheet)}
    assert trend[("Consultas recibidas", "Total")] == (1, 2, 1, 4, 1.33, 2.67)
    assert trend[("Consultas respondidas", "Total")] == (1, 2, 1, 3, 1.33, 1.67)
    assert trend[("Consultas respondidas", "Ana Torres")] == (1, 2, 1, 2, 1.33, 0.67)
    assert trend[("Consultas respondidas", other)] == (0, 0, 0, 1, 0, 1)
    assert trend[("Promedio de respuesta (horas hábiles)", "Ana Torres")] == (
        2.0, 4.0, 6.0, 2.0, 4.0, -2.0)
    assert trend[("Promedio de respuesta (horas hábiles)", other)] == (
        None, None, None, 2.0, None, None)
    assert trend[("Respondidas a tiempo (%)", "Ana Torres")] == (100.0, 50.0, 100.0, 50.0,
                                                                  83.33, -33.33)
    assert trend[("Respondidas a tiempo (%)", "Total")][3] == round(100 * 2 / 3, 1)
    [cell] = [c for line in sheet.iter_rows() for c in line if c.value == other][:1]
    assert cell.data_type == "s" and cell.quotePrefix
    assert sheet._charts


def test_the_incidents_satisfaction_by_criticality(engine, settings):
    high, high2 = incident("DRNP", "DRNP", 2, "DRNP"), incident("DRNP", "DRNP", 2, "DRNP")
    low = incident("DSEACE", "DSEACE", 2, "DSEACE", criticality="Baja")
    silent = incident("DSEACE", "DSEACE", 2, "DSEACE", criticality="Media")
    surveyed = at("2026-11-13 10:00")
    store(engine, high, high2, low, silent,
          *(Survey(ticket_id=t.id, message_id=f"<s{t.id}>", sent_at=surveyed, score=score,
                   answered_at=surveyed)
            for t, score in ((high, 5), (high2, 2), (low, 4))),
          Survey(ticket_id=silent.id, message_id="<unanswered>", sent_at=surveyed))
    month = monthly_indicators(engine, settings, "2026-11", at("2026-12-01 09:00"))
    sheets = workbook(month.data)
    assert rows(sheets["Satisfacción incidencias"]) == [("Alta", 2, 3.5), ("Baja", 1, 4.0)]
    assert after_table(sheets["Satisfacción incidencias"]) == ("Total", 3, 3.67)
    assert month.incident_satisfaction == {"Alta": 3.5, "Baja": 4.0}
    # No consulta was surveyed: the table says so, and has no chart.
    assert rows(sheets["Satisfacción"]) == []
    assert after_table(sheets["Satisfacción"])[0] == NO_DATA
    assert not sheets["Satisfacción"]._charts
