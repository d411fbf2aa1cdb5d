"""Reading a buzon workbook back as a coordinator's filter sees it: each sheet's table is
the header row and the data rows its auto filter covers; a total row, when there is one,
sits right below it, and an empty table has the note that says so instead of rows."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
from openpyxl.worksheet.cell_range import CellRange


def workbook(data: bytes | Path):
    return openpyxl.load_workbook(data if isinstance(data, Path) else io.BytesIO(data))


def _bounds(sheet) -> CellRange:
    assert sheet.auto_filter.ref, f"{sheet.title}: no filter on its header row"
    return CellRange(sheet.auto_filter.ref)


def headers(sheet) -> list:
    bounds = _bounds(sheet)
    return [sheet.cell(row=bounds.min_row, column=column).value
            for column in range(bounds.min_col, bounds.max_col + 1)]


def rows(sheet, cells: bool = False) -> list[tuple]:
    """The table's data rows (values, or the cells themselves)."""
    bounds = _bounds(sheet)
    return list(sheet.iter_rows(min_row=bounds.min_row + 1, max_row=bounds.max_row,
                                min_col=bounds.min_col, max_col=bounds.max_col,
                                values_only=not cells))


def records(sheet) -> list[dict]:
    """The data rows as {header: value}."""
    names = headers(sheet)
    return [dict(zip(names, row, strict=True)) for row in rows(sheet)]


def by_first_column(sheet) -> dict:
    """{first value: the rest of the row} for a table of labelled figures."""
    return {row[0]: row[1:] for row in rows(sheet)}


def after_table(sheet) -> tuple:
    """The row right below the table: its total, or the note of an empty table."""
    bounds = _bounds(sheet)
    return next(sheet.iter_rows(min_row=bounds.max_row + 1, max_row=bounds.max_row + 1,
                                min_col=bounds.min_col, max_col=bounds.max_col,
                                values_only=True))
