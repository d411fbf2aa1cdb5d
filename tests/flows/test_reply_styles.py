"""An organ's answer as every client writes it: when buzon passes it on, the citizen gets
the organ's own new text, never the internal mail it quotes nor the signature."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import at, fixture_bytes, run
from test_trust import LONG_LINES, body, client_reply, tickets

# The organs' protocol to the citizen, with automatic relay (an agency's choice): every
# organ answer reaches the citizen as written, the strictest case. The manual's default
# is tests/flows/test_relay.py.
pytestmark = pytest.mark.usefixtures("automatic_relay")


REPLIES = Path(__file__).resolve().parent.parent / "data" / "replies"
EXPECTED = json.loads((REPLIES / "expected.json").read_text(encoding="utf-8"))
ORGAN_ANSWERS = sorted(name for name, case in EXPECTED.items() if case["kind"] == "organ_answer")


def consulta(number: int) -> bytes:
    message = EmailMessage(policy=LONG_LINES)
    message["From"] = f"Proveedor {number} <proveedor{number}@empresa.test>"
    message["To"] = "consultas@osce.test"
    message["Subject"] = f"Error en mi constancia RNP ({number})"
    message["Message-ID"] = f"<consulta-{number}@empresa.test>"
    message.set_content(f"Mi constancia del RNP número {number} sale con datos de otra empresa.")
    return message.as_bytes()


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_every_clients_organ_answer_reaches_the_citizen_without_quote_or_signature(deployment):
    d = deployment
    for number in range(len(ORGAN_ANSWERS)):
        d.deliver(consulta(number), at("2026-11-16 09:00"))
    run(d, "2026-11-16 09:05")
    d.move_all("RNP", "Incidencias/Media")
    run(d, "2026-11-16 10:00")
    requests = {m.message["Subject"]: m for m in d.mails("incidencia_organo", "drnp@osce.test")}
    incidents = {t["ticket"]: t for t in tickets(d).values() if t["kind"] == "incidencia"}
    assert len(incidents) == len(ORGAN_ANSWERS)
    fixture_of = {}
    for (ticket_id, incident), fixture in zip(sorted(incidents.items()), ORGAN_ANSWERS,
                                              strict=True):
        request = next(m for s, m in requests.items() if ticket_id in s)
        d.deliver(client_reply(fixture, request, "DRNP <drnp@osce.test>"),
                  at("2026-11-16 11:00"))
        fixture_of[incident["ticket"]] = fixture
    run(d, "2026-11-16 11:05")
    problems = []
    states = tickets(d)
    for ticket_id, fixture in fixture_of.items():
        answers = [m for m in d.mails("incidencia_respuesta") if ticket_id in m.message["Subject"]]
        if len(answers) != 1:
            problems.append(f"{fixture}: {len(answers)} answers ({states[ticket_id]['status']})")
            continue
        sent = body(answers[0])
        case = EXPECTED[fixture]
        leaked = [s for s in case["must_not_contain"] if s in sent]
        lost = [line for line in lines(case["new_text"]) if line not in sent]
        if leaked or lost:
            problems.append(f"{fixture}: leaked {leaked[:3]}, lost {lost[:3]}")
    assert problems == []


def test_an_outlook_suggestion_result_reaches_the_citizen_without_the_derivation(deployment):
    d = deployment
    d.deliver(fixture_bytes("sugerencia_simple.eml"), at("2026-11-16 10:00"),
              mailbox="sugerencias")
    run(d, "2026-11-16 10:10")
    d.move_all("INBOX", "Derivar/DSEACE", mailbox="sugerencias")
    run(d, "2026-11-16 11:00")
    [request] = d.mails("derivacion_sugerencia", "dseace@osce.test")
    case = EXPECTED["outlook_es_organ_answer.eml"]
    raw = client_reply("outlook_es_organ_answer.eml", request, "DSEACE <dseace@osce.test>")
    # The organ's decision on the first line, above what it typed in Outlook.
    raw = raw.replace(case["new_text"].split("\n")[0].encode(),
                      b"IMPLEMENTADA\n" + case["new_text"].split("\n")[0].encode(), 1)
    d.deliver(raw, at("2026-11-18 09:00"), mailbox="sugerencias")
    run(d, "2026-11-18 09:05")
    [result] = d.mails("resultado_sugerencia", "martin.alarcon@gmail.test")
    sent = body(result)
    assert lines(case["new_text"])[0] in sent
    assert [s for s in case["must_not_contain"] if s in sent] == []


def test_the_survey_threads_only_on_the_citizens_own_mail(deployment):
    d = deployment
    d.deliver(consulta(1), at("2026-11-16 09:00"))
    run(d, "2026-11-16 09:05")
    d.move_all("RNP", "Derivar/DRNP")
    run(d, "2026-11-16 10:00")
    [request] = d.mails("derivacion_organo", "drnp@osce.test")
    d.deliver(client_reply("outlook_es_organ_answer.eml", request, "drnp@osce.test",
                           message_id="<organ-answer@drnp.osce.test>"), at("2026-11-16 11:00"))
    run(d, "2026-11-16 11:05")
    assert d.mails("respuesta_organo", "asistente@osce.test")
    d.move_all("Derivar/DRNP", "Atendidos")
    run(d, "2026-11-16 12:00")
    [survey] = d.mails("encuesta", "proveedor1@empresa.test")
    assert survey.message["References"].split() == ["<consulta-1@empresa.test>"]
    assert survey.message["In-Reply-To"] == "<consulta-1@empresa.test>"
