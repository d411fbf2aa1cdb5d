"""Incidents through every path on the real Dovecot and SMTP server (manual 9.3): opened
by a move to Incidencias/<criticality>, answered by the second level, escalated to IT and
validated, observed, rerouted, turned into a requerimiento funcional; complexity by reply
command and by keyword."""

from __future__ import annotations

import json
from email.message import EmailMessage

import pytest
from conftest import at, fixture_bytes, run

from daemon.flows.incidents import read_organ_reply

# The organs' protocol to the citizen, with automatic relay (an agency's choice): every
# organ answer reaches the citizen as written, the strictest case. The manual's default
# is tests/flows/test_relay.py.
pytestmark = pytest.mark.usefixtures("automatic_relay")


CITIZEN = "juan.perez@gmail.test"
SUPPLIER = "ventas@ferreteriasanmartin.test"




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


@pytest.mark.parametrize(("body", "expected"), [
    ("Escalar\n\nRevisado el log.", ("escalate", "", "", "Revisado el log.")),
    ("ESCALAR: falla en la pasarela", ("escalate", "", "", "falla en la pasarela")),
    ("Validado.", ("validated", "", "", "")),
    ("VALIDADO\nTexto corregido.", ("validated", "", "", "Texto corregido.")),
    ("Observado: falta el plazo", ("observed", "", "", "falta el plazo")),
    ("Derivar drnp", ("reroute", "DRNP", "", "")),
    ("Requerimiento funcional\nNuevo reporte.", ("functional", "", "", "Nuevo reporte.")),
    ("complejidad: muy alta\nEscalar", ("escalate", "", "muy alto", "")),
    ("Se corrigió.\nCOMPLEJIDAD = Indefinida", ("", "", "indefinida", "Se corrigió.")),
    ("Escalaremos si persiste.", ("", "", "", "Escalaremos si persiste.")),
    ("Listo.\n\nEl lun., 16 nov. 2026, Mesa escribió:\n> ESCALAR: la enviamos",
     ("", "", "", "Listo.")),
    ("Listo.\r\n\r\nDe: Mesa de consultas\r\nEnviado: lunes\r\nVALIDADO",
     ("", "", "", "Listo.")),
])
def test_an_organ_reply_is_read_from_its_own_lines(body, expected):
    reply = read_organ_reply(body)
    assert (reply.command, reply.argument, reply.complexity, reply.text) == expected


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
    assert "5 días hábiles" in body(told) and "23 de noviembre" in body(told)
    assert told.message["In-Reply-To"] == "<plain-consulta-seace.2026@mail.gmail.test>"
    [forward] = d.mails("incidencia_organo", "dseace@osce.test")
    assert "No puedo ingresar" in body(forward)
    # Staff see the I- number on a card beside the consulta's mail (the consulta's own
    # card came along with the conversation the assistant dragged).
    subjects = d.card_subjects("Incidencias/Alta")
    assert sorted(s.split(":")[0] for s in subjects) == [f"Ficha {consulta['ticket']}",
                                                          f"Ficha {incident_id}"]

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
    # One survey, about the incident (the consulta it came from gets none).
    [survey] = d.mails("encuesta", CITIZEN)
    assert incident_id in survey.message["Subject"]
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
    # The assistants' copy (manual 9.3.2) is a mail of its own: only IT holds IT's proof.
    assert escalated.message["Cc"] is None
    assert d.mails("incidencia_escalada", "asistente@osce.test")
    assert "pasarela" in body(escalated)
    assert tickets(d)[incident_id]["level"] == 3
    assert d.mails("incidencia_respuesta") == []
    # IT's 5 working days and a day to validate run past the Media term: the citizen is
    # told the new date (manual 9.3.7.1).
    assert tickets(d)[incident_id]["deadline"] == at("2026-11-24 11:00").isoformat()
    [extended] = d.mails("incidencia_ampliacion")
    assert "24 de noviembre de 2026" in body(extended)

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


def xlsx_part(mail):
    return next(part.get_content() for part in mail.message.iter_attachments()
                if part.get_filename().endswith(".xlsx"))


def test_the_daily_incident_report_and_the_monthly_indicators_mail(deployment):
    from workbook_tables import after_table, by_first_column, rows, workbook

    d = deployment
    open_incident(d, "plain_consulta_seace.eml", "SEACE", "Alta", "2026-11-16")
    [to_dseace] = d.mails("incidencia_organo", "dseace@osce.test")
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), at("2026-11-17 09:00"))
    d.deliver(reply(d, to_dseace, "dseace@osce.test", "Ya puede ingresar."),
              at("2026-11-17 15:00"))
    run(d, "2026-11-17 15:05")
    d.move_all("RNP", "Incidencias/Media")
    run(d, "2026-11-17 15:30")
    [to_drnp] = d.mails("incidencia_organo", "drnp@osce.test")
    d.deliver(reply(d, to_drnp, "drnp@osce.test", "ESCALAR"), at("2026-11-17 16:00"))
    run(d, "2026-11-17 17:30")  # the incident report goes at 17:15

    reports = d.mails("reporte_incidencias", "coordinador@osce.test")
    assert len(reports) == 2  # Monday's (made up) and Tuesday's
    tuesday = next(m for m in reports if "17/11/2026" in m.message["Subject"])
    text = body(tuesday)
    assert "Ingresadas: 1" in text and "Atendidas por un órgano: 2" in text
    assert "Solucionadas (respuesta enviada al ciudadano): 1" in text
    assert "Abiertas al cierre del día: 1" in text
    sheets = workbook(xlsx_part(tuesday))
    organs = by_first_column(sheets["Por órgano"])
    assert organs == {"DSEACE": (0, 1, 1), "DRNP": (1, 1, 0)}
    summary = by_first_column(sheets["Resumen del día"])
    assert summary["Criticidad Alta"] == (0, 1, 1) and summary["Criticidad Media"] == (1, 1, 0)
    assert after_table(sheets["Resumen del día"]) == ("Total", 1, 2, 1)

    [to_oti] = d.mails("incidencia_escalada", "oti@osce.test")
    d.deliver(reply(d, to_oti, "oti@osce.test", "Pago conciliado."), at("2026-11-18 09:00"))
    run(d, "2026-11-18 09:05")
    [validation] = d.mails("incidencia_validacion", "drnp@osce.test")
    d.deliver(reply(d, validation, "drnp@osce.test", "VALIDADO"), at("2026-11-18 10:00"))
    d.deliver(fixture_bytes("plain_consulta_legal.eml"), at("2026-11-18 10:00"))
    run(d, "2026-11-18 10:05")
    d.move_all("Legal", "Incidencias/Baja")
    run(d, "2026-11-18 11:00")
    assert {t["status"] for t in tickets(d).values() if t["kind"] == "incidencia"} == {
        "resolved", "derived"}

    run(d, "2026-11-30 18:00")
    assert d.mails("indicadores_mensuales") == []  # not before the first working day
    run(d, "2026-12-01 08:30")
    run(d, "2026-12-01 09:30")
    [monthly] = d.mails("indicadores_mensuales", "coordinador@osce.test")
    assert "noviembre de 2026" in monthly.message["Subject"]
    html = monthly.message.get_body(("html",))
    pictures = [part for part in monthly.message.walk() if part.get_content_type() == "image/png"]
    assert {p["Content-ID"] for p in pictures} >= {"<categorias.png>", "<niveles.png>",
                                                  "<incidencias.png>"}
    assert all(p.get_content()[:8] == b"\x89PNG\r\n\x1a\n" for p in pictures)
    assert 'src="cid:incidencias.png"' in html.get_content()
    # Each picture's alt text says what it shows, with its figures.
    assert ('alt="Gráfico de barras de las 3 incidencias reportadas en noviembre de 2026, '
            'por resultado. Resueltas en el segundo nivel: 1; resueltas en el tercer nivel: '
            '1; requerimientos funcionales: 0; en proceso: 1."') in html.get_content()
    assert 'alt="categorias.png"' not in html.get_content()
    month = workbook(xlsx_part(monthly))
    figures = by_first_column(month["Incidencias"])
    assert figures["Incidencias del mes"][0] == 3
    assert figures["Resueltas en el segundo nivel"] == (1, 33.3)
    assert figures["Resueltas en el tercer nivel"] == (1, 33.3)
    assert figures["En proceso"] == (1, 33.3)
    # DSEACE solved what it was sent; DRNP escalated its own to OTI, the normal path:
    # both were routed right (issue 15 point 7).
    assert figures["Derivadas correctamente (%)"][0] == 100.0
    assert month["Incidencias"]._charts
    assert len(rows(month["Detalle de incidencias"])) == 3
