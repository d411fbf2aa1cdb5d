"""reply_text, the one quote-and-signature stripper, on one fixture per client style
(tests/data/replies; its README.md says what each fixture shows), and on the shapes the
commands by mail rely on.

Without forwarded mail the result must equal the fixture's new_text (after the same
normalisation). With it, a forward's result holds every line of new_text and the
forwarded mail's key phrase. Never, in either way, a must_not_contain string."""

from __future__ import annotations

import email
import json
import re
from dataclasses import dataclass
from email import policy
from pathlib import Path

import pytest

from classifiers.text import judged_text, new_body_text, reply_text

REPLIES = Path(__file__).parent / "data" / "replies"
EXPECTED = json.loads((REPLIES / "expected.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Reply:
    body: str  # the decoded text/plain part
    sender_name: str  # the From display name
    subject: str


def read_reply(name: str) -> Reply:
    message = email.message_from_bytes((REPLIES / name).read_bytes(), policy=policy.default)
    sender = message["From"]
    return Reply(message.get_body(preferencelist=("plain",)).get_content(),
                 sender.addresses[0].display_name if sender and sender.addresses else "",
                 str(message["Subject"] or ""))


def normalised(text: str) -> str:
    """As in expected.json: lines right-stripped, blank runs as one, no blank ends."""
    lines = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n"))
    return re.sub(r"\n{3,}", "\n\n", lines).strip("\n")


def assert_nothing_leaks(text: str, expected: dict) -> None:
    leaked = [string for string in expected["must_not_contain"] if string in text]
    assert not leaked, f"leaked {leaked} in:\n{text}"


# Each caller: whether it keeps forwarded mail, and how it calls. A command or an organ's
# answer is read from the body alone (as own_part is called today) or with the From name
# and the Subject; a consulta is judged on its body and Subject (judged_text).
CALLERS = {
    "own text, body only": (False, lambda reply: reply_text(reply.body, keep_forwarded=False)),
    "own text, with headers": (False, lambda reply: reply_text(
        reply.body, keep_forwarded=False, sender_name=reply.sender_name,
        subject=reply.subject)),
    "judged, with subject": (True, lambda reply: new_body_text(reply.body,
                                                               subject=reply.subject)),
    "judged, with headers": (True, lambda reply: new_body_text(
        reply.body, sender_name=reply.sender_name, subject=reply.subject)),
}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_only_the_text_typed_now(name, caller):
    keeps_forwarded, strip = CALLERS[caller]
    expected = EXPECTED[name]
    text = strip(read_reply(name))
    assert_nothing_leaks(text, expected)
    if not (keeps_forwarded and "forwarded_content" in expected):
        assert normalised(text) == normalised(expected["new_text"])
        return
    # The forwarded mail follows the writer's note, without its markers and headers.
    lines = {line.strip() for line in normalised(text).split("\n")}
    missing = [line for line in normalised(expected["new_text"]).split("\n")
               if line.strip() not in lines]
    assert not missing, f"lost {missing} in:\n{text}"
    assert expected["forwarded_content"] in text
    assert "Forwarded message" not in text and "Mensaje reenviado" not in text


def commands(body: str) -> str:
    return reply_text(body, keep_forwarded=False)


@pytest.mark.parametrize(("body", "expected"), [
    # What own_part gives on the bodies of tests/flows (incidents, review, suggestions).
    ("Escalar\n\nRevisado el log.", "Escalar\n\nRevisado el log."),
    ("Listo.\n\nEl lun., 16 nov. 2026, Mesa escribió:\n> ESCALAR: la enviamos", "Listo."),
    ("Listo.\r\n\r\nDe: Mesa de consultas\r\nEnviado: lunes\r\nVALIDADO", "Listo."),
    ("OBSERVADO: cite el artículo correcto.\nGracias\n\nEl jue., Supervisor escribió:\n"
     "> Para aprobarla, escriba APROBADO", "OBSERVADO: cite el artículo correcto.\nGracias"),
    ("APROBADO\n\n---------- Forwarded message ---------\nDe: buzon\n\nescriba OBSERVADO",
     "APROBADO"),
    ("IMPLEMENTADA\nEl buscador tendrá el filtro por región en marzo.",
     "IMPLEMENTADA\nEl buscador tendrá el filtro por región en marzo."),
    ("5 Muy buena atención\n\n> ¿Cómo calificaría la atención?", "5 Muy buena atención"),
    # Better than own_part: the signature goes, a bottom-posted command stays.
    ("4 Rápido y claro\n\nEnviado desde mi iPhone", "4 Rápido y claro"),
    ("Observado: falta el plazo.\n\nSilvia Paredes Linares\nSupervisora Legal\nAnexo 2210",
     "Observado: falta el plazo."),
    ("El 23/11/2026 a las 10:15, Mesa escribió:\n> ¿Lo revisan?\n\nESCALAR\n\n-- \nHugo",
     "ESCALAR"),
    # A line glued under a quote is the quote's wrapped tail, never a command.
    ("El jue., Supervisor escribió:\n> Para aprobarla, escriba\nAPROBADO en la primera línea.",
     ""),
])
def test_commands_are_read_from_the_writers_own_lines(body, expected):
    assert commands(body) == expected


@pytest.mark.parametrize("body", [
    # A block that the text announces is content, even with a phone in it.
    "Puede comunicarse con:\n\nMesa de ayuda del SEACE\nTelf. (01) 614-3636",
    # After a closing formula, a question is no signature.
    "Buenos días.\n\nSaludos cordiales.\n\nOtra pregunta: ¿el plazo es en días hábiles?",
    # "escribió:" with no time or address over unquoted text: a letter typed in.
    "Buenos días.\n\nEl comité me escribió:\n\nSe le comunica que su oferta no fue admitida.",
    # A typed memo header is no mail header: no "Enviado:" and its date has no time.
    "De: Gerencia de Logística\nPara: OECE\nFecha: 20 de noviembre\n\n¿Procede la ampliación?",
    # A sentence that starts like a phone tagline.
    "Enviado desde mi celular. ¿Puedo presentar la oferta en consorcio?",
])
def test_typed_text_that_looks_like_a_quote_or_a_signature_stays(body):
    assert commands(body) == body
    assert new_body_text(body) == body


def test_a_forward_told_by_its_subject_keeps_the_forwarded_mail_for_judging():
    body = ("Les reenvío la respuesta.\n\nDe: Patricia Gómez <pgomez@osce.test>\n"
            "Enviado el: lunes, 23 de noviembre de 2026 10:15\nAsunto: Firma\n\n"
            "El componente se actualizó a la versión 3.2.")
    assert judged_text("RV: Firma", body) == (
        "Firma\nLes reenvío la respuesta.\n\nEl componente se actualizó a la versión 3.2.")
    assert judged_text("RE: Firma", body) == "Firma\nLes reenvío la respuesta."
    assert reply_text(body, keep_forwarded=False, subject="RV: Firma") == (
        "Les reenvío la respuesta.")


def test_nothing_in_nothing_out():
    assert reply_text("", keep_forwarded=True) == ""
    assert reply_text(None, keep_forwarded=False) == ""  # type: ignore[arg-type]
    assert new_body_text("\r\n\r\n-- \r\nJuan") == ""
