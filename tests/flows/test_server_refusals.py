"""One refused command is one problem, not a stopped mailbox (issue 16), on the real
daemon and Dovecot: Dovecot refuses a keyword longer than 50 characters, as Cyrus
refuses its 101st keyword name. The rest of the batch and the other mailbox are
handled, the action is retried, then parked with its error, one alert goes out, and
nothing is lost."""

from __future__ import annotations

import json
from email.message import EmailMessage

from conftest import at, run
from test_trust import client_reply

# A real organ's name used as its key: its answer's keyword (Respuesta_<KEY>) is longer
# than the 50 characters Dovecot accepts.
LONG = "DIRECCION_DE_ARBITRAJE_Y_SOLUCION_DE_CONTROVERSIAS"


def tickets(d) -> dict[str, dict]:
    rows = [json.loads(line) for line in d.buzon("tickets", "--json").stdout.splitlines()]
    return {row["ticket"]: row for row in rows}


def mail(sender: str, to: str, subject: str, text: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{abs(hash((sender, subject)))}@correo.test>"
    message.set_content(text)
    return bytes(message)


def test_a_refused_keyword_is_retried_parked_and_told_once(deployment):
    d = deployment
    # Tried again at every later pass (the pauses are 1, 5 and 30 minutes by default).
    d.write_config(organs={**d.config["organs"], LONG: "arbitraje@osce.test"},
                   watcher={**d.config.get("watcher", {}), "refusal_pauses_seconds": [0, 0, 0]})
    d.deliver(mail("Rosa <rosa@correo.test>", d.address("consultas"), "Consulta RNP",
                   "¿Puedo pedir arbitraje por la demora en el pago?"), at("2026-11-16 09:00"))
    run(d, "2026-11-16 09:05")
    d.move_all("RNP", f"Derivar/{LONG}")
    run(d, "2026-11-16 10:00")
    [request] = d.mails("derivacion_organo", "arbitraje@osce.test")
    # The organ answers; in the same batch another citizen writes, and a suggestion
    # arrives at the other mailbox.
    d.deliver(client_reply("outlook_es_organ_answer.eml", request,
                           "Arbitraje <arbitraje@osce.test>"), at("2026-11-16 11:00"))
    d.deliver(mail("Luis <luis@correo.test>", d.address("consultas"), "Clave del SEACE",
                   "¿Cómo recupero mi clave del SEACE?"), at("2026-11-16 11:00"))
    d.deliver(mail("Ana <ana@correo.test>", d.address("sugerencias"), "Sugerencia",
                   "Sugiero un buscador por región."), at("2026-11-16 11:00"),
              mailbox="sugerencias")
    for _ in range(5):
        run(d, "2026-11-16 11:05")

    by_subject = {t["subject"]: t for t in tickets(d).values()}
    assert by_subject["Clave del SEACE"]["folder"] == "SEACE"
    assert d.acknowledgements("luis@correo.test") and d.acknowledgements("ana@correo.test")
    assert f"Ficha {by_subject['Clave del SEACE']['ticket']}: Clave del SEACE" in \
        d.card_subjects("SEACE")
    derived = by_subject["Consulta RNP"]
    assert derived["status"] == "organ_answered"  # the answer itself was recorded
    # Tried again after each pause, then parked with its error on the ticket.
    trace = d.buzon("ticket", derived["ticket"]).stdout
    assert "action refused by the server" in trace and "Keyword length too long" in trace
    [alert] = d.mails("acciones_rechazadas", "coordinador@osce.test")
    assert derived["ticket"] in alert.message.get_body(("plain",)).get_content()
    # Nothing lost: both mails of the consulta are still in its folder.
    assert len(d.folder_uids(f"Derivar/{LONG}")) == 2
