"""Bad input (issue 7): public edge-case corpora and generated hostile mail through the
parser, the composer and the whole pipeline on the real Dovecot. Nothing crashes the
daemon, each mail is filed or quarantined with a reason, a 40 MB attachment is never
downloaded, and no header injection reaches a mail buzon sends."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from conftest import fixture_bytes
from edge_cases import big_attachment, cpython_corpus, generated, mailparser_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import DEFAULT_TEMPLATES_DIR
from daemon.mail.compose import build_environment, render_mail
from daemon.mail.parsing import parse_message

WHEN = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
CORPUS = cpython_corpus() + mailparser_corpus() + list(generated())
TEMPLATES = build_environment(DEFAULT_TEMPLATES_DIR)
EXPECTED_HEADERS = {"from", "to", "subject", "date", "message-id", "auto-submitted",
                    "x-auto-response-suppress", "mime-version", "in-reply-to", "references",
                    "content-type", "content-transfer-encoding"}

settings.register_profile("ci", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("soak", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def acknowledgement_for(raw: bytes) -> bytes:
    """What buzon would send back to this mail, from the real templates."""
    inbound = parse_message(raw)
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    outgoing = render_mail(
        TEMPLATES, "acuse_consulta",
        {"ticket_id": "C-2026-000001", "asunto": inbound.subject[:120],
         "nombre": inbound.from_name, "recibido": now, "recepcion_oficial": now,
         "plazo": now, "fuera_de_horario": False, "hora_corte": "16:30"},
        sender=("OECE - Atención al usuario", "consultas@osce.test"),
        recipient=inbound.reply_address or "ciudadano@correo.test",
        message_id="<ack.C-2026-000001.x@buzon.osce.test>", now=now,
        in_reply_to=inbound.message_id, references=inbound.references)
    return outgoing.raw.encode()


def assert_not_injected(raw: bytes) -> None:
    message = message_from_bytes(raw, policy=default_policy)
    names = {name.lower() for name in message.keys()}
    assert names <= EXPECTED_HEADERS, names - EXPECTED_HEADERS
    for name, value in message.items():
        assert "\n" not in str(value) and "\r" not in str(value), (name, value)


def test_the_corpus_is_there():
    assert len(CORPUS) >= 19 + (48 if cpython_corpus() else 0)


@pytest.mark.parametrize(("name", "raw"), CORPUS, ids=[name for name, _ in CORPUS])
def test_every_corpus_mail_is_parsed_and_answered_without_injection(name, raw):
    inbound = parse_message(raw)  # never raises: a problem is recorded instead
    assert inbound.problem or inbound.headers, name
    assert_not_injected(acknowledgement_for(raw))


header_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


@given(subject=header_text, name=header_text, body=st.binary(max_size=2000),
       charset=st.sampled_from(["utf-8", "iso-8859-1", "windows-1252", "x-unknown", "ascii"]))
def test_generated_mail_never_crashes_the_parser_nor_injects_a_header(subject, name, body,
                                                                      charset):
    from email.header import Header

    encoded_subject = Header(subject, "utf-8").encode()
    encoded_name = Header(name, "utf-8").encode() if name else ""
    raw = (f"From: {encoded_name} <ana@correo.test>\r\nTo: consultas@osce.test\r\n"
           f"Subject: {encoded_subject}\r\nMessage-ID: <h@correo.test>\r\n"
           f"Content-Type: text/plain; charset={charset}\r\n\r\n").encode() + body
    inbound = parse_message(raw)
    assert "\n" not in inbound.subject and "\r" not in inbound.subject
    assert_not_injected(acknowledgement_for(raw))


def mail_records(d) -> list[tuple]:
    with sqlite3.connect(d.database.removeprefix("sqlite:///")) as db:
        return db.execute("SELECT message_id, outcome, reason, destination, size, "
                          "sha256_scope FROM mail ORDER BY uid").fetchall()


def test_hostile_mail_goes_through_the_daemon_filed_or_quarantined(deployment):
    d = deployment
    offered = [(name, raw) for name, raw in CORPUS if raw.strip()]
    refused_by_server = []
    with d.imap() as client:
        for name, raw in offered:
            try:
                client.append("INBOX", raw, (), WHEN)
            except Exception:  # noqa: BLE001 - what Dovecot itself will not store
                refused_by_server.append(name)
    stored = len(offered) - len(refused_by_server)
    d.buzon("run", "--once")
    records = mail_records(d)
    assert len(records) == stored
    assert all(outcome in ("ticket", "automatic", "duplicate", "quarantine", "followup")
               for _id, outcome, *_ in records)
    assert all(reason for _id, outcome, reason, *_ in records if outcome == "quarantine")
    assert d.folder_uids("INBOX") == []
    for mail in d.sent_by_buzon():
        assert_not_injected(mail.data)
        assert not {"victima@correo.test", "x@y.test"} & set(mail.recipients)
    quarantined = [r for r in records if r[1] == "quarantine"]
    assert len(d.folder_uids("Cuarentena")) == len(quarantined)
    outcomes = {o: sum(1 for r in records if r[1] == o) for o in {r[1] for r in records}}
    print(f"{stored} stored ({refused_by_server} refused by Dovecot): {outcomes}")
    assert quarantined and outcomes.get("ticket", 0) > stored // 2


def test_a_40_mb_attachment_is_never_downloaded(deployment):
    d = deployment
    raw = big_attachment(40)
    assert len(raw) > 40_000_000
    d.deliver(raw, WHEN)
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), WHEN)
    d.buzon("run", "--once")
    records = {r[0]: r for r in mail_records(d)}
    _id, outcome, _reason, _dest, size, scope = records["<edge-attachment-40@correo.test>"]
    assert outcome == "ticket" and size > 40_000_000
    assert scope == "text"  # only the header and the text part were fetched
    assert len(d.acknowledgements()) == 2
