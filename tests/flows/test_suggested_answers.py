"""Suggested answers (issue 8) against the real Dovecot: a consulta close to a standard
answer gets a threaded draft in Drafts, one close to nothing gets none, an answered
consulta becomes a source for the next similar one, and what the assistant sent is
measured against the suggestion. Nothing is sent to the citizen but the acknowledgement."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy

from conftest import at
from workbook_tables import by_first_column, workbook

from daemon.decide.scrub import NOTE_END, NOTE_START


def consulta(number: int, body: str, sender: str = "Juan Pérez <juan.perez@correo.test>"
             ) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "consultas@osce.test"
    message["Subject"] = "Consulta"
    message["Message-ID"] = f"<sugerida-{number}@correo.test>"
    message.set_content(body)
    return bytes(message)


def drafts(d) -> list:
    with d.imap() as client:
        client.select_folder("Drafts", readonly=True)
        fetched = client.fetch(client.search(), ["FLAGS", "BODY.PEEK[]"])
        return [(data[b"FLAGS"], message_from_bytes(data[b"BODY[]"], policy=default_policy))
                for data in fetched.values()]


def sent_reply(d, draft, text: str) -> bytes:
    """The assistant sends the reply from the mailbox: a copy lands in Sent."""
    message = EmailMessage()
    message["From"] = d.address("consultas")
    message["To"] = draft["To"]
    message["Subject"] = draft["Subject"]
    message["In-Reply-To"] = draft["In-Reply-To"]
    message["Message-ID"] = f"<enviada-{draft['In-Reply-To'].strip('<>')}>"
    message.set_content(text)
    return bytes(message)


def test_a_close_consulta_gets_a_threaded_draft_that_is_never_sent(deployment):
    d = deployment
    d.deliver(consulta(1, "Buenas tardes, olvidé la contraseña para ingresar al SEACE como "
                          "proveedor, ¿cómo la recupero?"), at("2026-11-24 10:00"))
    d.buzon("run", "--once", "--now", at("2026-11-24 10:05").isoformat())
    [(flags, draft)] = drafts(d)
    assert b"\\Draft" in flags
    assert draft["In-Reply-To"] == "<sugerida-1@correo.test>"
    assert "[C-2026-000001]" in draft["Subject"] and draft["To"] == "juan.perez@correo.test"
    text = draft.get_body(("plain",)).get_content()
    # The note is one block at the top, between two marker lines.
    assert text.startswith(NOTE_START + "\n") and text.count(NOTE_END) == 1
    assert "seace-recuperar-contrasena.md" in text and "Antes de enviar, verifique:" in text
    assert "Estimada/o Juan Pérez:" in text and "recuperar" in text
    # Nothing but the acknowledgement went to the citizen.
    assert [m.message["Message-ID"][:5] for m in d.sent_by_buzon("juan.perez@correo.test")] \
        == ["<ack."]
    assert "answer suggested" in d.buzon("ticket", "C-2026-000001").stdout

    # The assistant deletes the note and sends the rest: "used as sent".
    answer = text.split(NOTE_END, 1)[1].strip() + "\nAna Torres"
    d.deliver(sent_reply(d, draft, answer), at("2026-11-24 11:00"), folder="Sent")
    d.buzon("run", "--once", "--now", at("2026-11-24 11:05").isoformat())
    assert "suggestion used" in d.buzon("ticket", "C-2026-000001").stdout
    out = d.tmp / "mensual.xlsx"
    d.buzon("report", "monthly", "--month", "2026-11", "--out", str(out))
    rows = by_first_column(workbook(out)["Respuestas sugeridas"])
    assert rows["Con respuesta sugerida en Borradores"] == (1, 100.0)
    assert rows["Enviada casi sin cambios"] == (1, 100.0)


def test_a_consulta_close_to_nothing_gets_no_draft(deployment):
    d = deployment
    d.deliver(consulta(2, "Buenos días, ¿el menú del comedor de hoy tiene pescado?"),
              at("2026-11-24 10:00"))
    d.buzon("run", "--once", "--now", at("2026-11-24 10:05").isoformat())
    assert drafts(d) == []
    assert len(d.acknowledgements()) == 1


def test_an_answered_consulta_becomes_a_source_for_the_next(deployment):
    d = deployment
    d.deliver(consulta(3, "Quisiera saber dónde puedo estacionar mi bicicleta en la sede "
                          "de San Isidro", "Rosa Quispe <rosa@correo.test>"),
              at("2026-11-24 10:00"))
    d.buzon("run", "--once", "--now", at("2026-11-24 10:05").isoformat())
    assert drafts(d) == []
    reply = EmailMessage()
    reply["From"] = d.address("consultas")
    reply["To"] = "rosa@correo.test"
    reply["Subject"] = "RE: [C-2026-000001] Consulta"
    reply["In-Reply-To"] = "<sugerida-3@correo.test>"
    reply.set_content("Estimada Rosa:\nPuede dejar su bicicleta en el estacionamiento del "
                      "sótano 1, junto a la puerta de la avenida.\nAna Torres")
    d.deliver(bytes(reply), at("2026-11-24 11:00"), folder="Sent")
    d.deliver(consulta(4, "¿Hay estacionamiento para bicicletas en la sede del OECE en San "
                          "Isidro?", "Luis Rojas <luis@correo.test>"), at("2026-11-24 12:00"))
    d.buzon("run", "--once", "--now", at("2026-11-24 12:05").isoformat())
    [(_flags, draft)] = drafts(d)
    text = draft.get_body(("plain",)).get_content()
    assert "la respuesta enviada en el ticket C-2026-000001" in text
    # One greeting, to the new citizen; nothing of Rosa's answer but its body.
    reply = text.split(NOTE_END, 1)[1]
    assert reply.startswith("\n\nEstimada/o Luis Rojas:\n\nPuede dejar su bicicleta en el "
                            "estacionamiento del sótano 1, junto a la puerta de la avenida.\n\n"
                            "Atentamente,\n")
    assert "Rosa" not in text and "Ana Torres" not in text and text.count("Estimad") == 1
