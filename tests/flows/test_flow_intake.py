"""End-to-end intake on the real Dovecot and SMTP server, driven through `buzon run --once`."""

from __future__ import annotations

import json
import re
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from conftest import fixture_bytes

LIMA = ZoneInfo("America/Lima")
TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=LIMA)


def tickets(deployment) -> list[dict]:
    return [json.loads(line) for line in deployment.buzon("tickets", "--json").stdout.splitlines()]


def mail(sender: str, subject: str, body: str = "Buenos días, tengo una consulta.",
         **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "consultas@osce.test"
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return bytes(message)


def test_replies_join_their_ticket_by_subject_and_by_references(deployment):
    deployment.deliver(fixture_bytes("plain_consulta_seace.eml"), TUESDAY)
    deployment.buzon("run", "--once")
    [ticket] = tickets(deployment)
    [ack] = deployment.acknowledgements("juan.perez@gmail.test")
    ack_id = ack.message["Message-ID"]

    by_subject = mail("Juan Pérez <juan.perez@gmail.test>",
                      f"RE: [{ticket['ticket']}] Recibimos su consulta")
    by_references = mail("Juan Pérez <juan.perez@gmail.test>", "Re: mi consulta",
                         In_Reply_To=ack_id, References=ack_id)
    deployment.deliver(by_subject, TUESDAY)
    deployment.deliver(by_references, TUESDAY)
    deployment.buzon("run", "--once")

    assert len(tickets(deployment)) == 1
    assert len(deployment.folder_uids("SEACE")) == 3  # followed their ticket's folder
    assert len(deployment.acknowledgements("juan.perez@gmail.test")) == 1


def test_a_mail_without_message_id_is_never_merged_with_another(deployment):
    raw = fixture_bytes("no_message_id.eml")
    deployment.deliver(raw, TUESDAY)
    deployment.deliver(raw.replace(b"Subject: ", b"Subject: Otra "), TUESDAY)
    deployment.buzon("run", "--once")
    assert len(tickets(deployment)) == 2


def test_automatic_mail_is_filed_and_never_answered(deployment):
    automatic = [
        "auto_submitted_auto_replied.eml", "precedence_bulk.eml", "precedence_junk.eml",
        "precedence_list.eml", "x_auto_response_suppress.eml", "list_unsubscribe_newsletter.eml",
        "empty_return_path.eml", "mailer_daemon_sender.eml", "postmaster_sender.eml",
        "noreply_sender.eml", "delivery_report_multipart_report.eml",
    ]
    for name in automatic:
        deployment.deliver(fixture_bytes(name), TUESDAY)
    deployment.buzon("run", "--once")
    assert len(deployment.folder_uids("Automáticos")) == len(automatic)
    assert deployment.acknowledgements() == []
    assert tickets(deployment) == []


def test_acknowledgements_per_sender_are_capped_per_day(deployment):
    for number in range(7):
        deployment.deliver(mail("robot@empresa.test", f"Consulta número {number}"), TUESDAY)
    deployment.buzon("run", "--once")
    assert len(tickets(deployment)) == 7
    assert len(deployment.acknowledgements("robot@empresa.test")) == 5


def test_a_broken_mail_goes_to_quarantine_and_the_next_is_still_handled(deployment):
    deployment.deliver(fixture_bytes("garbage_not_a_mail.eml"), TUESDAY)
    deployment.deliver(fixture_bytes("no_from_header.eml"), TUESDAY)
    deployment.deliver(fixture_bytes("plain_consulta_rnp.eml"), TUESDAY)
    deployment.buzon("run", "--once")
    assert len(deployment.folder_uids("Cuarentena")) == 2
    assert len(deployment.folder_uids("RNP")) == 1
    assert len(tickets(deployment)) == 1


def test_suggestions_get_an_s_ticket_and_stay_in_their_inbox(deployment):
    deployment.deliver(fixture_bytes("sugerencia_simple.eml"), TUESDAY, mailbox="sugerencias")
    deployment.buzon("run", "--once")
    [ticket] = tickets(deployment)
    assert re.fullmatch(r"S-2026-\d{6}", ticket["ticket"])
    assert ticket["deadline"] == "2026-12-10T10:00:00-05:00"  # 10 working days, Dec 8-9 off
    assert len(deployment.folder_uids("INBOX", mailbox="sugerencias")) == 1
    # Its id is on the card beside it, also in the inbox.
    assert [s.split(":")[0] for s in deployment.card_subjects("INBOX", "sugerencias")] == [
        f"Ficha {ticket['ticket']}"]
    [ack] = deployment.acknowledgements("martin.alarcon@gmail.test")
    assert f"[{ticket['ticket']}]" in ack.message["Subject"]
    assert ack.message["From"].addresses[0].addr_spec == deployment.address("sugerencias")


def test_the_same_mail_twice_makes_one_ticket(deployment):
    raw = fixture_bytes("plain_consulta_legal.eml")
    deployment.deliver(raw, TUESDAY)
    deployment.deliver(raw, TUESDAY)
    deployment.buzon("run", "--once")
    assert len(tickets(deployment)) == 1
    assert len(deployment.folder_uids("Legal")) == 2
    assert len(deployment.acknowledgements()) == 1


def test_two_mails_sharing_a_message_id_but_not_content_are_two_tickets(deployment):
    deployment.deliver(fixture_bytes("duplicate_message_id_a.eml"), TUESDAY)
    deployment.deliver(fixture_bytes("duplicate_message_id_b.eml"), TUESDAY)
    deployment.buzon("run", "--once")
    assert len(tickets(deployment)) == 2


def test_header_injection_through_the_subject_reaches_no_mail(deployment):
    deployment.deliver(fixture_bytes("subject_header_injection_rfc2047.eml"), TUESDAY)
    deployment.buzon("run", "--once")
    [ack] = deployment.acknowledgements()
    assert ack.recipients == ["juan.inyeccion@gmail.test"]
    headers = ack.data.split(b"\n\n", 1)[0].replace(b"\r", b"")
    assert not re.search(rb"^Bcc:", headers, re.MULTILINE | re.IGNORECASE)
    assert "Bcc" not in ack.message.keys()


def test_a_second_pass_changes_nothing(deployment):
    for name in ("plain_consulta_seace.eml", "plain_consulta_rnp.eml", "html_only.eml"):
        deployment.deliver(fixture_bytes(name), TUESDAY)
    deployment.buzon("run", "--once")
    before = (tickets(deployment), len(deployment.acknowledgements()),
              {f: deployment.folder_uids(f) for f in ("INBOX", "SEACE", "RNP", "Por clasificar")})
    deployment.buzon("run", "--once", "--now", "2026-11-24T12:00:00-05:00")
    after = (tickets(deployment), len(deployment.acknowledgements()),
             {f: deployment.folder_uids(f) for f in ("INBOX", "SEACE", "RNP", "Por clasificar")})
    assert before == after
