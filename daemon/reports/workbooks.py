"""The Excel workbooks staff expect (openpyxl): the daily register per assistant."""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time

from openpyxl import Workbook
from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from daemon.reports.incident_reports import IncidentMonth, add_incident_sheets, monthly_incidents
from daemon.reports.sheets import TOTAL_FONT, add_sheet, append_row, month_bounds, office_time
from daemon.store.db import as_aware
from daemon.store.models import SuggestedAnswer, Survey, Ticket


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
            t.category or t.folder, office_time(t.received_at, zone),
            office_time(t.effective_receipt, zone), office_time(t.deadline, zone),
            office_time(t.answered_at, zone), t.response_working_hours, t.response_hours,
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
    sheet = add_sheet(workbook, "Registro del día", headers, rows, first=True)
    sheet.append([])
    append_row(sheet, ["Totales", f"Recibidas: {len(received)}", f"Respondidas: {len(answered)}",
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
    assistants = add_sheet(workbook, "Por asistente", ["Asistente", "Respondidas", "A tiempo",
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


@dataclass(frozen=True)
class MonthlyIndicators:
    month: str
    received: int
    resolved: int
    in_process: int
    on_time: int
    average_working_hours: float | None
    average_hours: float | None
    categories: dict[str, int]
    levels: dict[str, dict[str, int]]
    correctly_routed: float | None
    satisfaction: dict[str, float]  # average score (1 to 5) per category
    incidents: IncidentMonth
    data: bytes


def average(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def monthly_indicators(engine: Engine, settings, month: str, now: datetime) -> MonthlyIndicators:
    """The indicators of manual 8.2.1.3 for the virtual channel, with charts."""
    from openpyxl.chart import BarChart, Reference

    zone = settings.zone
    start, end = month_bounds(month, zone)
    with Session(engine) as session:
        received = list(session.exec(select(Ticket).where(
            Ticket.kind == "consulta", Ticket.effective_receipt >= start,
            Ticket.effective_receipt < end).order_by(Ticket.effective_receipt)))
        resolved = list(session.exec(select(Ticket).where(
            Ticket.kind == "consulta", Ticket.answered_at >= start, Ticket.answered_at < end)))
        session.expunge_all()
    cutoff = min(end, now)
    in_process = [t for t in received
                  if t.answered_at is None or as_aware(t.answered_at) >= cutoff]
    categories: dict[str, int] = defaultdict(int)
    for t in received:
        categories[t.category or t.folder or "Sin clasificar"] += 1
    levels: dict[str, dict[str, int]] = {}
    for name, members in (("Primer nivel", [t for t in received if not t.organ]),
                          ("Segundo nivel", [t for t in received if t.organ])):
        done = [t for t in members if t.answered_at is not None]
        levels[name] = {"received": len(members), "resolved": len(done)}
    classified = [t for t in received if t.classification_source in ("rule", "model")]
    routed_right = [t for t in classified if not t.first_folder]
    indicators = {
        "received": len(received), "resolved": len(resolved), "in_process": len(in_process),
        "on_time": sum(1 for t in resolved if on_time(t)),
        "average_working_hours": average([t.response_working_hours for t in resolved
                                           if t.response_working_hours is not None]),
        "average_hours": average([t.response_hours for t in resolved
                                   if t.response_hours is not None]),
        "correctly_routed": (round(100 * len(routed_right) / len(classified), 1)
                             if classified else None),
    }
    workbook = Workbook()
    summary = add_sheet(workbook, "Indicadores", ["Indicador", "Valor"], [
        ["Mes", month],
        ["Consultas recibidas", indicators["received"]],
        ["Consultas resueltas", indicators["resolved"]],
        ["Consultas en proceso", indicators["in_process"]],
        ["Resueltas a tiempo", indicators["on_time"]],
        ["Tiempo promedio de respuesta (horas hábiles)", indicators["average_working_hours"]],
        ["Tiempo promedio de respuesta (horas calendario)", indicators["average_hours"]],
        ["Clasificadas correctamente por buzon (%)", indicators["correctly_routed"]],
    ], first=True)
    summary.column_dimensions["A"].width = 48
    category_sheet = add_sheet(workbook, "Categorías", ["Categoría", "Consultas"],
                            [[name, count] for name, count in sorted(categories.items())])
    chart = BarChart()
    chart.title, chart.y_axis.title = "Consultas recibidas por categoría", "Consultas"
    rows = len(categories) + 1
    chart.add_data(Reference(category_sheet, min_col=2, min_row=1, max_row=rows),
                   titles_from_data=True)
    chart.set_categories(Reference(category_sheet, min_col=1, min_row=2, max_row=rows))
    category_sheet.add_chart(chart, "D2")
    level_rows = [[name, v["received"], v["resolved"],
                   round(100 * v["resolved"] / v["received"], 1) if v["received"] else None]
                  for name, v in levels.items()]
    level_sheet = add_sheet(workbook, "Por nivel", ["Nivel", "Recibidas", "Resueltas",
                                                 "% resueltas"], level_rows)
    chart = BarChart()
    chart.title = "Recibidas y resueltas por nivel"
    chart.add_data(Reference(level_sheet, min_col=2, max_col=3, min_row=1, max_row=3),
                   titles_from_data=True)
    chart.set_categories(Reference(level_sheet, min_col=1, min_row=2, max_row=3))
    level_sheet.add_chart(chart, "F2")
    with Session(engine) as session:
        scores = {survey.ticket_id: survey.score for survey in session.exec(
            select(Survey).where(Survey.ticket_id.in_([t.id for t in received]),
                                 Survey.score.is_not(None)))}
    by_category: dict[str, list[int]] = defaultdict(list)
    for t in received:
        if t.id in scores:
            by_category[t.category or t.folder or "Sin clasificar"].append(scores[t.id])
    satisfaction_rows = [[name, len(values), average(values)]
                         for name, values in sorted(by_category.items())]
    satisfaction = add_sheet(workbook, "Satisfacción", ["Categoría", "Encuestas respondidas",
                                                     "Puntaje promedio (1 a 5)"],
                          satisfaction_rows)
    if satisfaction_rows:
        chart = BarChart()
        chart.title, chart.y_axis.title = "Satisfacción por categoría", "Puntaje (1 a 5)"
        chart.add_data(Reference(satisfaction, min_col=3, min_row=1,
                                 max_row=len(satisfaction_rows) + 1), titles_from_data=True)
        chart.set_categories(Reference(satisfaction, min_col=1, min_row=2,
                                       max_row=len(satisfaction_rows) + 1))
        satisfaction.add_chart(chart, "E2")
    add_sheet(workbook, "Consultas", ["Ticket", "Categoría", "Recepción oficial", "Plazo",
                                   "Respondida", "Horas hábiles", "Nivel", "Estado"],
           [[t.id, t.category or t.folder, office_time(t.effective_receipt, zone),
             office_time(t.deadline, zone), office_time(t.answered_at, zone),
             t.response_working_hours,
             "Segundo" if t.organ else "Primero", state_label(t, now)] for t in received])
    add_suggestion_sheet(workbook, engine, [t.id for t in received])

    incident_figures, incidents = monthly_incidents(engine, settings, month)
    add_incident_sheets(workbook, incident_figures, incidents, zone)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return MonthlyIndicators(month=month, categories=dict(categories), levels=levels,
                             incidents=incident_figures, data=buffer.getvalue(),
                             satisfaction={row[0]: row[2] for row in satisfaction_rows},
                             **indicators)


SUGGESTION_LABELS = {"used": "Enviada casi sin cambios", "edited": "Editada antes de enviar",
                     "discarded": "Descartada", "": "Consulta aún sin respuesta"}


def add_suggestion_sheet(workbook: Workbook, engine: Engine, ticket_ids: list[str]) -> dict:
    """How the suggested drafts of the month's consultas were used, from what left
    through Sent (manual 7.4.1.3)."""
    with Session(engine) as session:
        drafts = list(session.exec(select(SuggestedAnswer).where(
            SuggestedAnswer.ticket_id.in_(ticket_ids))))
    counts = {outcome: sum(1 for d in drafts if d.outcome == outcome)
              for outcome in SUGGESTION_LABELS}
    rows = [["Consultas del mes", len(ticket_ids), None],
            ["Con respuesta sugerida en Borradores", len(drafts),
             round(100 * len(drafts) / len(ticket_ids), 1) if ticket_ids else None]]
    rows += [[label, counts[outcome], round(100 * counts[outcome] / len(drafts), 1)
              if drafts else None] for outcome, label in SUGGESTION_LABELS.items()]
    add_sheet(workbook, "Respuestas sugeridas", ["Indicador", "Cantidad", "%"], rows)
    return counts


RESULT_LABELS = {"implemented": "Implementada", "not_implemented": "No implementada",
                 "evaluating": "En evaluación", "answered": "Respondida",
                 "not_a_suggestion": "No es sugerencia", "": "Pendiente"}


def suggestions_by_organ(engine: Engine, settings, year: int) -> tuple[dict, bytes]:
    """The annual workbook each organ sends (manual 9.1): received, implemented, pending."""
    zone = settings.zone
    start, end = datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)
    with Session(engine) as session:
        tickets = list(session.exec(select(Ticket).where(
            Ticket.kind == "sugerencia", Ticket.effective_receipt >= start,
            Ticket.effective_receipt < end).order_by(Ticket.effective_receipt)))
        session.expunge_all()
    per_organ: dict[str, dict[str, int]] = defaultdict(
        lambda: {"received": 0, "implemented": 0, "not_implemented": 0, "evaluating": 0,
                 "pending": 0})
    for t in tickets:
        if not t.organ:
            continue
        row = per_organ[t.organ]
        row["received"] += 1
        if t.result in ("implemented", "not_implemented", "evaluating"):
            row[t.result] += 1
        elif t.answered_at is None:
            row["pending"] += 1
    workbook = Workbook()
    add_sheet(workbook, f"Sugerencias {year}", ["Órgano", "Recibidas", "Implementadas",
                                             "No implementadas", "En evaluación",
                                             "Pendientes"],
           [[organ, r["received"], r["implemented"], r["not_implemented"], r["evaluating"],
             r["pending"]] for organ, r in sorted(per_organ.items())], first=True)
    add_sheet(workbook, "Detalle", ["Ticket", "Órgano", "Ciudadano", "Asunto", "Recepción oficial",
                                 "Derivada", "Respuesta del órgano", "Resultado"],
           [[t.id, t.organ, t.citizen_address, t.subject, office_time(t.effective_receipt, zone),
             office_time(t.derived_at, zone), office_time(t.organ_answered_at, zone),
             RESULT_LABELS.get(t.result, t.result)] for t in tickets])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return dict(per_organ), buffer.getvalue()
