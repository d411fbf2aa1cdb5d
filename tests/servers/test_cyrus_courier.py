"""buzon end to end on a real Cyrus and a real Courier (issue 16): 300 mails through
intake, filing, acknowledgement and suggested replies, an assistant's answer through
Sent, and a second run that changes nothing. Each server runs from its unpacked Debian
package (scripts/extract-imap-servers.sh, daemon/mail/sandbox_servers.py)."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy

from conftest import at, fixture_bytes, run, sqlite_rows

# The committed test files 300 mails; BUZON_SERVER_TEST_MAILS lowers it while developing.
MAILS = int(os.environ.get("BUZON_SERVER_TEST_MAILS", "300"))
CATEGORIES = ("SEACE", "RNP", "Legal", "Por clasificar")
# The question tests/flows/test_suggested_answers.py shows close to a standard answer.
DRAFTED = ("Buenas tardes, olvidé la contraseña para ingresar al SEACE como proveedor, "
           "¿cómo la recupero?")
ANSWERED = 5  # consultas an assistant answers through Sent


def citizen(number: int) -> str:
    return f"ciudadano{number}@correo{number % 7}.test"


def from_fixture(name: str, number: int) -> bytes:
    """A consulta of tests/data from a citizen of its own, with its own Message-ID."""
    raw = fixture_bytes(name)
    raw = re.sub(rb"(?m)^From: .*$", f"From: Ciudadano {number} <{citizen(number)}>".encode(),
                 raw, count=1)
    return re.sub(rb"(?m)^Message-ID: <", f"Message-ID: <srv{number}.".encode(), raw, count=1)


def written(number: int, to: str, subject: str, body: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Ciudadano {number} <{citizen(number)}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<srv{number}@{citizen(number).split('@')[1]}>"
    message.set_content(body)
    return bytes(message)


def backlog(count: int) -> list[tuple[str, str, bytes]]:
    """(mailbox, folder buzon files it in, mail): a fifth suggestions, the rest consultas
    of every category, some close to a standard answer (they get a suggested reply)."""
    mails = []
    for number in range(count):
        kind = number % 10
        if kind in (0, 5):
            mails.append(("sugerencias", "INBOX",
                          fixture_bytes("sugerencia_simple.eml").replace(
                              b"Message-ID: <", f"Message-ID: <srv{number}.".encode())
                          .replace(b"martin.alarcon@gmail.test", citizen(number).encode())))
        elif kind in (1, 6):
            mails.append(("consultas", "SEACE", from_fixture("plain_consulta_seace.eml", number)))
        elif kind == 2:
            mails.append(("consultas", "SEACE", written(
                number, "consultas@osce.test", "Clave del SEACE", DRAFTED)))
        elif kind in (3, 7):
            mails.append(("consultas", "RNP", from_fixture("plain_consulta_rnp.eml", number)))
        elif kind in (4, 8):
            mails.append(("consultas", "Legal", from_fixture("plain_consulta_legal.eml", number)))
        else:
            mails.append(("consultas", "Por clasificar", written(
                number, "consultas@osce.test", "Consulta", "Buenos días, quisiera una orientación "
                "sobre un trámite. Gracias.")))
    return mails


def tickets(d) -> list[dict]:
    return [json.loads(line) for line in d.buzon("tickets", "--json").stdout.splitlines()]


def unapplied(d) -> list[tuple]:
    """What buzon planned and the server has not taken (refused, or still to retry)."""
    return sqlite_rows(d, "SELECT action, status, count(*), max(last_error) FROM outbox "
                          "WHERE status != 'done' GROUP BY action, status")


def snapshot(d) -> dict[str, list[int]]:
    """The UIDs of every folder buzon files into, in both mailboxes."""
    return {f"{box}:{folder}": d.folder_uids(folder, box)
            for box in ("consultas", "sugerencias")
            for folder in ("INBOX", *CATEGORIES, "Cuarentena", "Automáticos")}


def drafts(d) -> list:
    with d.imap() as client:
        client.select_folder(client.find_special_folder(b"\\Drafts"), readonly=True)
        fetched = client.fetch(client.search(), ["FLAGS", "BODY.PEEK[]"])
        return [(data[b"FLAGS"], message_from_bytes(data[b"BODY[]"], policy=default_policy))
                for data in fetched.values()]


def answer(d, ticket: dict, message_id: str) -> bytes:
    """What an assistant's client keeps in Sent after replying to a consulta."""
    message = EmailMessage()
    message["From"] = d.address("consultas")
    message["To"] = ticket["citizen"]
    message["Subject"] = f"RE: [{ticket['ticket']}] {ticket['subject']}"
    message["In-Reply-To"] = message_id
    message["References"] = message_id
    message["Message-ID"] = f"<respuesta.{ticket['ticket']}@osce.test>"
    message.set_content("Estimada/o ciudadana/o:\n\nLe respondemos su consulta.\n\n"
                        "Atentamente,\nAsistente")
    return bytes(message)


def test_300_mails_filed_acknowledged_drafted_answered_and_a_second_run_idle(
        server_deployment, imap_server):
    d = server_deployment
    mails = backlog(MAILS)
    start = at("2026-11-23 08:00")
    with d.imap("consultas") as consultas, d.imap("sugerencias") as sugerencias:
        clients = {"consultas": consultas, "sugerencias": sugerencias}
        for number, (mailbox, _folder, raw) in enumerate(mails):
            # One every two minutes, 08:00 to 18:00: under the hourly acknowledgement cap.
            clients[mailbox].append("INBOX", raw, (), start + timedelta(minutes=2 * number))
    expected = {key: sum(1 for box, folder, _raw in mails if (box, folder) == key)
                for key in {(box, folder) for box, folder, _raw in mails}}

    run(d, "2026-11-23 19:00", timeout=300)

    # Every consulta filed where the routing rules send it; suggestions stay in INBOX.
    assert d.folder_uids("INBOX") == []
    for category in CATEGORIES:
        assert len(d.folder_uids(category)) == expected[("consultas", category)], category
        # Each ticket's card beside its mail: the id seen in any client, on any server.
        assert len(d.card_uids(category)) == expected[("consultas", category)], category
    assert len(d.card_uids("INBOX", "sugerencias")) == expected[("sugerencias", "INBOX")]
    assert len(d.folder_uids("INBOX", "sugerencias")) == expected[("sugerencias", "INBOX")]
    assert d.folder_uids("Cuarentena") == [] and d.folder_uids("Cuarentena", "sugerencias") == []
    # A ticket per mail, an acknowledgement per citizen.
    opened = tickets(d)
    assert len(opened) == MAILS
    assert sorted(t["kind"] for t in opened).count("sugerencia") == \
        expected[("sugerencias", "INBOX")]
    acknowledged = [m.recipients for m in d.acknowledgements()]
    assert sorted(r for rs in acknowledged for r in rs) == sorted(citizen(n) for n in range(MAILS))
    # The consultas close to a standard answer each have a suggested reply in Drafts.
    asked = {f"<srv{n}@{citizen(n).split('@')[1]}>" for n in range(MAILS) if n % 10 == 2}
    suggested = drafts(d)
    assert {draft["In-Reply-To"] for _flags, draft in suggested} >= asked
    assert all(b"\\Draft" in flags for flags, _draft in suggested)

    # An assistant answers a few consultas; the copies land in Sent.
    consultas = [t for t in opened if t["kind"] == "consulta"][:ANSWERED]
    with d.imap() as client:
        sent = client.find_special_folder(b"\\Sent")
        for ticket in consultas:
            number = int(re.search(r"ciudadano(\d+)@", ticket["citizen"]).group(1))
            message_id = message_from_bytes(mails[number][2], policy=default_policy)["Message-ID"]
            client.append(sent, answer(d, ticket, message_id), (b"\\Seen",),
                          at("2026-11-23 19:10"))
    before = snapshot(d)
    acks = len(d.acknowledgements())

    run(d, "2026-11-23 19:30", timeout=300)

    answered = {t["ticket"] for t in tickets(d) if t["answered_at"]}
    assert answered == {t["ticket"] for t in consultas}
    # The second run opened nothing, acknowledged nothing and moved nothing.
    assert len(tickets(d)) == MAILS
    assert len(d.acknowledgements()) == acks
    assert snapshot(d) == before
    # Every move, keyword, draft and mail buzon planned was taken by the server.
    assert unapplied(d) == []


def test_check_reports_the_server_and_its_writes_succeed(server_deployment, imap_server):
    """`buzon check` reaches the server, reports its namespace and features, and its write
    probe (create, append, keyword, move, expunge, delete) passes; a server without
    custom keywords is reported, not refused: buzon keeps to folders and \\Flagged."""
    result = server_deployment.buzon("check", check=False)
    prefix, separator = imap_server.namespace
    assert f"prefix {prefix!r}, separator {separator!r}" in result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    assert "write probe passed" in result.stdout
    keywordless = "keeps no custom keywords" in result.stdout
    assert keywordless == (not getattr(imap_server, "keywords", True)), result.stdout
