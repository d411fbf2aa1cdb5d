"""The Excel workbooks staff expect (openpyxl): the daily register per assistant."""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from daemon.models import Ticket
from daemon.store import as_aware

HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
HEADER_FONT = Font(bold=True, color="FFFFFF")
TOTAL_FONT = Font(bold=True)


def on_time(ticket: Ticket) -> bool | None:
    if ticket.answered_at is None:
        return None
    return as_aware(ticket.answered_at) <= as_aware(ticket.deadline)


def state_label(ticket: Ticket, now: datetime) -> str:
    timely = on_time(ticket)
    if timely is None:
        return "Vencida, sin respuesta" if as_aware(ticket.deadline) < now else "Pendiente"
    return "A tiempo" if timely else "Fuera de plazo"


@dataclass(frozen=True)
class DailyRegister:
    day: date
    received: int
    answered: int
    answered_on_time: int
    pending: int
    per_assistant: dict[str, dict]
    data: bytes


def _naive(moment: datetime | None, zone) -> datetime | None:
    # Excel has no time zones: cells show office time.
    return as_aware(moment).astimezone(zone).replace(tzinfo=None) if moment else None


def _sheet(workbook: Workbook, title: str, headers: list[str], rows: list[list],
           first: bool = False):
    sheet = workbook.active if first else workbook.create_sheet()
    sheet.title = title
    sheet.append(headers)
    for cell in sheet[1]:
        cell.fill, cell.font = HEADER_FILL, HEADER_FONT
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for row in rows:
        sheet.append(row)
    for index, header in enumerate(headers, start=1):
        width = max([len(str(header))] + [len(str(r[index - 1] or "")) for r in rows][:200])
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 10), 60)
    sheet.freeze_panes = "A2"
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
    return sheet


def daily_register(engine: Engine, settings, day: date, now: datetime) -> DailyRegister:
    """Every consulta officially received on `day` and every consulta answered on `day`."""
    zone = settings.zone
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day, time.max, tzinfo=zone)
    with Session(engine) as session:
        tickets = list(session.exec(select(Ticket).where(
            Ticket.kind == "consulta",
            or_(Ticket.effective_receipt.between(start, end),
                Ticket.answered_at.between(start, end)),
        ).order_by(Ticket.effective_receipt, Ticket.id)))
        session.expunge_all()
    names = settings.people.signatures
    rows = []
    for t in tickets:
        received_today = start <= as_aware(t.effective_receipt) <= end
        answered_today = t.answered_at is not None and start <= as_aware(t.answered_at) <= end
        rows.append([
            t.id, names.get(t.answered_by, t.answered_by) or "", t.citizen_address, t.subject,
            t.category or t.folder, _naive(t.received_at, zone),
            _naive(t.effective_receipt, zone), _naive(t.deadline, zone),
            _naive(t.answered_at, zone), t.response_working_hours, t.response_hours,
            state_label(t, now), "sí" if received_today else "no",
            "sí" if answered_today else "no",
        ])
    answered = [t for t in tickets if t.answered_at is not None
                and start <= as_aware(t.answered_at) <= end]
    received = [t for t in tickets if start <= as_aware(t.effective_receipt) <= end]
    per_assistant: dict[str, dict] = defaultdict(lambda: {"answered": 0, "on_time": 0,
                                                          "late": 0, "hours": []})
    for t in answered:
        entry = per_assistant[names.get(t.answered_by, t.answered_by) or "(sin identificar)"]
        entry["answered"] += 1
        entry["on_time" if on_time(t) else "late"] += 1
        if t.response_working_hours is not None:
            entry["hours"].append(t.response_working_hours)
    workbook = Workbook()
    headers = ["Ticket", "Asistente", "Ciudadano", "Asunto", "Categoría", "Llegó",
               "Recepción oficial", "Plazo", "Respondida", "Horas hábiles",
               "Horas calendario", "Estado", "Recibida este día", "Respondida este día"]
    sheet = _sheet(workbook, "Registro del día", headers, rows, first=True)
    sheet.append([])
    sheet.append(["Totales", f"Recibidas: {len(received)}", f"Respondidas: {len(answered)}",
                  f"A tiempo: {sum(1 for t in answered if on_time(t))}",
                  f"Pendientes: {sum(1 for t in received if t.answered_at is None)}"])
    for cell in sheet[sheet.max_row]:
        cell.font = TOTAL_FONT
    summary_rows = [
        [name, e["answered"], e["on_time"], e["late"],
         round(sum(e["hours"]) / len(e["hours"]), 2) if e["hours"] else None]
        for name, e in sorted(per_assistant.items())]
    summary_rows.append(["Total", len(answered),
                         sum(e["on_time"] for e in per_assistant.values()),
                         sum(e["late"] for e in per_assistant.values()), None])
    assistants = _sheet(workbook, "Por asistente", ["Asistente", "Respondidas", "A tiempo",
                                                    "Fuera de plazo",
                                                    "Promedio horas hábiles"], summary_rows)
    for cell in assistants[assistants.max_row]:
        cell.font = TOTAL_FONT
    buffer = io.BytesIO()
    workbook.save(buffer)
    return DailyRegister(
        day=day, received=len(received), answered=len(answered),
        answered_on_time=sum(1 for t in answered if on_time(t)),
        pending=sum(1 for t in received if t.answered_at is None),
        per_assistant={k: {kk: vv for kk, vv in v.items() if kk != "hours"}
                       for k, v in per_assistant.items()},
        data=buffer.getvalue(),
    )
