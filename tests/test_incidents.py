"""Incidents through every path on the real Dovecot and SMTP server (manual 9.3): opened
by a move to Incidencias/<criticality>, answered by the second level, escalated to IT and
validated, observed, rerouted, turned into a requerimiento funcional; complexity by reply
command and by keyword."""

from __future__ import annotations

import json
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from conftest import fixture_bytes

LIMA = ZoneInfo("America/Lima")
CITIZEN = "juan.perez@gmail.test"
SUPPLIER = "ventas@ferreteriasanmartin.test"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LIMA)


def run(d, now: str):
    d.buzon("run", "--once", "--now", at(now).isoformat())


def tickets(d) -> dict[str, dict]:
    rows = [json.loads(line) for line in d.buzon("tickets", "--json").stdout.splitlines()]
    return {row["ticket"]: row for row in rows}


def body(mail) -> str:
    return mail.message.get_body(("plain",)).get_content()


def reply(d, to_mail, sender: str, text: str) -> bytes:
    """What an organ sends back from its own mail client: a reply quoting buzon's mail."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = d.address("consultas")
    message["Subject"] = f"RE: {to_mail.message['Subject']}"
    message["In-Reply-To"] = to_mail.message["Message-ID"]
    message["References"] = to_mail.message["Message-ID"]
    quoted = "\n".join("> " + line for line in body(to_mail).splitlines())
    message.set_content(f"{text}\n\nEl lun., 16 nov. 2026, Mesa de consultas escribió:\n"
                        f"{quoted}\n")
    return bytes(message)


def open_incident(d, fixture: str, category: str, criticality: str, day: str) -> str:
    d.deliver(fixture_bytes(fixture), at(f"{day} 09:00"))
    run(d, f"{day} 09:05")
    d.move_all(category, f"Incidencias/{criticality}")
    run(d, f"{day} 10:00")
    [incident] = [t for t in tickets(d).values() if t["kind"] == "incidencia"]
    return incident["ticket"]


def test_an_incident_answered_by_the_second_level(deployment):
    d = deployment
    incident_id = open_incident(d, "plain_consulta_seace.eml", "SEACE", "Alta", "2026-11-16")
    by_id = tickets(d)
    incident = by_id[incident_id]
    consulta = by_id[incident["linked_ticket"]]
    assert incident_id.startswith("I-2026-")
    assert consulta["status"] == "incident" and consulta["incident"] == incident_id
    assert (incident["criticality"], incident["organ"], incident["level"]) == ("Alta", "DSEACE", 2)
    # Alta: 5 working days (manual 9.3.4).
    assert incident["deadline"] == at("2026-11-23 10:00").isoformat()
    [told] = d.mails("incidencia_ciudadano", CITIZEN)
    assert incident_id in told.message["Subject"]
    assert "5 día(s) hábil(es)" in body(told) and "23 de noviembre" in body(told)
    assert told.message["In-Reply-To"] == "<plain-consulta-seace.2026@mail.gmail.test>"
    [forward] = d.mails("incidencia_organo", "dseace@osce.test")
    assert "No puedo ingresar" in body(forward)
    flags = d.folder_flags("Incidencias/Alta")
    assert [incident_id in f and consulta["ticket"] in f for f in flags] == [True]

    d.deliver(reply(d, forward, "DSEACE <dseace@osce.test>",
                    "Complejidad: medio\nSe restableció su usuario; ya puede ingresar."),
              at("2026-11-17 15:00"))
    run(d, "2026-11-17 15:05")
    [answer] = d.mails("incidencia_respuesta", CITIZEN)
    assert "Se restableció su usuario" in body(answer)
    assert "COMPLEJIDAD" not in body(answer).upper() and "escribió" not in body(answer)
    incident = tickets(d)[incident_id]
    assert (incident["status"], incident["resolved_level"], incident["solved_by"],
            incident["complexity"]) == ("resolved", 2, "DSEACE", "medio")
    assert d.mails("incidencia_escalada") == []
    trace = d.buzon("ticket", incident_id).stdout
    for step in ("opened", "sent to the second level", "complexity", "resolved"):
        assert step in trace
    assert "DSEACE" in trace


def test_an_incident_escalated_to_it_observed_then_validated(deployment):
    d = deployment
    incident_id = open_incident(d, "plain_consulta_rnp.eml", "RNP", "Media", "2026-11-16")
    assert tickets(d)[incident_id]["deadline"] == at("2026-11-20 10:00").isoformat()
    [forward] = d.mails("incidencia_organo", "drnp@osce.test")
    d.deliver(reply(d, forward, "drnp@osce.test", "ESCALAR\nEl error está en la pasarela."),
              at("2026-11-16 11:00"))
    run(d, "2026-11-16 11:05")
    [escalated] = d.mails("incidencia_escalada", "oti@osce.test")
    assert "asistente@osce.test" in escalated.message["Cc"]
    assert "pasarela" in body(escalated)
    assert tickets(d)[incident_id]["level"] == 3
    assert d.mails("incidencia_respuesta") == []

    d.deliver(reply(d, escalated, "oti@osce.test", "Corregimos la pasarela de pagos."),
              at("2026-11-18 10:00"))
    run(d, "2026-11-18 10:05")
    [validation] = d.mails("incidencia_validacion", "drnp@osce.test")
    assert "Corregimos la pasarela" in body(validation)
    assert d.mails("incidencia_respuesta") == []  # not before the second level validates

    d.deliver(reply(d, validation, "drnp@osce.test", "OBSERVADO\nFalta indicar el plazo."),
              at("2026-11-18 12:00"))
    run(d, "2026-11-18 12:05")
    [observed] = d.mails("incidencia_observada", "oti@osce.test")
    assert "Falta indicar el plazo" in body(observed)

    d.deliver(reply(d, observed, "oti@osce.test",
                    "Corregimos la pasarela; el pago se refleja en 24 horas."),
              at("2026-11-19 09:00"))
    run(d, "2026-11-19 09:05")
    second = [m for m in d.mails("incidencia_validacion", "drnp@osce.test")
              if m.message["Message-ID"] != validation.message["Message-ID"]]
    assert len(second) == 1
    d.deliver(reply(d, second[0], "drnp@osce.test", "Validado"), at("2026-11-19 11:00"))
    run(d, "2026-11-19 11:05")
    [answer] = d.mails("incidencia_respuesta", SUPPLIER)
    assert "el pago se refleja en 24 horas" in body(answer)
    incident = tickets(d)[incident_id]
    assert (incident["status"], incident["resolved_level"], incident["solved_by"]) == (
        "resolved", 3, "OTI")
    trace = d.buzon("ticket", incident_id).stdout
    for step in ("escalated to the third level", "third level answered", "answer observed",
                 "validated by DRNP"):
        assert step in trace


def test_a_rerouted_incident_that_becomes_a_functional_requirement(deployment):
    d = deployment
    incident_id = open_incident(d, "plain_consulta_seace.eml", "SEACE", "Baja", "2026-11-16")
    # Baja: 2 working days.
    assert tickets(d)[incident_id]["deadline"] == at("2026-11-18 10:00").isoformat()
    # The assistant tags the mail in Thunderbird: complexity by keyword.
    with d.imap() as assistant:
        assistant.select_folder("Incidencias/Baja")
        assistant.add_flags(assistant.search(), [b"Complejidad_Muy_alto"])
    [forward] = d.mails("incidencia_organo", "dseace@osce.test")
    d.deliver(reply(d, forward, "dseace@osce.test", "DERIVAR DTN"), at("2026-11-16 11:00"))
    run(d, "2026-11-16 11:05")
    incident = tickets(d)[incident_id]
    assert (incident["organ"], incident["complexity"]) == ("DTN", "muy alto")
    [to_dtn] = d.mails("incidencia_organo", "dtn@osce.test")
    d.deliver(reply(d, to_dtn, "dtn@osce.test",
                    "REQUERIMIENTO FUNCIONAL\nSe necesita un nuevo reporte en el sistema."),
              at("2026-11-17 09:00"))
    run(d, "2026-11-17 09:05")
    [told] = d.mails("incidencia_requerimiento", CITIZEN)
    assert "requerimiento funcional" in body(told)
    assert "nuevo reporte" in body(told)
    incident = tickets(d)[incident_id]
    assert incident["status"] == "functional_requirement"
    assert d.mails("incidencia_respuesta") == []
    # A resolved incident, not its consulta, gets the survey; this one is not resolved.
    run(d, "2026-11-18 09:00")
    assert d.mails("encuesta") == []
