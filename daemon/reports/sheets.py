"""What every workbook shares: a sheet that prints (A4 landscape, one page wide, its title
and headers repeated on each page), the title that says whose report it is and for which
day or month, a table with filters and a note when it is empty, totals as numbers, cells
that hold mail text as inert data, office time for cells (Excel has no time zones) and a
month's bounds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins

from daemon.store.db import as_aware

AGENCY = "OECE"
NO_DATA = "Sin datos en el periodo"
# Row 1 says whose report it is and for when, row 2 what the sheet holds, row 3 the
# headers; every printed page repeats the three.
TITLE_ROW, SUBTITLE_ROW, HEADER_ROW = 1, 2, 3
HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
HEADER_FONT = Font(bold=True, color="FFFFFF")
TITLE_FONT = Font(bold=True, size=13, color="1F4E78")
SUBTITLE_FONT = Font(bold=True, italic=True)
NO_DATA_FONT = Font(italic=True, color="595959")
TOTAL_FONT = Font(bold=True)
_THIN = Side(style="thin", color="A6A6A6")
TABLE_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
DATETIME_FORMAT = "dd/mm/yyyy hh:mm"
LINE_HEIGHT = 15  # points: a line of the default 11-point font
TITLE_WIDTH_FACTOR = 1.3  # a character of the bold 13-point title, in column widths
# Column widths in characters: a text column wraps past its cap, so that a wide register
# still prints one page wide at a size that can be read.
MIN_WIDTH, TEXT_WIDTH = 8, 30
# What a spreadsheet reads as the start of a formula, in a cell or when it is edited
# (OWASP's list for CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

MONTHS = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
          "septiembre", "octubre", "noviembre", "diciembre")
DAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")


def spanish_month(month: str) -> str:
    """"2026-11" -> "noviembre de 2026"."""
    year, number = (int(part) for part in month.split("-"))
    return f"{MONTHS[number - 1]} de {year}"


def spanish_day(day: date) -> str:
    """"lunes 23 de noviembre de 2026"."""
    return f"{DAYS[day.weekday()]} {day.day} de {MONTHS[day.month - 1]} de {day.year}"


@dataclass(frozen=True)
class Heading:
    """What each sheet of a report says it is, on every printed page."""

    report: str  # "Registro diario de consultas"
    period: str  # "lunes 23 de noviembre de 2026", "noviembre de 2026", "año 2026"

    @property
    def title(self) -> str:
        return f"{AGENCY} · {self.report} · {self.period}"


def as_data(cell: Cell) -> Cell:
    """Keep a text cell text: a Subject like =HYPERLINK(...) or an address like
    -x@y.test must never become a live formula (or an error value) in a workbook a
    coordinator opens. The quote prefix keeps it text when someone edits the cell."""
    value = cell.value
    if isinstance(value, str) and (value.startswith(FORMULA_STARTS) or value in ERROR_CODES):
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell


def _clean(value):
    # Control characters from mail that XML cannot hold would stop the whole workbook.
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value


def append_row(sheet, values: list) -> None:
    """Add a row below the last one, every value as data (numbers and dates stay so)."""
    sheet.append([as_data(Cell(sheet, value=_clean(value))) for value in values])


def write_cell(sheet, row: int, column: int, value) -> Cell:
    """Put one value at a given place, as data (see as_data)."""
    return as_data(sheet.cell(row=row, column=column, value=_clean(value)))


def office_time(moment: datetime | None, zone) -> datetime | None:
    # Excel has no time zones: cells show office time.
    return as_aware(moment).astimezone(zone).replace(tzinfo=None) if moment else None


def _shown_length(value) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return len(DATETIME_FORMAT)
    if isinstance(value, float):
        return len(f"{value:g}")
    return max((len(line) for line in str(value).splitlines()), default=0)


def wrapped_lines(value, width: float) -> int:
    """How many lines a wrapped cell of `width` characters needs for `value` (word by
    word, as a spreadsheet wraps)."""
    if not isinstance(value, str):
        return 1
    room, lines = max(int(width), 1), 0
    for paragraph in value.splitlines() or [""]:
        lines, used = lines + 1, 0
        for word in paragraph.split():
            if used + (1 if used else 0) + len(word) <= room:
                used += (1 if used else 0) + len(word)
                continue
            lines += 1 if used else 0  # the word starts a new line...
            spans = -(-len(word) // room)  # ...and a long one fills several
            lines, used = lines + spans - 1, len(word) - (spans - 1) * room
    return lines


def _fit_heights(sheet, first: int, last: int, columns: int) -> None:
    """Rows tall enough for their wrapped text: spreadsheets do not grow a row for it
    by themselves when they open a file (LibreOffice never does)."""
    for number in range(first, last + 1):
        lines = max(wrapped_lines(sheet.cell(row=number, column=column).value,
                                  sheet.column_dimensions[get_column_letter(column)].width)
                    for column in range(1, columns + 1))
        if lines > 1:
            sheet.row_dimensions[number].height = LINE_HEIGHT * lines


def _title_across(sheet, title: str, columns: int) -> None:
    """Merge the title row over enough columns to hold the title: a spreadsheet prints
    only the columns in use, and would cut a title longer than a narrow table."""
    needed = len(title) * TITLE_WIDTH_FACTOR
    width, count = 0.0, 0
    while width < needed or count < columns:
        count += 1
        dimension = sheet.column_dimensions[get_column_letter(count)]
        if count > columns and not dimension.width:
            dimension.width = MIN_WIDTH + 2
        width += dimension.width
    if count > columns:
        sheet.merge_cells(start_row=TITLE_ROW, start_column=1, end_row=TITLE_ROW,
                          end_column=count)


def _width(header: str, values: list) -> int:
    """Wide enough for the longest value up to a cap (text wraps past it) and for the
    header on two lines, or its longest word."""
    longest = max([_shown_length(v) for v in values[:200]], default=0)
    word = max((len(part) for part in str(header).split()), default=0)
    return max(MIN_WIDTH, word + 1, -(-len(str(header)) // 2) + 1, min(longest, TEXT_WIDTH) + 1)


def set_up_printing(sheet) -> None:
    """A4 landscape, one page wide and as many long as it takes, the title and the
    headers on every page, and the page number at the foot."""
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.orientation = sheet.ORIENTATION_LANDSCAPE
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0  # as many pages long as the rows need
    sheet.page_margins = PageMargins(left=0.5, right=0.5, top=0.75, bottom=0.75,
                                     header=0.3, footer=0.3)
    sheet.print_options.horizontalCentered = True
    sheet.print_title_rows = f"{TITLE_ROW}:{HEADER_ROW}"
    sheet.oddFooter.center.text = "Página &P de &N"
    sheet.oddFooter.center.size = 8


def add_sheet(workbook: Workbook, title: str, headers: list[str], rows: list[list],
              heading: Heading, *, total: list | None = None,
              widths: dict[str, int] | None = None, first: bool = False):
    """A sheet with the report's title, one table (headers with filters, then the rows,
    or a note that the period has none) and, when given, a total row below the table
    (in bold, out of the filter's reach so that sorting never moves it). `widths` sets
    a column's width by its letter (text wraps within it)."""
    sheet = workbook.active if first else workbook.create_sheet()
    sheet.title = title
    write_cell(sheet, TITLE_ROW, 1, heading.title).font = TITLE_FONT
    write_cell(sheet, SUBTITLE_ROW, 1, title).font = SUBTITLE_FONT
    for column, header in enumerate(headers, start=1):
        cell = write_cell(sheet, HEADER_ROW, column, header)
        cell.fill, cell.font, cell.border = HEADER_FILL, HEADER_FONT, TABLE_BORDER
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for row in rows:
        append_row(sheet, row)
    if not rows:
        write_cell(sheet, HEADER_ROW + 1, 1, NO_DATA).font = NO_DATA_FONT
    last = get_column_letter(len(headers))
    sheet.auto_filter.ref = f"A{HEADER_ROW}:{last}{HEADER_ROW + len(rows)}"
    if total is not None and rows:
        append_row(sheet, total)
        for cell in sheet[sheet.max_row]:
            cell.font = TOTAL_FONT
    body = rows + ([total] if total is not None and rows else [])
    for index, header in enumerate(headers, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = (widths or {}).get(
            letter, _width(header, [row[index - 1] for row in body]))
    for line in sheet.iter_rows(min_row=HEADER_ROW + 1, max_row=HEADER_ROW + len(body),
                                max_col=len(headers)):
        for cell in line:
            cell.border = TABLE_BORDER
            if isinstance(cell.value, datetime):
                cell.number_format = DATETIME_FORMAT
            width = sheet.column_dimensions[cell.column_letter].width
            # Top: a row grown for one cell's wrapped text reads from its first line.
            cell.alignment = Alignment(wrap_text=_shown_length(cell.value) >= width,
                                       vertical="top")
    _fit_heights(sheet, HEADER_ROW, HEADER_ROW + len(body), len(headers))
    _title_across(sheet, heading.title, len(headers))
    sheet.row_dimensions[TITLE_ROW].height = 20
    sheet.freeze_panes = f"A{HEADER_ROW + 1}"
    set_up_printing(sheet)
    return sheet


def add_figures(sheet, row: int, title: str, figures: list[tuple[str, float | int | None]],
                column: int = 1) -> int:
    """A small block beside or below a table: a bold title, then one label and its
    number per row (numbers a spreadsheet can add, never "Recibidas: 3"). Returns the
    row after it."""
    write_cell(sheet, row, column, title).font = TOTAL_FONT
    for offset, (label, number) in enumerate(figures, start=1):
        write_cell(sheet, row + offset, column, label).border = TABLE_BORDER
        write_cell(sheet, row + offset, column + 1, number).border = TABLE_BORDER
    if not figures:
        write_cell(sheet, row + 1, column, NO_DATA).font = NO_DATA_FONT
    return row + max(len(figures), 1) + 1


def month_bounds(month: str, zone) -> tuple[datetime, datetime]:
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=zone)
    return start, end
