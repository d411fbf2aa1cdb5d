"""The Excel workbooks staff expect (openpyxl): the daily register per assistant, the
monthly indicators with their four-month trend, and the yearly suggestions per organ."""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from openpyxl import Workbook
from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from daemon.decide.calendar import WorkCalendar
from daemon.reports.incident_reports import IncidentMonth, add_incident_sheets, monthly_incidents
from daemon.reports.sheet_charts import (
    count_bar_chart,
    count_line_chart,
    no_chart,
    place_below,
    plot_table,
    score_bar_chart,
)
from daemon.reports.sheets import (
    HEADER_ROW,
    Heading,
    add_figures,
    add_sheet,
    month_bounds,
    office_time,
    spanish_day,
    spanish_month,
    write_cell,
)
from daemon.store.db import as_aware
from daemon.store.models import Review, SuggestedAnswer, Survey, Ticket


def on_time(ticket: Ticket) -> bool | None:
    if ticket.answered_at is None:
        return None
    return as_aware(ticket.answered_at) <= as_aware(ticket.deadline)


def state_label(ticket: Ticket, now: datetime) -> str:
    timely = on_time(ticket)
    if timely is None:
        return "Vencida, sin respuesta" if as_aware(ticket.deadline) < now else "Pendiente"
    return "A tiempo" if timely else "Fuera de plazo"


# The register is mailed at this hour unless its schedule says another plainly.
REGISTER_CLOSES = time(17, 0)


def register_closes(cron: str) -> time:
    """The hour of day the daily register goes, read from its cron (minute hour ...)."""
    fields = cron.split()
    if len(fields) == 5 and fields[0].isdigit() and fields[1].isdigit():
        return time(int(fields[1]), int(fields[0]))
    return REGISTER_CLOSES


def register_day(moment: datetime, calendar: WorkCalendar, closes: time) -> date:
    """The day whose register shows an answer given at `moment`: that day when it is a
    working day and the register has not gone yet, else the next working day (the
    register of 17:00 was already mailed: an answer at 17:40 would appear in none)."""
    local = as_aware(moment).astimezone(calendar.zone)
    if calendar.is_working_day(local.date()) and local.time() < closes:
        return local.date()
    return calendar.next_working_day(local.date())


def register_window(day: date, calendar: WorkCalendar, closes: time) -> tuple[datetime,
                                                                             datetime]:
    """A span of answer times that holds every answer of `day`'s register (and maybe
    more: filter with register_day). Holidays never last a fortnight."""
    start = datetime.combine(day - timedelta(days=15), closes, tzinfo=calendar.zone)
    return start, datetime.combine(day, closes, tzinfo=calendar.zone)


UNIDENTIFIED = "(sin identificar)"


def shown(names: dict[str, str], address: str) -> str:
    """A person as staff know them: the signature name for a known address."""
    return names.get(address, address) or ""


@dataclass
class AssistantFigures:
    answered: int = 0
    on_time: int = 0
    late: int = 0
    hours: list[float] = field(default_factory=list)

    @property
    def average_hours(self) -> float | None:
        return average(self.hours)

    @property
    def percent_on_time(self) -> float | None:
        return round(100 * self.on_time / self.answered, 1) if self.answered else None


def tally(answered: list[Ticket]) -> AssistantFigures:
    figures = AssistantFigures()
    for t in answered:
        figures.answered += 1
        if on_time(t):
            figures.on_time += 1
        else:
            figures.late += 1
        if t.response_working_hours is not None:
            figures.hours.append(t.response_working_hours)
    return figures


def per_assistant(answered: list[Ticket], names: dict[str, str]) -> dict[str, AssistantFigures]:
    """Answers, on time, late and office hours per assistant, by the name staff know."""
    groups: dict[str, list[Ticket]] = defaultdict(list)
    for t in answered:
        groups[shown(names, t.answered_by) or UNIDENTIFIED].append(t)
    return {name: tally(members) for name, members in groups.items()}


def approvers(engine: Engine, ticket_ids: list[str]) -> dict[str, str]:
    """The supervisor who approved each legal answer that was sent (manual 7.4.1.1)."""
    with Session(engine) as session:
        return {review.ticket_id: review.decided_by for review in session.exec(
            select(Review).where(Review.ticket_id.in_(ticket_ids),
                                 Review.decision == "approved"))}


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
    """Every consulta officially received on `day` and every consulta whose answer falls
    in `day`'s register (see register_day)."""
    zone = settings.zone
    calendar = WorkCalendar.from_settings(settings.calendar, zone)
    closes = register_closes(settings.schedule.daily_register)
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day, time.max, tzinfo=zone)
    with Session(engine) as session:
        tickets = list(session.exec(select(Ticket).where(
            Ticket.kind == "consulta",
            or_(Ticket.effective_receipt.between(start, end),
                Ticket.answered_at.between(*register_window(day, calendar, closes))),
        ).order_by(Ticket.effective_receipt, Ticket.id)))
        session.expunge_all()

    def answered_today(t: Ticket) -> bool:
        return t.answered_at is not None and register_day(t.answered_at, calendar,
                                                          closes) == day

    def received_today(t: Ticket) -> bool:
        return start <= as_aware(t.effective_receipt) <= end

    tickets = [t for t in tickets if received_today(t) or answered_today(t)]
    names = settings.people.signatures
    approved = approvers(engine, [t.id for t in tickets])
    rows = []
    for t in tickets:
        rows.append([
            t.id, shown(names, t.answered_by), shown(names, approved.get(t.id, "")),
            t.citizen_address, t.subject,
            t.category or t.folder, office_time(t.received_at, zone),
            office_time(t.effective_receipt, zone), office_time(t.deadline, zone),
            office_time(t.answered_at, zone), t.response_working_hours, t.response_hours,
            state_label(t, now), "sí" if received_today(t) else "no",
            "sí" if answered_today(t) else "no",
        ])
    answered = [t for t in tickets if answered_today(t)]
    received = [t for t in tickets if received_today(t)]
    figures = per_assistant(answered, names)
    heading = Heading("Registro diario de consultas", spanish_day(day))
    workbook = Workbook()
    headers = ["Ticket", "Asistente", "Aprobó", "Ciudadano", "Asunto", "Categoría", "Llegó",
               "Recepción oficial", "Plazo", "Respondida", "Horas hábiles",
               "Horas calendario", "Estado", "Recibida este día", "Respondida este día"]
    sheet = add_sheet(workbook, "Registro del día", headers, rows, heading, first=True)
    after = add_figures(sheet, sheet.max_row + 2, "Totales del día", [
        ("Recibidas", len(received)), ("Respondidas", len(answered)),
        ("A tiempo", sum(1 for t in answered if on_time(t))),
        ("Pendientes", sum(1 for t in received if t.answered_at is None))])
    write_cell(sheet, after + 1, 1, f"Respondidas este día: desde las {closes:%H:%M} del día "
               f"hábil anterior hasta las {closes:%H:%M} de este día (la hora en que se "
               "envía el registro).")
    summary_rows = [[name, e.answered, e.on_time, e.late, e.average_hours]
                    for name, e in sorted(figures.items())]
    add_sheet(workbook, "Por asistente", ["Asistente", "Respondidas", "A tiempo",
                                          "Fuera de plazo", "Promedio horas hábiles"],
              summary_rows, heading,
              total=["Total", len(answered), sum(e.on_time for e in figures.values()),
                     sum(e.late for e in figures.values()),
                     average([h for e in figures.values() for h in e.hours])])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return DailyRegister(
        day=day, received=len(received), answered=len(answered),
        answered_on_time=sum(1 for t in answered if on_time(t)),
        pending=sum(1 for t in received if t.answered_at is None),
        per_assistant={name: {"answered": e.answered, "on_time": e.on_time, "late": e.late}
                       for name, e in figures.items()},
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
    incident_satisfaction: dict[str, float] = field(default_factory=dict)  # per criticality


def average(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def monthly_indicators(engine: Engine, settings, month: str, now: datetime) -> MonthlyIndicators:
    """The indicators of manual 8.2.1.3 for the virtual channel, with charts."""
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
        categories[category_of(t)] += 1
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
    heading = Heading("Indicadores mensuales del canal virtual", spanish_month(month))
    workbook = Workbook()
    add_sheet(workbook, "Indicadores", ["Indicador", "Valor"], [
        ["Mes", month],
        ["Consultas recibidas", indicators["received"]],
        ["Consultas resueltas", indicators["resolved"]],
        ["Consultas en proceso", indicators["in_process"]],
        ["Resueltas a tiempo", indicators["on_time"]],
        ["Tiempo promedio de respuesta (horas hábiles)", indicators["average_working_hours"]],
        ["Tiempo promedio de respuesta (horas calendario)", indicators["average_hours"]],
        ["Clasificadas correctamente por buzon (%)", indicators["correctly_routed"]],
    ], heading, widths={"A": 48}, first=True)
    category_sheet = add_sheet(workbook, "Categorías", ["Categoría", "Consultas"],
                               [[name, count] for name, count in sorted(categories.items())],
                               heading)
    if categories:
        place_below(category_sheet, plot_table(
            count_bar_chart("Consultas recibidas por categoría", "Consultas",
                            max(categories.values())), category_sheet, len(categories)))
    level_rows = [[name, v["received"], v["resolved"],
                   round(100 * v["resolved"] / v["received"], 1) if v["received"] else None]
                  for name, v in levels.items()]
    level_sheet = add_sheet(workbook, "Por nivel", ["Nivel", "Recibidas", "Resueltas",
                                                    "% resueltas"], level_rows, heading)
    if received:
        place_below(level_sheet, plot_table(
            count_bar_chart("Consultas recibidas y resueltas por nivel", "Consultas",
                            max(v["received"] for v in levels.values()), series=2),
            level_sheet, len(level_rows), columns=(2, 3)))
    else:
        no_chart(level_sheet)
    incident_figures, incidents = monthly_incidents(engine, settings, month)
    scores = survey_scores(engine, [t.id for t in received + incidents])
    satisfaction_rows = satisfaction_by(received, scores, category_of)
    satisfaction = add_sheet(workbook, "Satisfacción", ["Categoría", "Encuestas respondidas",
                                                        "Puntaje promedio (1 a 5)"],
                             satisfaction_rows, heading)
    if satisfaction_rows:
        place_below(satisfaction, plot_table(
            score_bar_chart("Satisfacción por categoría", "Puntaje (1 a 5)"), satisfaction,
            len(satisfaction_rows), columns=(3, 3)))
    incident_satisfaction = satisfaction_by(incidents, scores, lambda t: t.criticality)
    scored = [scores[t.id] for t in incidents if t.id in scores]
    add_sheet(workbook, "Satisfacción incidencias", ["Criticidad", "Encuestas respondidas",
                                                     "Puntaje promedio (1 a 5)"],
              incident_satisfaction, heading, total=["Total", len(scored), average(scored)])
    approved = approvers(engine, [t.id for t in received])
    names = settings.people.signatures
    add_sheet(workbook, "Consultas", ["Ticket", "Categoría", "Recepción oficial", "Plazo",
                                      "Respondida", "Horas hábiles", "Nivel", "Estado",
                                      "Asistente", "Aprobó"],
              [[t.id, t.category or t.folder, office_time(t.effective_receipt, zone),
                office_time(t.deadline, zone), office_time(t.answered_at, zone),
                t.response_working_hours,
                "Segundo" if t.organ else "Primero", state_label(t, now),
                shown(names, t.answered_by), shown(names, approved.get(t.id, ""))]
               for t in received], heading)
    add_suggestion_sheet(workbook, engine, [t.id for t in received], heading)
    add_incident_sheets(workbook, incident_figures, incidents, zone, heading)
    add_trend_sheet(workbook, monthly_trend(engine, settings, month), heading)
    add_sheet(workbook, "Definiciones", ["Indicador", "Cómo se cuenta"],
              [list(pair) for pair in DEFINITIONS], heading, widths={"A": 30, "B": 90})
    buffer = io.BytesIO()
    workbook.save(buffer)
    return MonthlyIndicators(month=month, categories=dict(categories), levels=levels,
                             incidents=incident_figures, data=buffer.getvalue(),
                             satisfaction={row[0]: row[2] for row in satisfaction_rows},
                             incident_satisfaction={row[0]: row[2]
                                                    for row in incident_satisfaction},
                             **indicators)


def category_of(ticket: Ticket) -> str:
    return ticket.category or ticket.folder or "Sin clasificar"


def survey_scores(engine: Engine, ticket_ids: list[str]) -> dict[str, int]:
    """The score (1 to 5) of each ticket whose survey was answered."""
    with Session(engine) as session:
        return {survey.ticket_id: survey.score for survey in session.exec(
            select(Survey).where(Survey.ticket_id.in_(ticket_ids), Survey.score.is_not(None)))}


def satisfaction_by(tickets: list[Ticket], scores: dict[str, int], group) -> list[list]:
    """[group, surveys answered, average score] for each group that has a score."""
    by_group: dict[str, list[int]] = defaultdict(list)
    for t in tickets:
        if t.id in scores:
            by_group[group(t) or "Sin clasificar"].append(scores[t.id])
    return [[name, len(values), average(values)] for name, values in sorted(by_group.items())]


# Where the workbook says how each figure is counted (manual 8.2.1.3 and 9.3.3).
DEFINITIONS = (
    ("Clasificadas correctamente por buzon (%)",
     "De las consultas que buzon archivó por regla o modelo, las que ninguna/ningún "
     "asistente tuvo que mover a otra carpeta."),
    ("Incidencias derivadas correctamente (%)",
     "De las incidencias resueltas, las que siguieron en el primer órgano al que se "
     "derivaron: las resolvió ese órgano o las escaló al tercer nivel (OTI), que es el "
     "camino normal. Cuenta como mal derivada la que el órgano devolvió con DERIVAR a "
     "otro órgano."),
    ("Respondida (registro diario)",
     "Una respuesta enviada después de la hora del registro diario (17:00) o en un día "
     "no hábil aparece en el registro del día hábil siguiente."),
    ("Asistente y Aprobó",
     "Una respuesta legal aprobada se acredita a la/el asistente que redactó el borrador; "
     "la/el supervisor que la aprobó figura en la columna Aprobó."),
    ("Tendencia",
     "Cada mes comparado con los tres meses anteriores, por asistente y en total: "
     "respondidas en el mes, promedio de respuesta en horas hábiles (de 08:30 a 16:30 en "
     "días hábiles) y porcentaje respondido dentro del plazo."),
    ("Satisfacción", "Encuestas respondidas (puntaje de 1 a 5) de las consultas e "
     "incidencias recibidas en el mes."),
)


@dataclass(frozen=True)
class MonthFigures:
    received: int
    total: AssistantFigures  # every answer of the month, whoever gave it
    assistants: dict[str, AssistantFigures]


def months_up_to(month: str, count: int) -> list[str]:
    """`count` months ending with `month`, oldest first ("2026-11", 4 -> 2026-08...)."""
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + number - 1
    return [f"{i // 12}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


def month_of(moment: datetime, zone) -> str:
    return f"{as_aware(moment).astimezone(zone):%Y-%m}"


def monthly_trend(engine: Engine, settings, month: str, count: int = 4
                  ) -> dict[str, MonthFigures]:
    """The month and the three before it (manual 8.2.1.1: trends), oldest first."""
    zone = settings.zone
    months = months_up_to(month, count)
    start, end = month_bounds(months[0], zone)[0], month_bounds(month, zone)[1]
    with Session(engine) as session:
        tickets = list(session.exec(select(Ticket).where(
            Ticket.kind == "consulta",
            or_(Ticket.effective_receipt.between(start, end),
                Ticket.answered_at.between(start, end)))))
        session.expunge_all()
    names = settings.people.signatures
    trend = {}
    for name in months:
        answered = [t for t in tickets
                    if t.answered_at is not None and month_of(t.answered_at, zone) == name]
        trend[name] = MonthFigures(
            received=sum(1 for t in tickets if month_of(t.effective_receipt, zone) == name),
            total=tally(answered),
            assistants=per_assistant(answered, names))
    return trend


TREND_MEASURES = (("Consultas respondidas", lambda f: f.answered),
                  ("Promedio de respuesta (horas hábiles)", lambda f: f.average_hours),
                  ("Respondidas a tiempo (%)", lambda f: f.percent_on_time))


def compared(values: list) -> list:
    """The values, the average of all but the last, and the last minus that average."""
    before = average([v for v in values[:-1] if v is not None])
    change = (round(values[-1] - before, 2)
              if before is not None and values[-1] is not None else None)
    return [*values, before, change]


def trend_rows(trend: dict[str, MonthFigures]) -> list[list]:
    """One row per measure and assistant (and the total), a column per month."""
    figures = list(trend.values())
    people = sorted({name for f in figures for name in f.assistants})
    rows = [["Consultas recibidas", "Total", *compared([f.received for f in figures])]]
    for label, measure in TREND_MEASURES:
        rows.append([label, "Total", *compared([measure(f.total) for f in figures])])
        rows += [[label, person, *compared([measure(f.assistants.get(person, AssistantFigures()))
                                            for f in figures])] for person in people]
    return rows


def add_trend_sheet(workbook: Workbook, trend: dict[str, MonthFigures],
                    heading: Heading) -> None:
    from openpyxl.chart import Reference

    months = list(trend)
    rows = trend_rows(trend)
    sheet = add_sheet(workbook, "Tendencia", ["Indicador", "Asistente", *months,
                                              "Promedio de los 3 meses anteriores",
                                              "Diferencia con ese promedio"], rows, heading,
                      widths={"A": 38})  # its longest label on one line
    answered = [index for index, row in enumerate(rows, start=HEADER_ROW + 1)
                if row[0] == TREND_MEASURES[0][0] and row[1] != "Total"]
    if not answered:
        no_chart(sheet)
        return
    most = max(f.assistants[name].answered for f in trend.values() for name in f.assistants)
    chart = count_line_chart("Consultas respondidas por asistente", "Consultas", most,
                             series=len(answered))
    chart.add_data(Reference(sheet, min_col=2, max_col=2 + len(months),
                             min_row=answered[0], max_row=answered[-1]),
                   from_rows=True, titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=3, max_col=2 + len(months),
                                   min_row=HEADER_ROW))
    place_below(sheet, chart)


SUGGESTION_LABELS = {"used": "Enviada casi sin cambios", "edited": "Editada antes de enviar",
                     "discarded": "Descartada", "": "Consulta aún sin respuesta"}


def add_suggestion_sheet(workbook: Workbook, engine: Engine, ticket_ids: list[str],
                         heading: Heading) -> dict:
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
    add_sheet(workbook, "Respuestas sugeridas", ["Indicador", "Cantidad", "%"], rows, heading)
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
    heading = Heading("Sugerencias por órgano", f"año {year}")
    measures = ("received", "implemented", "not_implemented", "evaluating", "pending")
    workbook = Workbook()
    add_sheet(workbook, f"Sugerencias {year}", ["Órgano", "Recibidas", "Implementadas",
                                                "No implementadas", "En evaluación",
                                                "Pendientes"],
              [[organ, *(r[m] for m in measures)] for organ, r in sorted(per_organ.items())],
              heading, first=True,
              total=["Total", *(sum(r[m] for r in per_organ.values()) for m in measures)])
    add_sheet(workbook, "Detalle", ["Ticket", "Órgano", "Ciudadano", "Asunto",
                                    "Recepción oficial", "Derivada", "Respuesta del órgano",
                                    "Resultado"],
              [[t.id, t.organ, t.citizen_address, t.subject,
                office_time(t.effective_receipt, zone), office_time(t.derived_at, zone),
                office_time(t.organ_answered_at, zone), RESULT_LABELS.get(t.result, t.result)]
               for t in tickets], heading)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return dict(per_organ), buffer.getvalue()
