"""Incident figures (manual 9.3): the daily consolidated report to the coordinators
(9.3.1: entered, attended and solved that day, by classification and by organ) and the
monthly incident indicators (9.3.3: total, % resolved per level, % correctly routed)."""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time

from openpyxl import Workbook
from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from daemon.flows.incidents import STATES
from daemon.reports.sheet_charts import count_bar_chart, no_chart, place_below
from daemon.reports.sheets import (
    HEADER_ROW,
    Heading,
    add_figures,
    add_sheet,
    month_bounds,
    office_time,
    spanish_day,
)
from daemon.store.db import as_aware
from daemon.store.models import Ticket, TraceEvent

MEASURES = ("entered", "attended", "solved")
MEASURE_LABELS = {"entered": "Ingresadas", "attended": "Atendidas", "solved": "Solucionadas"}


def _on(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= as_aware(moment) <= end


def _detail_rows(incidents: list[Ticket], zone) -> list[list]:
    return [[t.id, t.linked_ticket, t.criticality, t.complexity or "sin definir",
             t.category or "", t.first_organ, t.organ, t.level,
             STATES.get(t.status, t.status), office_time(t.received_at, zone),
             office_time(t.deadline, zone), office_time(t.answered_at, zone), t.solved_by]
            for t in incidents]


DETAIL_HEADERS = ["Incidencia", "Consulta", "Criticidad", "Complejidad", "Categoría",
                  "Primer órgano", "Órgano actual", "Nivel", "Estado", "Reportada",
                  "Plazo", "Resuelta", "Resuelta por"]


@dataclass(frozen=True)
class IncidentDay:
    day: date
    totals: dict[str, int]  # entered, attended, solved
    by_criticality: dict[str, dict[str, int]]
    by_complexity: dict[str, dict[str, int]]
    by_organ: dict[str, dict[str, int]]
    open_count: int
    data: bytes


def daily_incident_report(engine: Engine, settings, day: date) -> IncidentDay:
    """Entered: reported that day. Attended: an organ acted on it that day (answered,
    escalated, validated, observed, rerouted). Solved: its answer reached the citizen."""
    zone = settings.zone
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day, time.max, tzinfo=zone)
    organs = set(settings.organs)
    with Session(engine) as session:
        actions = list(session.exec(select(TraceEvent).where(
            TraceEvent.at >= start, TraceEvent.at <= end, TraceEvent.actor.in_(organs))))
        acted = {event.ticket_id for event in actions}
        incidents = list(session.exec(select(Ticket).where(
            Ticket.kind == "incidencia",
            or_(Ticket.received_at.between(start, end), Ticket.answered_at.between(start, end),
                Ticket.id.in_(acted), Ticket.answered_at.is_(None))).order_by(Ticket.id)))
        session.expunge_all()
    actors: dict[str, set[str]] = defaultdict(set)
    for event in actions:
        actors[event.ticket_id].add(event.actor)
    zero = dict.fromkeys(MEASURES, 0)
    by_criticality = {name: dict(zero) for name in settings.incidents.response_working_days}
    by_complexity: dict[str, dict[str, int]] = defaultdict(lambda: dict(zero))
    by_organ: dict[str, dict[str, int]] = defaultdict(lambda: dict(zero))
    totals, touched = dict(zero), []
    for t in incidents:
        found = {"entered": _on(t.received_at, start, end), "attended": t.id in actors,
                 "solved": t.status == "resolved" and _on(t.answered_at, start, end)}
        if not any(found.values()):
            continue
        touched.append(t)
        for measure, yes in found.items():
            if not yes:
                continue
            totals[measure] += 1
            by_criticality.setdefault(t.criticality, dict(zero))[measure] += 1
            by_complexity[t.complexity or "sin definir"][measure] += 1
            organs_for = {"entered": {t.first_organ}, "attended": actors.get(t.id, set()),
                          "solved": {t.solved_by}}[measure]
            for organ in organs_for:
                by_organ[organ or "(sin órgano)"][measure] += 1
    still_open = [t for t in incidents if t.status not in ("resolved",
                                                           "functional_requirement")]
    heading = Heading("Reporte diario de incidencias", spanish_day(day))
    workbook = Workbook()
    headers = ["Clasificación", *(MEASURE_LABELS[m] for m in MEASURES)]
    add_sheet(workbook, "Resumen del día", headers, [
        *([f"Criticidad {name}", *(row[m] for m in MEASURES)]
          for name, row in by_criticality.items()),
        *([f"Complejidad {name}", *(row[m] for m in MEASURES)]
          for name, row in sorted(by_complexity.items())),
    ], heading, total=["Total", *(totals[m] for m in MEASURES)], first=True)
    add_sheet(workbook, "Por órgano", ["Órgano", *(MEASURE_LABELS[m] for m in MEASURES)],
              [[organ, *(row[m] for m in MEASURES)] for organ, row in sorted(by_organ.items())],
              heading)
    add_sheet(workbook, "Detalle del día", DETAIL_HEADERS, _detail_rows(touched, zone), heading)
    add_sheet(workbook, "Abiertas", DETAIL_HEADERS, _detail_rows(still_open, zone), heading)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return IncidentDay(day=day, totals=totals, by_criticality=by_criticality,
                       by_complexity=dict(by_complexity), by_organ=dict(by_organ),
                       open_count=len(still_open), data=buffer.getvalue())


@dataclass(frozen=True)
class IncidentMonth:
    total: int
    resolved_level_2: int
    resolved_level_3: int
    functional_requirements: int
    in_process: int
    correctly_routed: float | None  # % of the resolved never sent on (see routed_right)
    by_criticality: dict[str, int]
    by_complexity: dict[str, int]

    def percent(self, count: int) -> float | None:
        return round(100 * count / self.total, 1) if self.total else None


def routed_right(incident: Ticket) -> bool:
    """Sent to the right organ: the first organ it was derived to is still its competent
    (second-level) organ, whether that organ solved it or escalated it to the third
    level, which is the normal path of what only IT can fix. Wrong: the organ answered
    DERIVAR and it had to go to another one."""
    return bool(incident.first_organ) and incident.competent_organ == incident.first_organ


def monthly_incidents(engine: Engine, settings, month: str) -> tuple[IncidentMonth, list]:
    """The incidents reported in the month, and the figures of manual 9.3.3."""
    start, end = month_bounds(month, settings.zone)
    with Session(engine) as session:
        incidents = list(session.exec(select(Ticket).where(
            Ticket.kind == "incidencia", Ticket.received_at >= start,
            Ticket.received_at < end).order_by(Ticket.id)))
        session.expunge_all()
    resolved = [t for t in incidents if t.status == "resolved"]
    by_criticality: dict[str, int] = defaultdict(int)
    by_complexity: dict[str, int] = defaultdict(int)
    for t in incidents:
        by_criticality[t.criticality] += 1
        by_complexity[t.complexity or "sin definir"] += 1
    right = [t for t in resolved if routed_right(t)]
    figures = IncidentMonth(
        total=len(incidents),
        resolved_level_2=sum(1 for t in resolved if t.resolved_level == 2),
        resolved_level_3=sum(1 for t in resolved if t.resolved_level == 3),
        functional_requirements=sum(1 for t in incidents
                                    if t.status == "functional_requirement"),
        in_process=sum(1 for t in incidents if t.status in ("derived", "escalated",
                                                            "validating")),
        correctly_routed=round(100 * len(right) / len(resolved), 1) if resolved else None,
        by_criticality=dict(by_criticality), by_complexity=dict(by_complexity))
    return figures, incidents


# The rows of the month's incident table the chart shows: how they ended, or not yet.
OUTCOME_ROWS = slice(1, 5)


def add_incident_sheets(workbook: Workbook, figures: IncidentMonth, incidents: list,
                        zone, heading: Heading) -> None:
    from openpyxl.chart import Reference

    f = figures
    rows = [["Incidencias del mes", f.total, None],
            ["Resueltas en el segundo nivel", f.resolved_level_2, f.percent(f.resolved_level_2)],
            ["Resueltas en el tercer nivel", f.resolved_level_3, f.percent(f.resolved_level_3)],
            ["Requerimientos funcionales", f.functional_requirements,
             f.percent(f.functional_requirements)],
            ["En proceso", f.in_process, f.percent(f.in_process)],
            ["Derivadas correctamente (%)", f.correctly_routed, None]]
    sheet = add_sheet(workbook, "Incidencias", ["Indicador", "Cantidad", "% del total"], rows,
                      heading, widths={"A": 36})
    # Beside the table, so that the chart below still fits on the first page.
    column = 5
    after = add_figures(sheet, HEADER_ROW, "Por criticidad",
                        sorted(f.by_criticality.items()), column=column)
    add_figures(sheet, after + 1, "Por complejidad", sorted(f.by_complexity.items()),
                column=column)
    sheet.column_dimensions["E"].width = 16
    if not f.total:
        no_chart(sheet)
    else:
        outcomes = rows[OUTCOME_ROWS]
        chart = count_bar_chart("Incidencias del mes por resultado", "Incidencias",
                                max(row[1] for row in outcomes))
        first = HEADER_ROW + 1 + OUTCOME_ROWS.start
        last = HEADER_ROW + OUTCOME_ROWS.stop
        chart.add_data(Reference(sheet, min_col=2, min_row=first, max_row=last))
        chart.set_categories(Reference(sheet, min_col=1, min_row=first, max_row=last))
        place_below(sheet, chart)
    add_sheet(workbook, "Detalle de incidencias", DETAIL_HEADERS, _detail_rows(incidents, zone),
              heading)
