"""The workbooks' own charts (openpyxl): counts on whole-number axes from zero, scores
from 0 to 5, no legend when there is one series, and each chart placed below its table
where no page break cuts it in two."""

from __future__ import annotations

import itertools

from openpyxl.chart import BarChart, LineChart
from openpyxl.worksheet.pagebreak import Break

from daemon.reports.sheets import HEADER_ROW, NO_DATA, NO_DATA_FONT, write_cell

# Narrower than A4 landscape's printable width (about 27 cm with set_up_printing's
# margins), so a chart never makes a sheet print smaller than its table does.
CHART_WIDTH_CM, CHART_HEIGHT_CM = 18.0, 7.0
POINTS_PER_CM = 72 / 2.54
A4_SHORT_SIDE_PT = 21.0 * POINTS_PER_CM  # the height of a landscape page
DEFAULT_ROW_PT = 15
# What a page loses besides its margins (LibreOffice keeps a little for the footer).
SAFETY_PT = 24
MAX_GRIDLINES = 8


def count_step(maximum: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... that needs at most MAX_GRIDLINES steps to
    reach `maximum`: whole numbers, never 0.5 of a consulta."""
    step, factors = 1, itertools.cycle((2, 2.5, 2))
    while maximum > MAX_GRIDLINES * step:
        step = int(step * next(factors))
    return step


def _axes(chart, y_title: str, minimum: float, step: float, maximum: float | None) -> None:
    chart.y_axis.title = y_title
    chart.y_axis.scaling.min = minimum
    chart.y_axis.scaling.max = maximum
    chart.y_axis.majorUnit = step
    chart.y_axis.number_format = "0"
    # openpyxl 3.1 leaves the axes' `delete` unset, which Excel reads as hidden axes.
    chart.x_axis.delete = chart.y_axis.delete = False


def _sized(chart, title: str, series: int):
    chart.title = title
    chart.width, chart.height = CHART_WIDTH_CM, CHART_HEIGHT_CM
    if series == 1:
        chart.legend = None  # one series: its name is the axis title already
    else:
        chart.legend.position = "b"
    return chart


def count_bar_chart(title: str, y_title: str, maximum: float, series: int = 1) -> BarChart:
    """A bar chart of counts: whole numbers from zero."""
    chart = _sized(BarChart(), title, series)
    _axes(chart, y_title, 0, count_step(maximum), None)
    return chart


def count_line_chart(title: str, y_title: str, maximum: float, series: int) -> LineChart:
    chart = _sized(LineChart(), title, series)
    _axes(chart, y_title, 0, count_step(maximum), None)
    return chart


def score_bar_chart(title: str, y_title: str) -> BarChart:
    """A bar chart of average survey scores, on the scale they are asked in (1 to 5)."""
    chart = _sized(BarChart(), title, 1)
    _axes(chart, y_title, 0, 1, 5)
    chart.y_axis.number_format = "0.0"
    return chart


def plot_table(chart, sheet, rows: int, columns: tuple[int, int] = (2, 2)):
    """Chart the columns `columns` (first, last) of a sheet's table of `rows` rows,
    one series per column named by its header, against the labels in column A."""
    from openpyxl.chart import Reference

    last = HEADER_ROW + rows
    chart.add_data(Reference(sheet, min_col=columns[0], max_col=columns[1],
                             min_row=HEADER_ROW, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=1, min_row=HEADER_ROW + 1, max_row=last))
    return chart


def page_height_pt(sheet) -> float:
    """The height a landscape page gives the rows, at full size. Fitting a sheet to the
    page's width only ever shrinks it, so a page holds at least this much of it."""
    margins = sheet.page_margins
    return A4_SHORT_SIDE_PT - 72 * (margins.top + margins.bottom) - SAFETY_PT


def rows_height_pt(sheet, last: int) -> float:
    """The height of rows 1 to `last`, as set_up_printing and add_sheet left them."""
    return sum(sheet.row_dimensions[row].height or DEFAULT_ROW_PT
               for row in range(1, last + 1))


def no_chart(sheet) -> None:
    """Where a chart would show nothing: say so instead."""
    write_cell(sheet, sheet.max_row + 2, 1, NO_DATA).font = NO_DATA_FONT


def place_below(sheet, chart) -> str:
    """Anchor the chart in column A, two rows below everything on the sheet. When the
    chart would not end on the first page, a page break puts it at the top of the next
    one (below the title rows every page repeats), where it fits whole. Returns the
    anchor cell."""
    row = sheet.max_row + 2
    chart_pt = CHART_HEIGHT_CM * POINTS_PER_CM
    if rows_height_pt(sheet, row - 1) + chart_pt > page_height_pt(sheet):
        sheet.row_breaks.append(Break(id=row - 1))
    anchor = f"A{row}"
    sheet.add_chart(chart, anchor)
    return anchor
