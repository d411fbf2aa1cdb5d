"""A bounded keyword vocabulary (issue 16.2) on the real Dovecot: no keyword per ticket or
per date; the ticket id is on a card threaded beside the mail; the citizen's mail is not
changed by a byte; assistants' moves are recognised by the mail's identity (Message-ID,
size and arrival), which a forged Message-ID does not fake."""

from __future__ import annotations

import json

from conftest import at, fixture_bytes, run, sqlite_rows

FIXED_VOCABULARY = {"Por_vencer", "Vence_hoy", "Vencido", "Por_enviar", "Reabierta",
                    "Sin_verificar", "Agradecimiento"}


def tickets(d) -> list[dict]:
    return [json.loads(line) for line in d.buzon("tickets", "--json").stdout.splitlines()]


def server_keywords(d, mailbox: str = "consultas") -> set[str]:
    """Every keyword name the server has seen in any folder of the mailbox (FLAGS)."""
    names: set[str] = set()
    with d.imap(mailbox) as client:
        for _flags, _sep, folder in client.list_folders():
            info = client.select_folder(folder, readonly=True)
            names |= {f.decode() for f in info.get(b"FLAGS", ()) if not f.startswith(b"\\")}
    return names


def whole_mail(d, folder: str, uid: int, mailbox: str = "consultas") -> bytes:
    with d.imap(mailbox) as client:
        client.select_folder(folder, readonly=True)
        return client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]


def consulta(number: int, body: str = "No puedo ingresar al SEACE con mi usuario.") -> bytes:
    return (f"From: Ana Torres <ana{number}@correo.test>\r\n"
            f"To: consultas@oece.test\r\nSubject: Consulta SEACE {number}\r\n"
            f"Message-ID: <c{number}@correo.test>\r\n"
            "Date: Tue, 24 Nov 2026 10:00:00 -0500\r\n\r\n"
            f"{body}\r\n").encode()


def test_a_week_of_tickets_leaves_only_fixed_keywords_and_one_card_each(deployment):
    d = deployment
    for day in range(23, 28):
        for number in range(4):
            d.deliver(consulta(day * 10 + number), at(f"2026-11-{day} 10:0{number}"))
    run(d, "2026-11-27 11:00")
    run(d, "2026-11-30 09:00")  # the sweeps mark what is due and overdue

    names = server_keywords(d)
    assert names <= FIXED_VOCABULARY | {"$Junk", "$NotJunk", "NonJunk"}, names
    assert {"Vencido"} <= names
    found = tickets(d)
    assert len(found) == 20
    cards = d.cards("SEACE")
    assert len(cards) == 20  # one each, a second run wrote none again
    subjects = {card["Subject"].split(":")[0] for card in cards}
    assert subjects == {f"Ficha {t['ticket']}" for t in found}


def test_the_citizens_mail_is_unchanged_and_its_card_threads_under_it(deployment):
    d = deployment
    raw = fixture_bytes("plain_consulta_seace.eml")
    d.deliver(raw, at("2026-11-24 10:00"))
    run(d, "2026-11-24 10:05")

    [uid] = d.folder_uids("SEACE")
    assert whole_mail(d, "SEACE", uid) == raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    [card] = d.cards("SEACE")
    assert card["In-Reply-To"] == "<plain-consulta-seace.2026@mail.gmail.test>"
    assert card["From"].addresses[0].addr_spec == d.address("consultas")
    assert card["Auto-Submitted"] == "auto-replied"
    with d.imap() as client:
        client.select_folder("SEACE", readonly=True)
        [card_uid] = d.card_uids("SEACE")
        assert b"\\Seen" in client.get_flags([card_uid])[card_uid]  # unread counts stay true
    assert not [m for m in d.sent_by_buzon() if "Ficha" in m.message["Subject"]]  # never sent


def test_a_suggestion_card_stays_in_the_inbox_and_is_left_alone(deployment):
    d = deployment
    d.deliver(fixture_bytes("sugerencia_simple.eml"), at("2026-11-24 10:00"),
              mailbox="sugerencias")
    run(d, "2026-11-24 10:05")
    run(d, "2026-11-24 10:10")
    run(d, "2026-11-24 10:15")

    assert len(d.folder_uids("INBOX", "sugerencias")) == 1
    assert len(d.card_uids("INBOX", "sugerencias")) == 1
    assert d.folder_uids("Automáticos", "sugerencias") == []
    assert [t["kind"] for t in tickets(d)] == ["sugerencia"]
    outcomes = sqlite_rows(d, "SELECT outcome FROM mail WHERE mailbox = 'sugerencias' "
                              "ORDER BY uid")
    assert outcomes == [("ticket",), ("card",)]


def test_a_forged_message_id_does_not_pass_for_the_ticket_it_copies(deployment):
    """An attacker copies a citizen's Message-ID; an assistant then files the attacker's
    mail as answered by phone. Only the attacker's ticket is closed."""
    d = deployment
    d.deliver(consulta(1), at("2026-11-24 10:00"))
    forged = consulta(1, body="Otra cosa, escrita por otra persona con el mismo Message-ID.")
    forged = forged.replace(b"ana1@correo.test", b"intruso@mal.test")
    d.deliver(forged, at("2026-11-24 10:01"))
    run(d, "2026-11-24 10:05")
    by_sender = {t["citizen"]: t for t in tickets(d)}
    assert set(by_sender) == {"ana1@correo.test", "intruso@mal.test"}

    with d.imap() as client:  # the assistant drags only the attacker's mail
        client.select_folder("SEACE")
        uids = client.search(["FROM", "intruso@mal.test"])
        client.move(uids, "Atendidos")
    run(d, "2026-11-24 10:10")
    run(d, "2026-11-24 10:20")  # after the grace period

    by_sender = {t["citizen"]: t for t in tickets(d)}
    assert by_sender["intruso@mal.test"]["answered_at"]
    assert not by_sender["ana1@correo.test"]["answered_at"]
