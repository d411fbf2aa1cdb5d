"""Forwards read as the original mail: every client's header block (tests/data/replies
holds real clients' forwards) and a staff forward between the agency's mailboxes."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest

from daemon.decide.forwarding import is_forward, original_of, unwrap
from daemon.mail.parsing import Inbound

REPLIES = Path(__file__).resolve().parent.parent / "data" / "replies"
STAFF = frozenset({"consultas@osce.test", "sugerencias@osce.test", "ana.torres@osce.test"})


def text_of(fixture: str) -> str:
    message = message_from_bytes((REPLIES / fixture).read_bytes(), policy=policy.default)
    return message.get_body(("plain",)).get_content()


@pytest.mark.parametrize(("fixture", "sender", "subject", "kept"), [
    ("applemail_es_forward.eml", "logistica@pronied.gob.test", "Recordatorio de garantía",
     "garantía de fiel cumplimiento vence"),
    ("gmail_en_forward.eml", "comite@hospitalica.gob.test",
     "No admisión de oferta - LP-SM-7-2026-HRI-1", "apostilla presentada"),
    ("gmail_es_forward.eml", "abastecimiento@regionpuno.gob.test",
     "Resolución de contrato N.° 045-2026-GRP", "monto máximo de penalidad por mora"),
    ("outlook_es_forward_rv.eml", "pgomez@osce.test", "RE: Error de firma digital en SEACE",
     "versión 3.2"),
    ("thunderbird_es_forward.eml", "comite@munihuamanga.gob.test",
     "Registro de participantes - AS-SM-21-2026-MPH-1", "inscripción vigente"),
])
def test_every_clients_forward_names_its_original(fixture, sender, subject, kept):
    original = original_of(text_of(fixture))
    assert original is not None
    assert (original.address, original.subject) == (sender, subject)
    assert kept in original.text and "> " not in original.text


def test_a_reply_quoting_an_outlook_header_is_no_forward():
    text = ("Gracias, ya lo revisé.\n\nDe: Rosa <rosa@correo.test>\nEnviado: lunes\n"
            "Para: consultas@osce.test\nAsunto: Consulta")
    assert not is_forward("RE: Consulta", text)


def test_a_staff_forward_becomes_the_citizens_mail():
    text = ("Se reenvía a sugerencias, corresponde a la consulta C-2026-000004.\n\n"
            "De: Rosa Quispe <Rosa.Quispe@correo.test>\n"
            "Enviado el: lunes, 16 de noviembre de 2026 10:00\n"
            "Para: consultas@osce.test\nAsunto: Sugerencia para el buscador\n\n"
            "Sugiero que el buscador filtre por región.")
    forward = Inbound(from_address="consultas@osce.test", from_name="Consultas OECE",
                      subject="RV: Sugerencia para el buscador", text=text,
                      in_reply_to=("<x@osce.test>",), trace_fields=(("received", "x"),))
    citizen = unwrap(forward, STAFF)
    assert (citizen.from_address, citizen.from_name) == ("rosa.quispe@correo.test", "Rosa Quispe")
    assert citizen.subject == "Sugerencia para el buscador"
    assert citizen.text == "Sugiero que el buscador filtre por región."
    assert citizen.forwarded_by == "consultas@osce.test" and "C-2026-000004" in citizen.forward_note
    assert citizen.in_reply_to == () and citizen.trace_fields == ()
    # Only staff forwards are unwrapped: a citizen's forward stays the citizen's mail.
    outsider = unwrap(Inbound(from_address="x@correo.test", subject="RV: algo", text=text),
                      STAFF)
    assert outsider.from_address == "x@correo.test" and not outsider.forwarded_by
