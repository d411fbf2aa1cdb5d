"""What every workbook shares: the header style, one sheet from headers and rows, cells
that hold mail text as inert data, office time for cells (Excel has no time zones) and a
month's bounds."""

from __future__ import annotations

from datetime import datetime

from openpyxl import Workbook
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from daemon.store.db import as_aware

HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
HEADER_FONT = Font(bold=True, color="FFFFFF")
TOTAL_FONT = Font(bold=True)
# What a spreadsheet reads as the start of a formula, in a cell or when it is edited
# (OWASP's list for CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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


def add_sheet(workbook: Workbook, title: str, headers: list[str], rows: list[list],
           first: bool = False):
    sheet = workbook.active if first else workbook.create_sheet()
    sheet.title = title
    append_row(sheet, headers)
    for cell in sheet[1]:
        cell.fill, cell.font = HEADER_FILL, HEADER_FONT
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for row in rows:
        append_row(sheet, row)
    for index, header in enumerate(headers, start=1):
        width = max([len(str(header))] + [len(str(r[index - 1] or "")) for r in rows][:200])
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 10), 60)
    sheet.freeze_panes = "A2"
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
    return sheet


def month_bounds(month: str, zone) -> tuple[datetime, datetime]:
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=zone)
    return start, end
