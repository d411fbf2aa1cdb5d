"""No backscatter, no acknowledgement flood (issue 14): acknowledgements go to the From
only, are capped per sender (its +tag dropped), per domain and per hour with one alert
to the coordinators, repeat the sender's words only when the border vouches for them,
and a flood from one sender opens its tickets but fills neither the relay nor Drafts."""

from __future__ import annotations

import json
from email.message import EmailMessage

from conftest import at, deliver_many, run

from daemon.decide.pipeline import cap_keys, counted, windows

QUESTION = ("Buenas tardes, olvidé la contraseña para ingresar al SEACE como proveedor, "
            "¿cómo la recupero?")
BORDER = "mx.oece.test"


def mail(sender: str, subject: str, body: str = "Buenos días, tengo una consulta.",
         **headers: str) -> bytes:
    message = EmailMessage()
    for name, value in headers.items():  # first: where a border server puts its fields
        message[name.replace("_", "-")] = value
    message["From"] = sender
    message["To"] = "consultas@osce.test"
    message["Subject"] = subject
    message.set_content(body)
    return bytes(message)


def tickets(d) -> list[dict]:
    return [json.loads(line) for line in d.buzon("tickets", "--json").stdout.splitlines()]


def alerts(d) -> list:
    return d.mails("limite_acuses", "coordinador@osce.test")


def text_of(sent) -> str:
    return sent.message.get_body(("plain",)).get_content()


def test_cap_keys_drop_case_and_tag():
    assert cap_keys("Robot+1@Empresa.TEST") == ("to:robot@empresa.test",
                                                "domain:empresa.test", "all")
    assert counted("to:robot@empresa.test",
                   ["robot@empresa.test", "ROBOT+x@empresa.test", "otro@empresa.test"]) == 2


def test_windows_are_the_office_day_and_hour():
    (day_start, day_end), (hour_start, hour_end) = windows(at("2026-11-24 10:42"),
                                                           at("2026-11-24 10:42").tzinfo)
    assert (day_start, hour_start) == (at("2026-11-24 00:00"), at("2026-11-24 10:00"))
    assert day_end < at("2026-11-25 00:00") and hour_end < at("2026-11-24 11:00")
    assert hour_end > at("2026-11-24 10:59:59")


def test_the_sender_cap_counts_one_mailbox_whatever_its_case_and_tag(deployment):
    d = deployment
    senders = ["robot@empresa.test", "Robot+1@empresa.test", "ROBOT+2@EMPRESA.test",
               "robot+3@empresa.test", "robot@Empresa.test", "robot+4@empresa.test",
               "robot+5@empresa.test"]
    deliver_many(d, [mail(s, f"Consulta número {n}") for n, s in enumerate(senders)],
                 at("2026-11-24 10:00"))
    run(d, "2026-11-24 10:05")
    assert len(tickets(d)) == 7
    acknowledged = [r for m in d.acknowledgements() for r in m.recipients]
    assert len(acknowledged) == 5
    assert alerts(d) == []  # one busy sender is no alarm


def test_the_domain_cap_stops_acknowledgements_and_tells_the_coordinators_once(deployment):
    d = deployment
    d.write_config(automatic_mail={"ack_cap_per_domain_per_day": 3})
    deliver_many(d, [mail(f"persona{n}@empresa.test", f"Consulta {n}") for n in range(5)]
                 + [mail("alguien@otra.test", "Consulta de otra empresa")],
                 at("2026-11-24 10:00"))
    run(d, "2026-11-24 10:05")
    deliver_many(d, [mail(f"tarde{n}@empresa.test", f"Consulta tarde {n}") for n in range(2)],
                 at("2026-11-24 15:00"))
    run(d, "2026-11-24 15:05")
    assert len(tickets(d)) == 8
    to_domain = [m for m in d.acknowledgements() if m.recipients[0].endswith("@empresa.test")]
    assert len(to_domain) == 3
    assert len(d.acknowledgements("alguien@otra.test")) == 1
    [alert] = alerts(d)
    assert "empresa.test" in alert.message["Subject"]
    body = text_of(alert)
    assert "Estimada coordinadora, estimado coordinador:" in body
    assert "automatic_mail.ack_cap_per_domain_per_day" in body and " 3 acuses" in body
    # The next day the domain is acknowledged again.
    d.deliver(mail("persona9@empresa.test", "Consulta del día siguiente"),
              at("2026-11-25 10:00"))
    run(d, "2026-11-25 10:05")
    assert len(d.acknowledgements("persona9@empresa.test")) == 1
    assert len(alerts(d)) == 1


def test_the_hourly_cap_holds_for_everyone_and_alerts_once_per_hour(deployment):
    d = deployment
    d.write_config(automatic_mail={"ack_cap_per_hour": 4})
    deliver_many(d, [mail(f"vecino@dominio{n}.test", f"Consulta {n}") for n in range(6)],
                 at("2026-11-24 10:10"))
    deliver_many(d, [mail(f"vecino@luego{n}.test", f"Consulta {n}") for n in range(2)],
                 at("2026-11-24 11:10"))
    run(d, "2026-11-24 11:15")
    assert len(tickets(d)) == 8
    assert len(d.acknowledgements()) == 4 + 2
    [alert] = alerts(d)
    assert "entre las 10:00 y las 10:59" in text_of(alert)
    assert "automatic_mail.ack_cap_per_hour" in text_of(alert)


def test_the_acknowledgement_goes_to_the_from_never_to_a_reply_to(deployment):
    d = deployment
    d.deliver(mail("Atacante <atacante@malo.test>", "Hola", Reply_To="victima@correo.test"),
              at("2026-11-24 10:00"))
    run(d, "2026-11-24 10:05")
    assert d.sent_by_buzon("victima@correo.test") == []
    [ack] = d.acknowledgements()
    assert ack.recipients == ["atacante@malo.test"]
    [ticket] = tickets(d)
    assert ticket["citizen"] == "atacante@malo.test"


def test_the_sender_s_words_are_repeated_only_when_the_border_vouches(deployment):
    d = deployment
    phishing = "Su RUC fue suspendido, pague en http://cobro.test"
    d.deliver(mail(f"{phishing} <victima@correo.test>", phishing), at("2026-11-24 10:00"))
    run(d, "2026-11-24 10:05")
    [ack] = d.acknowledgements("victima@correo.test")
    assert "cobro.test" not in ack.message["Subject"] and "cobro.test" not in text_of(ack)
    assert "[C-2026-" in ack.message["Subject"]

    d.write_config(trust={"authserv_id": BORDER})
    vouched = f"{BORDER}; dkim=pass header.d=correo.test; dmarc=pass header.from=correo.test"
    d.deliver(mail("Juan Pérez <juan@correo.test>", "Mi clave del SEACE",
                   Authentication_Results=vouched), at("2026-11-24 10:10"))
    forged = f"{BORDER}; dkim=fail header.d=correo.test; dmarc=fail header.from=correo.test"
    d.deliver(mail(f"{phishing} <otra.victima@correo.test>", phishing,
                   Authentication_Results=forged), at("2026-11-24 10:10"))
    run(d, "2026-11-24 10:15")
    [ack] = d.acknowledgements("juan@correo.test")
    assert "Mi clave del SEACE" in ack.message["Subject"] and "Juan Pérez" in text_of(ack)
    [ack] = d.acknowledgements("otra.victima@correo.test")
    assert "cobro.test" not in ack.message["Subject"] and "cobro.test" not in text_of(ack)


def test_a_flood_from_one_sender_opens_its_tickets_but_fills_neither_relay_nor_drafts(
        deployment):
    """500 consultas from one address in a day each get a ticket: each may be a consulta
    with its legal deadline, and buzon cannot tell a flood from a busy entity. What
    leaves buzon is capped: 5 acknowledgements and 10 suggested replies."""
    d = deployment
    flood = [mail("Proveedor <compras+lote@empresa.test>", f"Consulta {n}",
                  f"{QUESTION} (pedido {n})") for n in range(500)]
    deliver_many(d, flood, at("2026-11-24 09:00"))
    run(d, "2026-11-24 09:30")
    assert len(tickets(d)) == 500
    assert len(d.acknowledgements("compras+lote@empresa.test")) == 5
    with d.imap() as client:
        client.select_folder("Drafts", readonly=True)
        assert len(client.search()) == 10
    assert d.folder_uids("INBOX") == []
