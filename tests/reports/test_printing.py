"""Workbooks that print (issue 18 point 4): every sheet A4 landscape, one page wide, with
the agency, the report and its day or month on top, filters on its headers, totals as
numbers, count charts on whole numbers without a legend for one series, and "Sin datos
en el periodo" where there is nothing to show. The mail's pictures name the month and
say what they show. Last, the coordinator's eye: the workbooks rendered to PDF by
LibreOffice, and their pages counted."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from datetime import date

import pytest
from office_day import a_day_of_four, a_month, at, office_settings
from openpyxl import Workbook
from openpyxl.chart import BarChart
from PIL import Image
from workbook_tables import after_table, headers, rows, workbook

from daemon.reports.charts import bar_figure, monthly_charts
from daemon.reports.incident_reports import daily_incident_report
from daemon.reports.sheet_charts import count_step, place_below
from daemon.reports.sheets import HEADER_ROW, NO_DATA, Heading, add_sheet, wrapped_lines
from daemon.reports.workbooks import daily_register, monthly_indicators, suggestions_by_organ
from daemon.store.db import make_engine

NOW = at("2026-12-01 09:00")
MONDAY = date(2026, 11, 23)


@pytest.fixture
def settings():
    return office_settings()


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'buzon.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def office(engine):
    """A database with the day of four consultas and the month around it."""
    a_day_of_four(engine)
    return engine


@pytest.fixture
def month_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'mes.db'}")
    a_month(engine)
    yield engine
    engine.dispose()


def every_workbook(day_engine, month_engine, settings) -> dict[str, tuple[bytes, str]]:
    """{report: (workbook, the period its title names)} for each workbook buzon writes."""
    return {
        "Registro diario de consultas": (
            daily_register(day_engine, settings, MONDAY, NOW).data,
            "lunes 23 de noviembre de 2026"),
        "Reporte diario de incidencias": (
            daily_incident_report(month_engine, settings, date(2026, 11, 16)).data,
            "lunes 16 de noviembre de 2026"),
        "Indicadores mensuales del canal virtual": (
            monthly_indicators(month_engine, settings, "2026-11", NOW).data,
            "noviembre de 2026"),
        "Sugerencias por órgano": (suggestions_by_organ(month_engine, settings, 2026)[1],
                                   "año 2026"),
    }


def test_every_sheet_prints_landscape_one_page_wide_under_its_title(office, month_engine,
                                                                   settings):
    for report, (data, period) in every_workbook(office, month_engine, settings).items():
        for sheet in workbook(data):
            where = f"{report} / {sheet.title}"
            setup = sheet.page_setup
            assert (setup.orientation, setup.paperSize) == ("landscape", 9), where  # A4
            assert sheet.sheet_properties.pageSetUpPr.fitToPage, where
            assert (setup.fitToWidth, setup.fitToHeight) == (1, 0), where
            assert sheet.print_title_rows == f"$1:${HEADER_ROW}", where  # on every page
            assert sheet["A1"].value == f"OECE · {report} · {period}", where
            assert sheet["A2"].value == sheet.title, where
            # The filter starts on the header row and spans the table's columns.
            assert sheet.auto_filter.ref.startswith(f"A{HEADER_ROW}:"), where
            assert headers(sheet)[0] and None not in headers(sheet), where


TEXT_TOTAL = re.compile(r"^[^\W\d][\w ]*: \d+$")  # "Recibidas: 3"


def test_totals_are_numbers_beside_their_labels(office, month_engine, settings):
    register = workbook(daily_register(office, settings, MONDAY, NOW).data)
    sheet = register["Registro del día"]
    assert len(rows(sheet)) == 4
    [start] = [cell.row for cell in sheet["A"] if cell.value == "Totales del día"]
    totals = {sheet.cell(row, 1).value: sheet.cell(row, 2).value
              for row in range(start + 1, start + 5)}
    assert totals == {"Recibidas": 4, "Respondidas": 3, "A tiempo": 2, "Pendientes": 1}
    assert all(sheet.cell(row, 2).data_type == "n" for row in range(start + 1, start + 5))
    # The per-assistant total sits below the table, out of the filter's reach.
    assert after_table(register["Por asistente"])[:4] == ("Total", 3, 2, 1)
    for report, (data, _) in every_workbook(office, month_engine, settings).items():
        for sheet in workbook(data):
            texts = [cell.value for line in sheet.iter_rows() for cell in line
                     if isinstance(cell.value, str) and TEXT_TOTAL.match(cell.value)]
            assert texts == [], f"{report} / {sheet.title}"


def charts_of(data: bytes) -> dict[str, list]:
    return {sheet.title: sheet._charts for sheet in workbook(data) if sheet._charts}


def test_count_charts_count_in_whole_numbers_and_one_series_has_no_legend(month_engine,
                                                                         settings):
    month = monthly_indicators(month_engine, settings, "2026-11", NOW)
    charts = charts_of(month.data)
    assert set(charts) == {"Categorías", "Por nivel", "Satisfacción", "Incidencias",
                           "Tendencia"}
    for title, [chart] in charts.items():
        axis = chart.y_axis
        assert axis.scaling.min == 0, title
        assert axis.majorUnit >= 1 and axis.majorUnit == int(axis.majorUnit), title
        assert axis.delete is False and chart.x_axis.delete is False, title  # axes shown
        if title == "Satisfacción":  # scores, on the scale they are asked in
            assert (axis.scaling.max, axis.majorUnit) == (5, 1)
        else:
            assert axis.numFmt.formatCode == "0", title
        series = len(chart.series)
        assert (chart.legend is None) == (series == 1), title
    assert len(charts["Por nivel"][0].series) == 2  # received and resolved: a legend
    assert len(charts["Tendencia"][0].series) == 2  # one line per assistant


def test_the_axis_step_is_a_whole_number_for_any_count():
    assert [count_step(n) for n in (0, 1, 4, 8, 9, 16, 17, 40, 41, 80, 81, 400, 401)] == [
        1, 1, 1, 1, 2, 2, 5, 5, 10, 10, 20, 50, 100]


def test_a_chart_below_a_long_table_starts_a_page_and_one_below_a_short_table_does_not():
    heading = Heading("Indicadores mensuales del canal virtual", "noviembre de 2026")
    sheets = Workbook()
    short = add_sheet(sheets, "Corta", ["Categoría", "Consultas"],
                      [[f"C{n}", n] for n in range(5)], heading, first=True)
    long = add_sheet(sheets, "Larga", ["Categoría", "Consultas"],
                     [[f"C{n}", n] for n in range(20)], heading)
    assert place_below(short, BarChart()) == f"A{HEADER_ROW + 5 + 2}"
    assert not short.row_breaks.brk
    anchor = place_below(long, BarChart())
    assert anchor == f"A{HEADER_ROW + 20 + 2}"
    assert [b.id for b in long.row_breaks.brk] == [HEADER_ROW + 20 + 1]


def test_long_text_wraps_in_its_column_and_its_row_grows_for_it():
    subject = "Consulta sobre la renovación de mi inscripción en el RNP como proveedor"
    sheets = Workbook()
    sheet = add_sheet(sheets, "Registro del día", ["Ticket", "Asunto"],
                      [["C-2026-000001", subject], ["C-2026-000002", "Corto"]],
                      Heading("Registro diario de consultas", "lunes 23 de noviembre de 2026"),
                      first=True)
    width = sheet.column_dimensions["B"].width
    assert width < len(subject)  # capped: the text wraps instead of widening the page
    long_row, short_row = HEADER_ROW + 1, HEADER_ROW + 2
    assert sheet.cell(long_row, 2).alignment.wrap_text
    lines = sheet.row_dimensions[long_row].height / 15
    assert lines == int(lines) and lines * width >= len(subject)
    assert sheet.row_dimensions[short_row].height is None  # the default height
    assert wrapped_lines("uno dos tres", 8) == 2 and wrapped_lines("x" * 25, 10) == 3


def test_an_empty_period_says_sin_datos_instead_of_bare_headers_or_empty_charts(engine,
                                                                               settings):
    month = monthly_indicators(engine, settings, "2026-11", NOW)
    sheets = workbook(month.data)
    for title in ("Categorías", "Satisfacción", "Consultas", "Detalle de incidencias",
                  "Satisfacción incidencias"):
        assert rows(sheets[title]) == [], title
        assert after_table(sheets[title])[0] == NO_DATA, title
    # Tables of zeros keep their zeros, and say there is nothing to chart.
    for title in ("Por nivel", "Incidencias", "Tendencia"):
        assert NO_DATA in [cell.value for cell in sheets[title]["A"]], title
    assert charts_of(month.data) == {}
    assert monthly_charts(month) == []
    register = workbook(daily_register(engine, settings, MONDAY, NOW).data)
    for sheet in register:
        assert rows(sheet) == [] and after_table(sheet)[0] == NO_DATA, sheet.title
    suggestions = workbook(suggestions_by_organ(engine, settings, 2026)[1])
    for sheet in suggestions:
        assert after_table(sheet)[0] == NO_DATA, sheet.title


def test_the_mails_pictures_name_the_month_and_say_what_they_show(month_engine, settings):
    month = monthly_indicators(month_engine, settings, "2026-11", NOW)
    pictures = {picture.name: picture for picture in monthly_charts(month)}
    assert set(pictures) == {"categorias.png", "niveles.png", "incidencias.png",
                             "satisfaccion.png"}
    for picture in pictures.values():
        image = Image.open(io.BytesIO(picture.png))
        assert image.format == "PNG"
        assert image.text["Title"].endswith(", noviembre de 2026"), picture.name
        assert image.text["Description"] == picture.description
        assert "noviembre de 2026" in picture.description
    assert pictures["categorias.png"].description == (
        "Gráfico de barras de las consultas recibidas por categoría en noviembre de 2026. "
        "Capacitación: 1 consulta; Legal: 2 consultas; RNP: 3 consultas; SEACE: 4 consultas.")
    assert pictures["niveles.png"].description.endswith(
        "noviembre de 2026. Primer nivel: 8 recibidas y 6 resueltas; "
        "Segundo nivel: 2 recibidas y 2 resueltas.")
    assert pictures["incidencias.png"].description == (
        "Gráfico de barras de las 4 incidencias reportadas en noviembre de 2026, por "
        "resultado. Resueltas en el segundo nivel: 1; resueltas en el tercer nivel: 1; "
        "requerimientos funcionales: 1; en proceso: 1.")
    assert pictures["satisfaccion.png"].description.endswith(
        "noviembre de 2026. Legal: 5; RNP: 2; SEACE: 4.")


def test_a_count_picture_has_a_whole_number_axis_from_zero():
    import matplotlib.pyplot as plt

    figure = bar_figure("Consultas recibidas por categoría, noviembre de 2026",
                        ["RNP", "SEACE"], {"Consultas": [1, 3]}, "Consultas")
    axes = figure.axes[0]
    assert axes.get_ylim()[0] == 0
    ticks = [tick for tick in axes.get_yticks() if tick <= axes.get_ylim()[1]]
    assert ticks and all(tick == int(tick) for tick in ticks)
    assert axes.get_legend() is None  # one series
    plt.close(figure)


# The coordinator's eye ------------------------------------------------------------------

PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
MEDIA_BOX = re.compile(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]")


def soffice() -> str:
    found = shutil.which("soffice")
    if found:
        return found
    if os.environ.get("CI"):  # CI installs libreoffice-calc-nogui: absent is a failure
        pytest.fail("soffice not found: install libreoffice-calc-nogui")
    pytest.skip("LibreOffice (soffice) is not installed")


def as_pdf(tmp_path, workbooks: dict[str, bytes]) -> dict[str, bytes]:
    """Each workbook rendered by LibreOffice headless, as a coordinator prints it."""
    program = soffice()
    for name, data in workbooks.items():
        (tmp_path / f"{name}.xlsx").write_bytes(data)
    subprocess.run([program, f"-env:UserInstallation=file://{tmp_path / 'perfil'}",
                    "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path),
                    *(str(tmp_path / f"{name}.xlsx") for name in workbooks)],
                   check=True, capture_output=True, timeout=300)
    return {name: (tmp_path / f"{name}.pdf").read_bytes() for name in workbooks}


def test_the_register_and_the_monthly_workbook_print_one_page_per_sheet(tmp_path, office,
                                                                      month_engine,
                                                                      settings):
    register = daily_register(office, settings, MONDAY, NOW)
    month = monthly_indicators(month_engine, settings, "2026-11", NOW)
    assert len(rows(workbook(register.data)["Registro del día"])) == 4
    assert len(charts_of(month.data)) == 5
    pdfs = as_pdf(tmp_path, {"registro": register.data, "indicadores": month.data})
    for name, data in (("registro", register.data), ("indicadores", month.data)):
        pages = len(PAGE.findall(pdfs[name]))
        sheets = len(workbook(data).sheetnames)
        # Every sheet of this day and this month is short: its table, and its chart below
        # it, fit one landscape page; a chart cut by a page break would take two.
        assert pages == sheets, (name, pages, sheets)
        boxes = {(round(float(w)), round(float(h))) for w, h in MEDIA_BOX.findall(pdfs[name])}
        assert boxes == {(842, 595)}, name  # A4, landscape
    assert len(workbook(register.data).sheetnames) == 2
    assert len(workbook(month.data).sheetnames) == 11
