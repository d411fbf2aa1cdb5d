"""A realistic day and month of the help desk, written straight to a database, for the
tests that look at workbooks as a coordinator prints them: a daily register with four
rows, and a month of consultas, incidents and surveys (and the three months before it,
for the trend)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from daemon.config import Settings
from daemon.store.models import SuggestedAnswer, Survey, Ticket

LIMA = ZoneInfo("America/Lima")
ANA, LUIS, SUPERVISOR = "ana.torres@osce.test", "luis.rojas@osce.test", "supervisor@osce.test"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LIMA)


def office_settings() -> Settings:
    return Settings.model_validate({
        "mailboxes": {"consultas": {"address": "consultas@osce.test", "imap": {
            "host": "127.0.0.1", "username": "consultas", "password_env": "P"}}},
        "smtp": {"host": "127.0.0.1"},
        "people": {"supervisors": [SUPERVISOR], "assistants": [ANA, LUIS],
                   "signatures": {ANA: "Ana Torres", LUIS: "Luis Rojas"}},
        "organs": {name: f"{name.lower()}@osce.test"
                   for name in ("DRNP", "DSEACE", "DTN", "OTI")},
    })


SUBJECTS = {
    "SEACE": "No puedo registrar mi oferta en el SEACE, me sale error de sesión",
    "RNP": "Consulta sobre la renovación de mi inscripción en el RNP como proveedor",
    "Legal": "¿Puedo presentar una observación a las bases fuera del plazo del cronograma?",
    "Capacitación": "Información sobre el curso virtual de contrataciones del Estado",
}
CITIZENS = ("rosa.quispe@correo.pe", "ferreteria.sanmartin@empresa.pe",
            "jorge.huaman@gmail.test", "consultora.andina.sac@correo.pe")


class Desk:
    """Numbers the tickets it makes, like the daemon does, per kind and year."""

    def __init__(self):
        self.numbers = {"C": 0, "I": 0}

    def next_id(self, prefix: str) -> str:
        self.numbers[prefix] += 1
        return f"{prefix}-2026-{self.numbers[prefix]:06d}"

    def consulta(self, received: str, category: str, answered: str | None = None,
                 by: str = ANA, late: bool = False, **fields) -> Ticket:
        moment = at(received)
        done = at(answered) if answered else None
        deadline = moment + timedelta(days=1)
        if done:
            deadline = done - timedelta(hours=1) if late else max(deadline, done)
        number = self.numbers["C"]
        return Ticket(
            id=self.next_id("C"), mailbox="consultas", kind="consulta",
            status="answered" if done else "open", folder=category, category=category,
            citizen_address=CITIZENS[number % len(CITIZENS)],
            subject=SUBJECTS[category], received_at=moment, effective_receipt=moment,
            deadline=deadline, answered_at=done, answered_by=by if done else "",
            response_working_hours=round((done - moment).total_seconds() / 3600, 2)
            if done else None,
            response_hours=round((done - moment).total_seconds() / 3600, 2) if done else None,
            classification_source="rule", created_at=moment, **fields)

    def incident(self, received: str, criticality: str, status: str, level: int,
                 organ: str, solved_by: str = "") -> Ticket:
        moment = at(received)
        resolved = status == "resolved"
        return Ticket(
            id=self.next_id("I"), mailbox="consultas", kind="incidencia", status=status,
            received_at=moment, effective_receipt=moment,
            deadline=moment + timedelta(days=5),
            answered_at=moment + timedelta(days=2) if resolved else None,
            first_organ=organ, competent_organ=organ, organ=organ, level=level,
            resolved_level=level if resolved else None, solved_by=solved_by,
            criticality=criticality, complexity="medio", category="SEACE",
            created_at=moment)


def store(engine, *rows) -> None:
    with Session(engine, expire_on_commit=False) as session:
        session.add_all(rows)
        session.commit()


def a_day_of_four(engine) -> None:
    """Monday 23 November 2026: four consultas, three answered (one late), one pending."""
    desk = Desk()
    store(engine,
          desk.consulta("2026-11-23 08:45", "SEACE", "2026-11-23 10:20"),
          desk.consulta("2026-11-23 09:10", "RNP", "2026-11-23 12:05", by=LUIS),
          desk.consulta("2026-11-23 11:30", "Legal", "2026-11-23 16:10", late=True),
          desk.consulta("2026-11-23 15:00", "Capacitación"))


def a_month(engine) -> None:
    """November 2026 and the three months before it: consultas in four categories, some
    at the second level, incidents at each level, surveys and suggested answers."""
    desk = Desk()
    rows = []
    for month, count in (("08", 3), ("09", 5), ("10", 4)):
        for day in range(count):
            rows.append(desk.consulta(f"2026-{month}-{10 + day} 09:00", "SEACE",
                                      f"2026-{month}-{10 + day} 12:00",
                                      by=(ANA, LUIS)[day % 2]))
    november = []
    for day, category in enumerate(("SEACE", "SEACE", "RNP", "SEACE", "Legal", "RNP",
                                    "Capacitación", "SEACE", "Legal", "RNP"), start=2):
        answered = f"2026-11-{day:02d} 15:00" if day % 4 else None
        november.append(desk.consulta(f"2026-11-{day:02d} 09:30", category, answered,
                                      by=(ANA, LUIS)[day % 2], late=day == 7,
                                      organ="DRNP" if category == "RNP" and day > 5 else ""))
    rows += november
    incidents = [
        desk.incident("2026-11-05 10:00", "Alta", "resolved", 2, "DSEACE", "DSEACE"),
        desk.incident("2026-11-09 11:00", "Media", "resolved", 3, "DRNP", "OTI"),
        desk.incident("2026-11-16 09:00", "Baja", "derived", 2, "DSEACE"),
        desk.incident("2026-11-18 15:00", "Alta", "functional_requirement", 3, "DTN")]
    rows += incidents
    surveyed = at("2026-11-20 10:00")
    scored = [*zip([t for t in november if t.answered_at], (5, 4, 3, 5, 2), strict=False),
              (incidents[0], 4), (incidents[1], 3)]
    rows += [Survey(ticket_id=t.id, message_id=f"<s{t.id}>", sent_at=surveyed, score=score,
                    answered_at=surveyed) for t, score in scored]
    rows += [SuggestedAnswer(ticket_id=t.id, sources="seace-sesion (0.82)", similarity=0.82,
                             text="Estimada/o usuaria/o: ...", outcome=outcome,
                             created_at=t.received_at)
             for t, outcome in zip(november, ("used", "edited", "discarded", "used"),
                                   strict=False)]
    store(engine, *rows)
