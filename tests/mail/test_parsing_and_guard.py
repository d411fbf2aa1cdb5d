"""Parsing of the raw .eml fixtures and the automatic-mail guard (pure)."""

from __future__ import annotations

import pytest
from conftest import fixture_bytes

from daemon.config import AutomaticMailSettings
from daemon.mail.automatic import automatic_signal
from daemon.mail.parsing import parse_message

NOREPLY = AutomaticMailSettings().noreply_patterns
OWN = ["buzon.osce.test"]


def signal(name: str) -> str | None:
    return automatic_signal(parse_message(fixture_bytes(name)), NOREPLY, OWN)


def test_windows1252_subject_sender_and_body_are_decoded():
    mail = parse_message(fixture_bytes("windows1252_subject_rfc2047.eml"))
    assert mail.subject == "¿Cómo renuevo mi inscripción? — Año 2026"
    assert mail.from_name == "José Ñañez"
    assert "€" in mail.text and "“" in mail.text and "ñ" in mail.text


def test_iso8859_1_quoted_printable_body():
    mail = parse_message(fixture_bytes("iso8859_1_body_quoted_printable.eml"))
    assert "á" in mail.text or "ñ" in mail.text
    assert "=E1" not in mail.text


def test_html_only_mail_becomes_text_without_script_or_style():
    mail = parse_message(fixture_bytes("html_only.eml"))
    assert mail.text
    assert "<p>" not in mail.text and "{" not in mail.text
    assert "&aacute;" not in mail.text


def test_mail_without_message_id_is_still_a_mail():
    mail = parse_message(fixture_bytes("no_message_id.eml"))
    assert mail.message_id == "" and mail.from_address and not mail.problem


def test_header_injection_is_flattened_to_one_line():
    mail = parse_message(fixture_bytes("subject_header_injection_rfc2047.eml"))
    assert mail.subject == "Hola Bcc: x@y"
    assert "\n" not in mail.from_name and "\r" not in mail.from_name
    assert mail.from_address == "juan.inyeccion@gmail.test"


@pytest.mark.parametrize("name", ["garbage_not_a_mail.eml", "no_from_header.eml"])
def test_mail_that_cannot_be_handled_has_a_problem_not_an_exception(name):
    assert parse_message(fixture_bytes(name)).problem


def test_reply_references_are_read():
    mail = parse_message(fixture_bytes("quoted_reply_outlook.eml"))
    assert "<ack.C-2026-000001.x1@buzon.osce.test>" in mail.thread_ids


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("auto_submitted_auto_replied.eml", "Auto-Submitted"),
        ("precedence_bulk.eml", "Precedence: bulk"),
        ("precedence_junk.eml", "Precedence: junk"),
        ("precedence_list.eml", "Precedence: list"),
        ("x_auto_response_suppress.eml", "X-Auto-Response-Suppress"),
        ("list_unsubscribe_newsletter.eml", "mailing-list header"),
        ("empty_return_path.eml", "empty Return-Path"),
        ("mailer_daemon_sender.eml", "automatic sender"),
        ("postmaster_sender.eml", "automatic sender"),
        ("noreply_sender.eml", "automatic sender"),
        ("delivery_report_multipart_report.eml", "multipart/report"),
    ],
)
def test_every_automatic_signal_is_recognised(name, expected):
    assert expected in (signal(name) or "")


@pytest.mark.parametrize(
    "name",
    ["auto_submitted_no.eml", "plain_consulta_seace.eml", "windows1252_subject_rfc2047.eml",
     "forwarded_consulta.eml", "with_attachment_pdf.eml", "html_only.eml"],
)
def test_mail_written_by_people_is_not_automatic(name):
    assert signal(name) is None


def test_mail_from_buzons_own_message_id_domain_is_automatic():
    raw = (b"From: someone@else.test\r\nMessage-ID: <ack.C-2026-000001.ab@buzon.osce.test>\r\n"
           b"Subject: loop\r\n\r\nhola\r\n")
    assert "own Message-ID domain" in automatic_signal(parse_message(raw), NOREPLY, OWN)
