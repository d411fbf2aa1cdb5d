"""A consulta's whole life against the real Dovecot and SMTP server, the clock driven by
`buzon run --once --now`: reminders, the answer through Sent, the daily register,
escalation, second-level derivation, follow-ups, and a SIGKILL in the middle of a sweep."""

from __future__ import annotations

import json
import signal
from datetime import datetime
from email.message import EmailMessage

import pytest
from conftest import at, fixture_bytes, run
from workbook_tables import after_table, records, rows, workbook

CITIZEN = "juan.perez@gmail.test"
CITIZEN_MESSAGE_ID = "<plain-consulta-seace.2026@mail.gmail.test>"




def tickets(deployment) -> dict[str, dict]:
    rows = [json.loads(line) for line in deployment.buzon("tickets", "--json").stdout.split("\n")
            if line]
    return {row["ticket"]: row for row in rows}


def reply(sender: str, subject: str, body: str, in_reply_to: str = "") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = CITIZEN
    message["Subject"] = subject
    message["Message-ID"] = f"<reply.{abs(hash((sender, subject, body)))}@osce.test>"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body)
    return bytes(message)


@pytest.fixture
def staffed(deployment):
    deployment.config["people"]["signatures"] = {"asistente@osce.test": "Ana Torres"}
    deployment.config["organs"]["DRNP"] = {"address": "drnp@osce.test",
                                           "deadline_working_days": 2}
    deployment.write_config()
    return deployment


def test_a_consultas_life_from_friday_evening_to_mondays_register(staffed):
    d = staffed
    d.deliver(fixture_bytes("plain_consulta_seace.eml"), at("2026-11-20 16:45"))
    run(d, "2026-11-20 16:50")
    [ticket] = tickets(d).values()
    assert ticket["effective_receipt"] == "2026-11-23T08:30:00-05:00"
    assert ticket["deadline"] == "2026-11-24T08:30:00-05:00"

    # Monday morning: the assistants' summary lists it, and its mail is flagged.
    run(d, "2026-11-23 09:00")
    [summary] = d.mails("resumen_matutino", "asistente@osce.test")
    body = summary.message.get_body(("plain",)).get_content()
    assert ticket["ticket"] in body and "Por vencer" in body
    flags = d.ticket_flags("SEACE", ticket["ticket"])[0]
    assert {"\\Flagged", "Por_vencer"} <= flags
    # Friday's 17:00 register was made up on Monday, for Friday.
    [friday] = d.mails("registro_diario")
    assert "20/11/2026" in friday.message["Subject"]

    # The assistant answers from Outlook: the reply lands in Sent.
    d.deliver(reply(d.address("consultas"), "RE: No puedo ingresar al SEACE",
                    "Estimado Juan: siga estos pasos...\n\nAna Torres\nMesa de consultas",
                    CITIZEN_MESSAGE_ID), at("2026-11-23 11:00"), folder="Sent")
    run(d, "2026-11-23 11:05")
    answered = tickets(d)[ticket["ticket"]]
    assert answered["answered_at"] == "2026-11-23T11:00:00-05:00"
    assert answered["status"] == "answered"

    # Monday 17:00: the register reaches the coordinators, with the workbook.
    run(d, "2026-11-23 17:05")
    monday = [m for m in d.mails("registro_diario", "coordinador@osce.test")
              if "23/11/2026" in m.message["Subject"]]
    assert len(monday) == 1
    attachment = next(part for part in monday[0].message.iter_attachments())
    assert attachment.get_filename() == "registro-diario-2026-11-23.xlsx"
    sheets = workbook(attachment.get_content())
    [record] = records(sheets["Registro del día"])
    assert record["Ticket"] == ticket["ticket"]
    assert record["Asistente"] == "Ana Torres"
    assert record["Recepción oficial"] == datetime(2026, 11, 23, 8, 30)
    assert record["Plazo"] == datetime(2026, 11, 24, 8, 30)
    assert record["Respondida"] == datetime(2026, 11, 23, 11, 0)
    assert record["Horas hábiles"] == 2.5
    assert record["Estado"] == "A tiempo"
    assert record["Categoría"] == "SEACE"
    [per_assistant] = rows(sheets["Por asistente"])
    assert per_assistant[:4] == ("Ana Torres", 1, 1, 0)
    assert after_table(sheets["Por asistente"])[:4] == ("Total", 1, 1, 0)
    html = monday[0].message.get_body(("html",)).get_content()
    assert "Respondidas" in html

    # The same workbook on demand.
    out = d.tmp / "registro.xlsx"
    result = d.buzon("report", "daily", "--date", "2026-11-23", "--out", str(out))
    assert "1 received, 1 answered (1 on time)" in result.stdout
    assert rows(workbook(out)["Registro del día"])[0][0] == ticket["ticket"]


def test_a_breach_is_escalated_once(staffed):
    d = staffed
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), at("2026-11-24 10:00"))
    run(d, "2026-11-24 10:05")
    run(d, "2026-11-25 10:30")
    [escalation] = d.mails("escalamiento", "coordinador@osce.test")
    [ticket] = tickets(d)
    assert ticket in escalation.message.get_body(("plain",)).get_content()
    assert "Vencido" in d.folder_flags("RNP")[0]
    run(d, "2026-11-25 11:00")
    run(d, "2026-11-25 15:00")
    assert len(d.mails("escalamiento")) == 1


def test_a_sigkill_in_the_middle_of_a_sweep_sends_nothing_twice(staffed):
    d = staffed
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), at("2026-11-24 10:00"))
    run(d, "2026-11-24 10:05")
    crashed = run(d, "2026-11-25 10:30", crash_at="after_sweep_commit", check=False)
    assert crashed.returncode == -signal.SIGKILL
    assert d.mails("escalamiento") == []  # planned, not yet sent
    run(d, "2026-11-25 10:40")
    run(d, "2026-11-25 10:50")
    assert len(d.mails("escalamiento")) == 1


def test_second_level_derivation_with_the_organ_answering_late(staffed):
    d = staffed
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), at("2026-11-16 10:00"))
    run(d, "2026-11-16 10:05")
    [ticket_id] = tickets(d)
    d.move_all("RNP", "Derivar/DRNP")
    run(d, "2026-11-16 11:00")
    [forward] = d.mails("derivacion_organo", "drnp@osce.test")
    assert f"[{ticket_id}]" in forward.message["Subject"]
    assert "inscripción" in forward.message.get_body(("plain",)).get_content()
    [told] = d.mails("derivacion_ciudadano", "ventas@ferreteriasanmartin.test")
    assert told.message["In-Reply-To"]
    assert tickets(d)[ticket_id]["status"] == "derived"

    run(d, "2026-11-18 10:00")  # still within the organ's 2 working days
    assert d.mails("recordatorio_organo") == []
    run(d, "2026-11-19 09:00")  # late: chased, coordinators in copy
    [chase] = d.mails("recordatorio_organo", "drnp@osce.test")
    # The coordinators' copy is a mail of its own: only the organ holds its capability.
    assert "coordinador@osce.test" not in chase.recipients
    assert d.mails("recordatorio_organo", "coordinador@osce.test")
    run(d, "2026-11-19 15:00")  # once per working day
    assert len(d.mails("recordatorio_organo", "drnp@osce.test")) == 1
    run(d, "2026-11-20 09:00")
    assert len(d.mails("recordatorio_organo", "drnp@osce.test")) == 2

    d.deliver(reply("DRNP <drnp@osce.test>", f"RE: {forward.message['Subject']}",
                    "La inscripción se renueva así...", forward.message["Message-ID"]),
              at("2026-11-20 12:00"))
    run(d, "2026-11-20 12:05")
    [handed] = d.mails("respuesta_organo", "asistente@osce.test")
    assert ticket_id in handed.message["Subject"]
    assert len(d.folder_uids("Derivar/DRNP")) == 2  # the consulta and the organ's answer
    assert any("Respuesta_DRNP" in flags for flags in d.folder_flags("Derivar/DRNP"))
    assert tickets(d)[ticket_id]["status"] == "organ_answered"
    run(d, "2026-11-23 09:00")
    assert len(d.mails("recordatorio_organo", "drnp@osce.test")) == 2  # answered: no more chasing


def test_moved_to_atendidos_counts_as_answered_by_another_channel(staffed):
    d = staffed
    d.deliver(fixture_bytes("plain_consulta_legal.eml"), at("2026-11-24 09:00"))
    run(d, "2026-11-24 09:05")
    d.move_all("Legal", "Atendidos")
    run(d, "2026-11-24 10:00")
    [ticket] = tickets(d).values()
    assert ticket["answered_at"] == "2026-11-24T10:00:00-05:00"


def test_a_citizen_writing_after_the_answer_reopens_the_ticket(staffed):
    d = staffed
    d.deliver(fixture_bytes("plain_consulta_seace.eml"), at("2026-11-23 10:00"))
    run(d, "2026-11-23 10:05")
    d.deliver(reply(d.address("consultas"), "RE: No puedo ingresar al SEACE", "Hecho.\nAna Torres",
                    CITIZEN_MESSAGE_ID), at("2026-11-23 11:00"), folder="Sent")
    run(d, "2026-11-23 11:05")
    [ticket_id] = tickets(d)
    d.deliver(reply("Juan Pérez <juan.perez@gmail.test>", f"RE: [{ticket_id}] gracias",
                    "Sigue sin funcionar."), at("2026-11-24 09:00"))
    run(d, "2026-11-24 09:05")
    ticket = tickets(d)[ticket_id]
    assert ticket["status"] == "reopened" and ticket["answered_at"] is None
    assert ticket["deadline"] == "2026-11-25T09:00:00-05:00"


def test_a_citizen_writing_after_the_answer_can_open_a_linked_ticket(staffed):
    d = staffed
    d.config["followups"] = {"after_answer": "new_ticket"}
    d.write_config()
    d.deliver(fixture_bytes("plain_consulta_seace.eml"), at("2026-11-23 10:00"))
    run(d, "2026-11-23 10:05")
    d.deliver(reply(d.address("consultas"), "RE: No puedo ingresar al SEACE", "Hecho.",
                    CITIZEN_MESSAGE_ID), at("2026-11-23 11:00"), folder="Sent")
    run(d, "2026-11-23 11:05")
    [first] = tickets(d)
    d.deliver(reply("Juan Pérez <juan.perez@gmail.test>", f"RE: [{first}] otra duda",
                    "Y ahora otra consulta."), at("2026-11-24 09:00"))
    run(d, "2026-11-24 09:05")
    assert len(tickets(d)) == 2


def test_ticket_prints_the_whole_trace(staffed):
    d = staffed
    d.deliver(fixture_bytes("plain_consulta_seace.eml"), at("2026-11-23 10:00"))
    run(d, "2026-11-23 10:05")
    d.deliver(reply(d.address("consultas"), "RE: No puedo ingresar al SEACE", "Hecho.\nAna Torres",
                    CITIZEN_MESSAGE_ID), at("2026-11-23 11:00"), folder="Sent")
    run(d, "2026-11-23 11:05")
    [ticket_id] = tickets(d)
    out = d.buzon("ticket", ticket_id).stdout
    for step in ("received", "acknowledgement planned", "answered"):
        assert step in out
    assert "asistente@osce.test" in out
    assert d.buzon("ticket", "C-2026-999999", check=False).returncode == 1


def test_a_derived_consulta_is_due_on_the_organs_term_not_in_24_hours(staffed):
    d = staffed
    d.config["organs"]["DRNP"] = {"address": "drnp@osce.test", "deadline_working_days": 5}
    d.write_config()
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), at("2026-11-16 10:00"))
    run(d, "2026-11-16 10:05")
    [ticket_id] = tickets(d)
    assert tickets(d)[ticket_id]["deadline"] == "2026-11-17T10:00:00-05:00"
    d.move_all("RNP", "Derivar/DRNP")
    run(d, "2026-11-16 11:00")
    assert tickets(d)[ticket_id]["deadline"] == "2026-11-23T11:00:00-05:00"  # 5 working days
    run(d, "2026-11-17 11:00")  # 25 hours after it arrived
    assert d.mails("escalamiento") == []
    assert not any("Vencido" in flags for flags in d.folder_flags("Derivar/DRNP"))
    assert "deadline extended" in d.buzon("ticket", ticket_id).stdout
    run(d, "2026-11-23 11:30")  # past the organ's term: now it is late
    assert len(d.mails("escalamiento")) == 1
