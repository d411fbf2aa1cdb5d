"""Suggested drafts carry no other citizen's data (issue 15, point 9), on the real Dovecot:
a past answer full of its citizen's data and its writer's signature becomes a draft for
another citizen with none of it; a reply that leaves with the draft's note still in it is
told to the assistant; a legal answer that leaves without approval is told to the
supervisors (point 7), and an approved one is not."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from conftest import at, fixture_bytes, run
from test_review import draft, request_review, supervisor_reply
from test_suggested_answers import consulta, drafts

from daemon.decide.scrub import NOTE_END, NOTE_START

ROSA = "Rosa Quispe Huamán <rosa.quispe@correo.test>"
ROSAS_ANSWER = """Estimada señora Quispe:

Buenos días. Puede dejar su bicicleta en el estacionamiento del sótano 1 de la sede de
San Isidro, junto a la puerta de la avenida. Para registrarla, indique en la recepción
su DNI 45678912; si tiene alguna duda, llame al 987 654 321 o escriba desde
rosa.quispe@correo.test a la mesa de ayuda.

Atentamente,

Ana Torres
Asistente de la Unidad de Atención a la Usuaria y al Usuario
OECE
"""
ROSAS_DATA = ("Rosa", "Quispe", "señora", "Buenos días", "45678912", "987 654 321",
              "rosa.quispe", "Ana Torres", "Asistente de la Unidad", "OECE\n")


@pytest.fixture
def signed(deployment):
    """Ana Torres signs her replies: they are hers, and her name is no source's."""
    deployment.config["people"]["signatures"] = {"asistente@osce.test": "Ana Torres"}
    deployment.write_config()
    return deployment


def sent(d, to: str, in_reply_to: str, subject: str, text: str = "", html: str = "",
         number: int = 1) -> None:
    """A reply the assistant sent from the mailbox: its copy lands in Sent."""
    message = EmailMessage()
    message["From"] = d.address("consultas")
    message["To"] = to
    message["Subject"] = subject
    message["In-Reply-To"] = in_reply_to
    message["Message-ID"] = f"<enviada-{number}.{in_reply_to.strip('<>')}>"
    if html:
        message.set_content(html, subtype="html")
    else:
        message.set_content(text)
    d.deliver(bytes(message), at("2026-11-24 11:00"), folder="Sent")


def rosa_answered_then_luis_asks(d) -> str:
    """Rosa's consulta, answered by Ana with Rosa's data; Luis's like it: his draft."""
    d.deliver(consulta(1, "Quisiera saber dónde puedo estacionar mi bicicleta en la sede "
                          "de San Isidro", ROSA), at("2026-11-24 10:00"))
    run(d, "2026-11-24 10:05")
    assert drafts(d) == []
    sent(d, "rosa.quispe@correo.test", "<sugerida-1@correo.test>",
         "RE: [C-2026-000001] Consulta", ROSAS_ANSWER)
    d.deliver(consulta(2, "¿Hay estacionamiento para bicicletas en la sede del OECE en San "
                          "Isidro?", "Luis Rojas <luis@correo.test>"), at("2026-11-24 12:00"))
    run(d, "2026-11-24 12:05")
    [(_flags, suggested)] = drafts(d)
    return suggested.get_body(("plain",)).get_content()


def test_a_draft_from_a_past_answer_carries_none_of_its_citizens_data(signed):
    d = signed
    text = rosa_answered_then_luis_asks(d)
    assert "la respuesta enviada en el ticket C-2026-000001" in text
    assert [leak for leak in ROSAS_DATA if leak in text] == []
    note, reply = text.split(NOTE_END + "\n", 1)
    assert note.startswith(NOTE_START)
    assert "complete o borre [correo], [DNI], [teléfono]." in note
    # One greeting, to Luis; Rosa's answer without hers; buzon's closing, not Ana's.
    assert reply.startswith("\nEstimada/o Luis Rojas:\n\nPuede dejar su bicicleta en el "
                            "estacionamiento del sótano 1 de la sede de\nSan Isidro")
    assert "su DNI [DNI]; si tiene alguna duda, llame al [teléfono] o escriba desde\n" \
        "[correo] a la mesa de ayuda.\n\nAtentamente,\nUnidad de Atención" in reply
    assert reply.count("Estimad") == 1 and reply.count("Atentamente") == 1
    # Ana's reply to Rosa had no note: nobody was told anything.
    assert d.mails("nota_en_respuesta") == []


@pytest.mark.parametrize("style", ["plain", "quoted", "html"])
def test_a_reply_sent_with_the_note_still_in_is_told_to_its_assistant(signed, style):
    d = signed
    text = rosa_answered_then_luis_asks(d)
    body = text + "\nAna Torres"
    if style == "quoted":  # the note pasted as a quote, re-cased by the mail client
        note, reply = text.split(NOTE_END, 1)
        body = "\n".join("> " + line.lower() for line in (note + NOTE_END).splitlines()) \
            + reply + "\nAna Torres"
    html = "".join(f"<p>{line}</p>" for line in body.splitlines()) if style == "html" else ""
    sent(d, "luis@correo.test", "<sugerida-2@correo.test>", "RE: [C-2026-000002] Consulta",
         body if not html else "", html)
    run(d, "2026-11-24 13:05")
    [alert] = d.mails("nota_en_respuesta")
    assert alert.recipients == ["asistente@osce.test"]
    assert "[C-2026-000002]" in alert.message["Subject"]
    said = alert.message.get_body(("plain",)).get_content()
    assert "luis@correo.test" in said and NOTE_START in said and NOTE_END in said
    assert "note sent to the citizen" in d.buzon("ticket", "C-2026-000002").stdout
    # A second reply with the note, on the same ticket: no second alert.
    sent(d, "luis@correo.test", "<sugerida-2@correo.test>", "RE: [C-2026-000002] Consulta",
         body if not html else "", html, number=2)
    run(d, "2026-11-24 14:05")
    assert len(d.mails("nota_en_respuesta")) == 1
    # What Luis was sent, note and all, teaches without the note and without Luis.
    question = d.tmp / "pregunta.eml"
    question.write_bytes(consulta(9, "¿Dónde estaciono mi bicicleta en la sede de San Isidro?",
                                  "marta@correo.test"))
    suggestion = d.buzon("suggest", str(question)).stdout
    assert "ticket:C-2026-000002" in suggestion
    assert suggestion.count("NOTA PARA") == 1 and "Luis" not in suggestion


@pytest.fixture
def legal(deployment):
    deployment.deliver(fixture_bytes("plain_consulta_legal.eml"), at("2026-11-26 09:00"))
    run(deployment, "2026-11-26 09:05")
    return deployment


ANSWER = "Estimada Rosa:\n\nLa penalidad por mora se calcula por cada día de atraso.\n"


def test_a_legal_answer_sent_without_approval_is_told_to_the_supervisors(legal):
    d = legal
    d.deliver(draft(d, ANSWER), at("2026-11-26 10:00"), folder="Sent")
    run(d, "2026-11-26 10:05")
    [alert] = d.mails("legal_sin_aprobacion")
    assert alert.recipients == ["supervisor@osce.test"]
    said = alert.message.get_body(("plain",)).get_content()
    assert "C-2026-000001" in alert.message["Subject"] and "logistica@muni-ica.gob.test" in said
    assert '"Legal/Revisión"' in said
    assert "legal answer sent without approval" in d.buzon("ticket", "C-2026-000001").stdout
    d.deliver(draft(d, ANSWER + "Una precisión más."), at("2026-11-26 11:00"), folder="Sent")
    run(d, "2026-11-26 11:05")
    assert len(d.mails("legal_sin_aprobacion")) == 1


def test_an_approved_legal_answer_is_not_told(legal):
    d = legal
    request = request_review(d, ANSWER)
    d.deliver(supervisor_reply(request, "APROBADO"), at("2026-11-26 10:30"))
    run(d, "2026-11-26 10:35")
    assert d.mails("answer", "logistica@muni-ica.gob.test")  # it left, through Sent
    run(d, "2026-11-26 11:00")  # the copy in Sent is read
    assert d.mails("legal_sin_aprobacion") == []
    assert "without approval" not in d.buzon("ticket", "C-2026-000001").stdout
