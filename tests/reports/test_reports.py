"""The monthly indicators workbook: figures checked against tickets built by the test."""

from __future__ import annotations

from email.message import EmailMessage

from conftest import at, fixture_bytes, run
from workbook_tables import by_first_column, rows, workbook


def sent_reply(d, in_reply_to: str) -> bytes:
    message = EmailMessage()
    message["From"] = d.address("consultas")
    message["To"] = "ciudadano@correo.test"
    message["Subject"] = "RE: consulta"
    message["In-Reply-To"] = in_reply_to
    message.set_content("Respuesta.\nAna Torres")
    return bytes(message)


def test_monthly_indicators_match_the_tickets(deployment):
    d = deployment
    d.deliver(fixture_bytes("plain_consulta_seace.eml"), at("2026-10-30 10:00"))  # October
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), at("2026-11-02 10:00"))
    d.deliver(fixture_bytes("plain_consulta_legal.eml"), at("2026-11-03 10:00"))
    d.deliver(fixture_bytes("all_caps_no_accents_phone.eml"), at("2026-11-04 10:00"))
    run(d, "2026-11-04 10:05")
    # The RNP one answered next morning, on time: 21.5 hours later, 6.5 office hours.
    rnp_message_id = "<plain-consulta-rnp.2026@mail.ferreteriasanmartin.test>"
    d.deliver(sent_reply(d, rnp_message_id), at("2026-11-03 07:30"), folder="Sent")
    # The Legal one goes to the second level; the SEACE one was misfiled by the rule.
    with d.imap() as assistant:
        assistant.select_folder("Legal")
        assistant.move(assistant.search(), "Derivar/DTN")
        assistant.select_folder("SEACE")
        uids = [u for u, data in assistant.fetch(assistant.search(), ["INTERNALDATE"]).items()
                if data[b"INTERNALDATE"].month == 11]
        assistant.move(uids, "Legal")
    run(d, "2026-11-05 09:00")
    out = d.tmp / "mensual.xlsx"
    result = d.buzon("report", "monthly", "--month", "2026-11", "--out", str(out))
    assert "3 received, 1 resolved, 2 in process" in result.stdout
    sheets = workbook(out)
    values = dict(rows(sheets["Indicadores"]))
    assert values["Consultas recibidas"] == 3
    assert values["Consultas resueltas"] == 1
    assert values["Consultas en proceso"] == 2
    assert values["Resueltas a tiempo"] == 1
    assert values["Tiempo promedio de respuesta (horas calendario)"] == 21.5
    assert values["Tiempo promedio de respuesta (horas hábiles)"] == 6.5
    assert values["Clasificadas correctamente por buzon (%)"] == round(100 * 2 / 3, 1)
    categories = dict(rows(sheets["Categorías"]))
    assert categories == {"RNP": 1, "Legal": 2}
    levels = by_first_column(sheets["Por nivel"])
    assert levels["Primer nivel"] == (2, 1, 50.0)
    assert levels["Segundo nivel"] == (1, 0, 0.0)
    assert sheets["Categorías"]._charts and sheets["Por nivel"]._charts


def survey_answer(survey, body: str, sender: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = survey.message["From"]
    message["Subject"] = f"RE: {survey.message['Subject']}"
    message["In-Reply-To"] = survey.message["Message-ID"]
    message.set_content(body)
    return bytes(message)


def test_one_survey_per_answer_its_reply_recorded_and_opt_out_respected(deployment):
    d = deployment
    citizen = "Juan Pérez <juan.perez@gmail.test>"
    d.deliver(fixture_bytes("plain_consulta_seace.eml"), at("2026-11-23 10:00"))
    run(d, "2026-11-23 10:05")
    d.deliver(sent_reply(d, "<plain-consulta-seace.2026@mail.gmail.test>"),
              at("2026-11-23 11:00"), folder="Sent")
    run(d, "2026-11-23 11:05")
    run(d, "2026-11-23 11:10")
    [survey] = d.mails("encuesta", "juan.perez@gmail.test")
    assert "1 al 5" in survey.message.get_body(("plain",)).get_content()
    d.deliver(survey_answer(survey, "5 Muy buena atención, gracias", citizen),
              at("2026-11-23 12:00"))
    run(d, "2026-11-23 12:05")
    out = d.tmp / "mensual.xlsx"
    d.buzon("report", "monthly", "--month", "2026-11", "--out", str(out))
    assert rows(workbook(out)["Satisfacción"]) == [("SEACE", 1, 5.0)]
    [ticket_id] = [line.split()[0] for line in d.buzon("tickets").stdout.splitlines()]
    assert "survey answered: score 5" in d.buzon("ticket", ticket_id).stdout

    # The citizen opts out; their next answered consulta gets no survey.
    d.deliver(survey_answer(survey, "No más encuestas, por favor", citizen),
              at("2026-11-23 12:10"))
    run(d, "2026-11-23 12:15")
    d.deliver(fixture_bytes("plain_consulta_seace.eml").replace(
        b"plain-consulta-seace.2026@", b"segunda-consulta.2026@"), at("2026-11-24 09:00"))
    run(d, "2026-11-24 09:05")
    d.deliver(sent_reply(d, "<segunda-consulta.2026@mail.gmail.test>"), at("2026-11-24 10:00"),
              folder="Sent")
    run(d, "2026-11-24 10:05")
    run(d, "2026-11-24 10:10")
    assert len(d.mails("encuesta")) == 1
    assert sum(1 for line in d.buzon("tickets", "--json").stdout.splitlines()
               if '"answered"' in line) == 2
