"""Which replies after the answer are only a courtesy (pure, table-driven)."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from daemon.decide.courtesy import is_courtesy
from daemon.mail.parsing import own_part

REPLIES = Path(__file__).resolve().parent.parent / "data" / "replies"
EXPECTED = json.loads((REPLIES / "expected.json").read_text(encoding="utf-8"))
CITIZEN_REPLIES = sorted(name for name, case in EXPECTED.items()
                         if case["kind"] in ("courtesy", "new_question"))


@pytest.mark.parametrize("name", CITIZEN_REPLIES)
def test_client_replies_after_the_answer(name):
    message = message_from_bytes((REPLIES / name).read_bytes(), policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    assert is_courtesy(own_part(text)) is (EXPECTED[name]["kind"] == "courtesy")


@pytest.mark.parametrize(("text", "courtesy"), [
    ("Gracias", True),
    ("MUCHAS GRACIAS!!!", True),
    ("Ok, recibido.", True),
    ("Entendido, muy amable.", True),
    ("Perfecto, gracias por la información", True),
    ("Thank you so much", True),
    ("gracias, pero no me funciona la clave", False),
    ("Gracias. ¿Y cuándo sale la constancia?", False),
    ("gracias por nada, pésima atención", False),
    ("Ok. Adjunto el documento que me pidieron.", False),
    ("Recibido. Necesito además la constancia de no estar inhabilitado.", False),
    ("", False),
    ("Estimados, gracias por su respuesta. Sin embargo el sistema sigue mostrando el "
     "mismo error al registrar mi oferta y el plazo vence mañana", False),
])
def test_typed_replies(text, courtesy):
    assert is_courtesy(text) is courtesy
