"""Workbooks coordinators open are inert: text that came by mail is written as text, never
as a formula, while numbers and dates stay numbers and dates."""

from __future__ import annotations

import io
from datetime import datetime
from email.message import EmailMessage

import openpyxl
import pytest
from conftest import at, run
from openpyxl import Workbook
from workbook_tables import headers, rows

from daemon.reports.sheets import HEADER_ROW, Heading, add_sheet, write_cell

HEADING = Heading("Registro diario de consultas", "martes 24 de noviembre de 2026")

HYPERLINK = '=HYPERLINK("http://x.test","clic")'
DANGEROUS = [HYPERLINK, "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1", "=1", "#REF!"]


def reloaded(workbook: Workbook) -> Workbook:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return openpyxl.load_workbook(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("text", DANGEROUS)
def test_text_a_spreadsheet_would_run_stays_text(text):
    workbook = Workbook()
    add_sheet(workbook, "Hoja", ["Asunto", "Horas", "Llegó"],
              [[text, -1.5, datetime(2026, 11, 24, 10, 0)]], HEADING, first=True)
    row = HEADER_ROW + 1
    write_cell(workbook.active, row + 3, 1, text)
    sheet = reloaded(workbook)["Hoja"]
    for cell in (sheet.cell(row, 1), sheet.cell(row + 3, 1)):
        assert cell.data_type == "s"
        assert cell.value in (text, text.replace("\r", "\n"))  # XML reads a CR back as LF
        assert cell.quotePrefix  # still text when a coordinator edits the cell
    assert sheet.cell(row, 2).data_type == "n" and sheet.cell(row, 2).value == -1.5
    assert sheet.cell(row, 3).is_date
    assert sheet.cell(row, 3).value == datetime(2026, 11, 24, 10, 0)


def test_control_characters_from_mail_do_not_stop_the_workbook():
    workbook = Workbook()
    add_sheet(workbook, "Hoja", ["Asunto"], [["hola\x01\x1bmundo"]], HEADING, first=True)
    assert reloaded(workbook)["Hoja"].cell(HEADER_ROW + 1, 1).value == "hola\ufffd\ufffdmundo"


def test_a_formula_in_a_subject_is_text_in_the_daily_register(deployment):
    d = deployment
    message = EmailMessage()
    message["From"] = '"=cmd|\' /C calc\'!A0" <-menos@correo.test>'
    message["To"] = d.address("consultas")
    message["Subject"] = HYPERLINK
    message.set_content("Buenos días, ¿cómo me inscribo en el RNP?")
    d.deliver(bytes(message), at("2026-11-24 10:00"))
    run(d, "2026-11-24 10:05")
    out = d.tmp / "registro.xlsx"
    d.buzon("report", "daily", "--date", "2026-11-24", "--out", str(out))
    sheet = openpyxl.load_workbook(out)["Registro del día"]
    [cells] = rows(sheet, cells=True)
    row = {header: cell for header, cell in zip(headers(sheet), cells, strict=True)}
    assert row["Asunto"].value == HYPERLINK and row["Asunto"].data_type == "s"
    assert row["Ciudadano"].value == "-menos@correo.test"
    assert row["Ciudadano"].data_type == "s" and row["Ciudadano"].quotePrefix
    assert row["Llegó"].is_date and row["Plazo"].is_date
    assert not any(cell.data_type == "f" for line in sheet.iter_rows() for cell in line)
