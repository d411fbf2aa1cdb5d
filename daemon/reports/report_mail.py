"""The report mails to the coordinators: the daily register, the daily incident report
and, on the first working day of each month, the monthly indicators with their charts.
Each goes once per day (or month) under a one-time key, even across restarts."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session

from daemon.flows.sweeps import consulta_mailbox
from daemon.mail.compose import Attachment
from daemon.reports.incident_reports import daily_incident_report
from daemon.reports.sheets import spanish_month
from daemon.reports.workbooks import daily_register, monthly_indicators
from daemon.runtime import Runtime
from daemon.store.notify import claim, plan_mail

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _daily_workbook_mail(rt: Runtime, now: datetime, key: str, build, template: str,
                         filename: str, name: str):
    """Build the day's report and mail it, with its workbook, to the coordinators once.
    Returns (the report, "") or (None, why it was not sent)."""
    local = now.astimezone(rt.settings.zone)
    if not rt.calendar.is_working_day(local.date()):
        return None, "not a working day"
    report = build(local.date())
    with Session(rt.engine) as session:
        if not claim(session, f"{key}:{local.date()}", now):
            return None, "already sent"
        if rt.settings.people.coordinators:
            workbook = Attachment(f"{filename}-{local.date()}.xlsx", XLSX, report.data)
            plan_mail(rt, session, mailbox=consulta_mailbox(rt), template=template,
                      values={name: report, "dia": local}, to=rt.settings.people.coordinators,
                      now=now, attachments=(workbook,))
        session.commit()
    return report, ""


def daily_register_job(rt: Runtime, now: datetime) -> str:
    register, why_not = _daily_workbook_mail(
        rt, now, "register", lambda day: daily_register(rt.engine, rt.settings, day, now),
        "registro_diario", "registro-diario", "registro")
    return why_not or f"{register.received} received, {register.answered} answered"


def incident_report_job(rt: Runtime, now: datetime) -> str:
    """Manual 9.3.1: the day's consolidated incident report to the coordinators."""
    report, why_not = _daily_workbook_mail(
        rt, now, "incident_report", lambda day: daily_incident_report(rt.engine, rt.settings,
                                                                        day),
        "reporte_incidencias", "incidencias", "reporte")
    if why_not:
        return why_not
    totals = report.totals
    return (f"{totals['entered']} entered, {totals['attended']} attended, "
            f"{totals['solved']} solved")


def first_working_day(rt: Runtime, year: int, month: int) -> date:
    day = date(year, month, 1)
    return day if rt.calendar.is_working_day(day) else rt.calendar.next_working_day(day)


def previous_month(day: date) -> str:
    return f"{day.year - 1}-12" if day.month == 1 else f"{day.year}-{day.month - 1:02d}"


def monthly_indicators_job(rt: Runtime, now: datetime) -> str:
    """On the first working day of a month: the month before, as a workbook and as
    pictures in the mail itself."""
    from daemon.reports.charts import monthly_charts  # matplotlib: loaded once a month

    today = now.astimezone(rt.settings.zone).date()
    if today != first_working_day(rt, today.year, today.month):
        return "not the first working day of the month"
    month = previous_month(today)
    # Read before the write transaction (SQLite: one writer, and readers wait for it).
    indicators = monthly_indicators(rt.engine, rt.settings, month, now)
    pictures = monthly_charts(indicators)
    with Session(rt.engine) as session:
        if not claim(session, f"monthly:{month}", now):
            return "already sent"
        if rt.settings.people.coordinators:
            files = (Attachment(f"indicadores-{month}.xlsx", XLSX, indicators.data),
                     *(Attachment(p.name, "image/png", p.png, content_id=p.name)
                       for p in pictures))
            plan_mail(rt, session, mailbox=consulta_mailbox(rt),
                      template="indicadores_mensuales",
                      values={"i": indicators, "mes": spanish_month(month),
                              "graficos": [{"nombre": p.name, "descripcion": p.description}
                                           for p in pictures]},
                      to=rt.settings.people.coordinators, now=now, attachments=files)
        session.commit()
    return f"{month}: {indicators.received} received, {indicators.resolved} resolved"
