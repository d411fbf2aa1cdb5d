"""Suggestions through every path on the real Dovecot and SMTP server: not a suggestion,
sent to an organ whose answer reaches the citizen and closes it, and the annual report."""

from __future__ import annotations

import json
from email.message import EmailMessage

import pytest
from conftest import at, fixture_bytes, run
from workbook_tables import after_table, rows, workbook

# The organs' protocol to the citizen, with automatic relay (an agency's choice): every
# organ answer reaches the citizen as written, the strictest case. The manual's default
# is tests/flows/test_relay.py.
pytestmark = pytest.mark.usefixtures("automatic_relay")


CITIZEN = "martin.alarcon@gmail.test"




def tickets(d) -> list[dict]:
    return [json.loads(line) for line in d.buzon("tickets", "--json").stdout.splitlines()]


def suggestion(number: int) -> bytes:
    return fixture_bytes("sugerencia_simple.eml").replace(
        b"Message-ID: <", f"Message-ID: <n{number}.".encode())


def test_a_mail_that_is_not_a_suggestion_is_closed_and_the_citizen_told(deployment):
    d = deployment
    d.deliver(suggestion(1), at("2026-11-24 10:00"), mailbox="sugerencias")
    run(d, "2026-11-24 10:05")
    d.move_all("INBOX", "No es sugerencia", mailbox="sugerencias")
    run(d, "2026-11-24 11:00")
    [ticket] = tickets(d)
    assert ticket["status"] == "closed"
    [told] = d.mails("no_es_sugerencia", CITIZEN)
    assert "Libro de Reclamaciones" in told.message.get_body(("plain",)).get_content()


def test_a_suggestion_goes_to_the_organ_whose_answer_reaches_the_citizen(deployment):
    d = deployment
    d.deliver(suggestion(2), at("2026-11-16 10:00"), mailbox="sugerencias")
    d.deliver(suggestion(3), at("2026-11-16 10:05"), mailbox="sugerencias")
    run(d, "2026-11-16 10:10")
    d.move_all("INBOX", "Derivar/DSEACE", mailbox="sugerencias")
    run(d, "2026-11-16 11:00")
    forwards = d.mails("derivacion_sugerencia", "dseace@osce.test")
    assert len(forwards) == 2
    assert d.mails("derivacion_ciudadano") == []  # told the result, when there is one
    answer = EmailMessage()
    answer["From"] = "DSEACE <dseace@osce.test>"
    answer["To"] = d.address("sugerencias")
    answer["Subject"] = f"RE: {forwards[0].message['Subject']}"
    answer["In-Reply-To"] = forwards[0].message["Message-ID"]
    answer.set_content("IMPLEMENTADA\nEl buscador tendrá el filtro por región en marzo.")
    d.deliver(bytes(answer), at("2026-11-18 09:00"), mailbox="sugerencias")
    run(d, "2026-11-18 09:05")
    [result] = d.mails("resultado_sugerencia", CITIZEN)
    assert "filtro por región en marzo" in result.message.get_body(("plain",)).get_content()
    statuses = sorted(t["status"] for t in tickets(d))
    assert statuses == ["closed", "derived"]

    out = d.tmp / "sugerencias.xlsx"
    printed = d.buzon("report", "sugerencias", "--year", "2026", "--out", str(out)).stdout
    assert "DSEACE 2 received, 1 implemented, 1 pending" in printed
    sheet = workbook(out)["Sugerencias 2026"]
    assert rows(sheet) == [("DSEACE", 2, 1, 0, 0, 1)]
    assert after_table(sheet) == ("Total", 2, 1, 0, 0, 1)


def test_no_survey_after_a_suggestion_or_not_a_suggestion(deployment):
    d = deployment
    d.deliver(suggestion(4), at("2026-11-24 10:00"), mailbox="sugerencias")
    run(d, "2026-11-24 10:05")
    d.move_all("INBOX", "No es sugerencia", mailbox="sugerencias")
    run(d, "2026-11-24 11:00")
    run(d, "2026-11-25 11:00")
    assert [t["status"] for t in tickets(d)] == ["closed"]
    assert d.mails("encuesta") == []  # surveys are for attended consultas and incidents
