"""Mail forwarded between the agency's own mailboxes (manual 9.1), on the real daemon and
Dovecot: a suggestion that came to consultas@, forwarded from Outlook to sugerencias@,
opens an S- ticket for the original citizen, linked to the first ticket."""

from __future__ import annotations

import json
from email.message import EmailMessage

from conftest import at, run

CITIZEN = "rosa.quispe@correo.test"


def tickets(d) -> dict[str, dict]:
    rows = [json.loads(line) for line in d.buzon("tickets", "--json").stdout.splitlines()]
    return {row["ticket"]: row for row in rows}


def suggestion_to_consultas(d) -> bytes:
    message = EmailMessage()
    message["From"] = f"Rosa Quispe <{CITIZEN}>"
    message["To"] = d.address("consultas")
    message["Subject"] = "Sugerencia para el buscador del SEACE"
    message["Message-ID"] = "<sugerencia-en-consultas@correo.test>"
    message.set_content("Buenos días, sugiero que el buscador del SEACE permita filtrar los "
                        "procedimientos por región. Sería más fácil encontrarlos.")
    return bytes(message)


def outlook_forward(d, first_id: str, body: str) -> bytes:
    """What the assistant's Outlook sends: "RV:", the note, then the header block."""
    message = EmailMessage()
    message["From"] = f"Consultas OECE <{d.address('consultas')}>"
    message["To"] = d.address("sugerencias")
    message["Subject"] = "RV: Sugerencia para el buscador del SEACE"
    message["Message-ID"] = "<reenvio-outlook@osce.test>"
    message.set_content(
        f"Se reenvía: es una sugerencia (llegó como {first_id}).\n\n"
        "Ana Torres\nAsistente\n\n"
        "________________________________\n"
        f"De: Rosa Quispe <{CITIZEN}>\n"
        "Enviado: lunes, 16 de noviembre de 2026 09:00\n"
        f"Para: {d.address('consultas')}\n"
        "Asunto: Sugerencia para el buscador del SEACE\n\n"
        f"{body}\n")
    return bytes(message)


def test_a_forwarded_suggestion_opens_an_s_ticket_for_the_original_citizen(deployment):
    d = deployment
    d.deliver(suggestion_to_consultas(d), at("2026-11-16 09:00"))
    run(d, "2026-11-16 09:05")
    [first] = tickets(d).values()
    assert first["ticket"].startswith("C-") and first["citizen"] == CITIZEN

    forward = outlook_forward(d, first["ticket"], "Buenos días, sugiero que el buscador del "
                              "SEACE permita filtrar los procedimientos por región.")
    d.deliver(forward, at("2026-11-16 10:00"), mailbox="sugerencias")
    d.deliver(forward, at("2026-11-16 10:00"), folder="Sent")  # Outlook's copy in Sent
    run(d, "2026-11-16 10:05")
    by_id = tickets(d)
    [suggestion] = [t for t in by_id.values() if t["kind"] == "sugerencia"]
    assert suggestion["ticket"].startswith("S-")
    assert suggestion["citizen"] == CITIZEN
    assert suggestion["subject"] == "Sugerencia para el buscador del SEACE"
    assert suggestion["linked_ticket"] == first["ticket"]
    # The consulta goes on as the suggestion: not answered, not late.
    assert by_id[first["ticket"]]["status"] == "forwarded"
    assert by_id[first["ticket"]]["answered_at"] is None
    [ack] = d.mails("ack", CITIZEN)[1:] or [None]
    assert ack is not None and suggestion["ticket"] in ack.message["Subject"]
    # Nothing was left in Automáticos, and no mail went to the forwarding mailbox.
    assert d.folder_uids("Automáticos", mailbox="sugerencias") == []
    assert d.sent_by_buzon(d.address("consultas")) == []


def test_a_forward_without_the_ticket_number_is_linked_by_the_citizen(deployment):
    d = deployment
    d.deliver(suggestion_to_consultas(d), at("2026-11-16 09:00"))
    run(d, "2026-11-16 09:05")
    [first] = tickets(d).values()
    raw = outlook_forward(d, "sin número", "Sugiero filtrar por región.")
    d.deliver(raw, at("2026-11-16 10:00"), mailbox="sugerencias")
    run(d, "2026-11-16 10:05")
    [suggestion] = [t for t in tickets(d).values() if t["kind"] == "sugerencia"]
    assert (suggestion["citizen"], suggestion["linked_ticket"]) == (CITIZEN, first["ticket"])
