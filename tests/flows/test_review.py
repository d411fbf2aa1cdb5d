"""Legal answers approved by a supervisor by mail, on the real Dovecot and SMTP server:
approval, observation, and every way an approval must be refused."""

from __future__ import annotations

import json
import re
from email.message import EmailMessage

import pytest
from conftest import at, fixture_bytes, run

CITIZEN = "logistica@muni-ica.gob.test"
DRAFT = "Estimada Rosa:\n\nLa penalidad por mora se calcula por cada día de atraso...\n\nAna Torres"




def tickets(d) -> dict:
    return {r["ticket"]: r for r in map(json.loads, d.buzon("tickets", "--json").stdout.split(
        "\n")[:-1])}


def draft(d, text: str = DRAFT, fixture: str = "plain_consulta_legal.eml") -> bytes:
    original = fixture_bytes(fixture).decode("utf-8", "replace")
    message_id = re.search(r"^Message-ID:\s*(\S+)", original, re.M | re.I).group(1)
    message = EmailMessage()
    message["From"] = d.address("consultas")
    message["To"] = CITIZEN
    message["Subject"] = "RE: Consulta sobre penalidad por mora"
    message["In-Reply-To"] = message_id
    message["References"] = message_id
    message.set_content(text)
    return bytes(message)


def supervisor_reply(request, body: str, sender: str = "Supervisora <supervisor@osce.test>",
                     subject: str | None = None, quote: bool = True,
                     headers: tuple = ()) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = request.message["From"]
    message["Subject"] = subject if subject is not None else f"RE: {request.message['Subject']}"
    message["In-Reply-To"] = request.message["Message-ID"]
    message["Message-ID"] = f"<sup.{abs(hash((sender, body, subject)))}@osce.test>"
    for name, value in headers:
        message[name] = value
    quoted = ""
    if quote:
        text = request.message.get_body(("plain",)).get_content()
        quoted = "\n\nEl jue., Supervisor escribió:\n" + "\n".join(f"> {line}"
                                                                    for line in text.splitlines())
    message.set_content(body + quoted)
    return bytes(message)


@pytest.fixture
def legal(deployment):
    deployment.config["people"]["supervisors"] = ["supervisor@osce.test", "supervisora2@osce.test"]
    deployment.write_config()
    deployment.deliver(fixture_bytes("plain_consulta_legal.eml"), at("2026-11-26 09:00"))
    run(deployment, "2026-11-26 09:05")
    return deployment


def request_review(d, text: str = DRAFT, now: str = "2026-11-26 10:00",
                   fixture: str = "plain_consulta_legal.eml"):
    d.deliver(draft(d, text, fixture), at(now), folder="Legal/Revisión")
    run(d, now)
    return d.mails("revision_solicitud", "supervisor@osce.test")[-1]


def answers_to_citizen(d) -> list:
    return d.mails("answer", CITIZEN)


def test_approval_sends_exactly_the_reviewed_draft(legal):
    request = request_review(legal)
    # The proof is the request's Message-ID, which a reply carries back: never the Subject.
    assert ".cap-" in request.message["Message-ID"] and "cap-" not in request.message["Subject"]
    body = request.message.get_body(("plain",)).get_content()
    assert "penalidad por mora se calcula" in body and "APROBADO" in body
    legal.deliver(supervisor_reply(request, "Aprobado, gracias."), at("2026-11-26 10:30"))
    run(legal, "2026-11-26 10:35")
    [answer] = answers_to_citizen(legal)
    assert answer.message.get_body(("plain",)).get_content().strip() == DRAFT
    assert answer.message["Auto-Submitted"] is None  # a person's answer, relayed
    [ticket] = tickets(legal).values()
    assert f"[{ticket['ticket']}]" in answer.message["Subject"]
    assert answer.message["In-Reply-To"] == re.search(
        rb"Message-ID:\s*(\S+)", fixture_bytes("plain_consulta_legal.eml"), re.I).group(1).decode()
    assert ticket["status"] == "answered" and ticket["answered_at"]
    with legal.imap() as client:
        client.select_folder("Sent")
        assert client.search(["HEADER", "Message-ID", answer.message["Message-ID"]])
    assert len(legal.folder_uids("Legal/Aprobados")) == 1
    assert legal.folder_uids("Legal/Revisión") == []
    assert legal.mails("revision_aprobada", "asistente@osce.test")
    run(legal, "2026-11-26 11:00")
    assert len(answers_to_citizen(legal)) == 1


def test_the_approved_answer_is_the_drafters_and_the_register_names_the_approver(legal):
    from workbook_tables import records, workbook

    legal.config["people"]["signatures"] = {"asistente@osce.test": "Ana Torres"}
    legal.write_config()
    # Written in the shared mailbox: the signature tells who drafted it.
    request = request_review(legal)
    legal.deliver(supervisor_reply(request, "APROBADO"), at("2026-11-26 10:30"))
    run(legal, "2026-11-26 10:35")
    assert len(answers_to_citizen(legal)) == 1
    assert legal.mails("revision_aprobada", "asistente@osce.test")
    out = legal.tmp / "registro.xlsx"
    legal.buzon("report", "daily", "--date", "2026-11-26", "--out", str(out))
    [row] = records(workbook(out)["Registro del día"])
    assert (row["Asistente"], row["Aprobó"]) == ("Ana Torres", "supervisor@osce.test")


def test_observation_then_approval_of_the_corrected_draft(legal):
    request = request_review(legal, "Borrador con un error.")
    legal.deliver(supervisor_reply(request, "OBSERVADO: cite el artículo correcto.\nGracias"),
                  at("2026-11-26 10:30"))
    run(legal, "2026-11-26 10:35")
    [returned] = legal.mails("revision_observada", "asistente@osce.test")
    assert "cite el artículo correcto" in returned.message.get_body(("plain",)).get_content()
    assert len(legal.folder_uids("Legal/Observados")) == 1
    assert answers_to_citizen(legal) == []
    second = request_review(legal, DRAFT + "\nArtículo corregido.", now="2026-11-26 11:00")
    assert second.message["Message-ID"] != request.message["Message-ID"]  # a new capability
    legal.deliver(supervisor_reply(second, "APROBADO"), at("2026-11-26 11:30"))
    run(legal, "2026-11-26 11:35")
    [answer] = answers_to_citizen(legal)
    assert "Artículo corregido." in answer.message.get_body(("plain",)).get_content()
    assert "Borrador con un error" not in answer.message.get_body(("plain",)).get_content()


def rejected(d) -> list[str]:
    """The coordinators' digests of refused commands."""
    return [m.message.get_body(("plain",)).get_content()
            for m in d.mails("comandos_rechazados", "coordinador@osce.test")]


def test_a_used_token_does_not_work_twice(legal):
    request = request_review(legal)
    approval = supervisor_reply(request, "APROBADO")
    legal.deliver(approval, at("2026-11-26 10:30"))
    run(legal, "2026-11-26 10:35")
    legal.deliver(approval.replace(b"Message-ID: <sup.", b"Message-ID: <again."),
                  at("2026-11-26 10:40"))
    run(legal, "2026-11-26 10:45")
    assert len(answers_to_citizen(legal)) == 1
    assert any("replay" in text for text in rejected(legal))


def test_an_expired_token_is_refused(legal):
    legal.config["review"] = {"token_hours": 1}
    legal.write_config()
    request = request_review(legal)
    legal.deliver(supervisor_reply(request, "APROBADO"), at("2026-11-26 11:30"))
    run(legal, "2026-11-26 11:35")
    assert answers_to_citizen(legal) == []
    assert any("expired" in text for text in rejected(legal))


def test_a_supervisor_looking_message_from_someone_else_is_refused(legal):
    request = request_review(legal)
    legal.deliver(supervisor_reply(request, "APROBADO", sender="Jefe <jefe@osce.test>"),
                  at("2026-11-26 10:30"))
    run(legal, "2026-11-26 10:35")
    assert answers_to_citizen(legal) == []
    assert any("not a configured supervisor" in text for text in rejected(legal))


def test_a_forged_from_fails_on_the_border_servers_authentication_results(legal):
    legal.config["trust"] = {"authserv_id": "mx.osce.test"}
    legal.write_config()
    request = request_review(legal)
    forged = (("Authentication-Results",
               "mx.osce.test; dkim=fail header.d=osce.test; dmarc=fail header.from=osce.test"),
              ("Authentication-Results", "mx.evil.test; dkim=pass header.d=osce.test"))
    legal.deliver(supervisor_reply(request, "APROBADO", headers=forged), at("2026-11-26 10:30"))
    run(legal, "2026-11-26 10:35")
    assert answers_to_citizen(legal) == []
    assert any("does not vouch" in text for text in rejected(legal))
    # The forged reply carried the request's capability back: it is spent, and the
    # supervisors get a new request, to which the genuine reply answers.
    renewed = legal.mails("revision_solicitud", "supervisor@osce.test")[-1]
    assert renewed.message["Message-ID"] != request.message["Message-ID"]
    genuine = (("Authentication-Results",
                "mx.osce.test; dkim=pass header.d=osce.test; dmarc=pass header.from=osce.test"),)
    legal.deliver(supervisor_reply(request, "APROBADO, revisado.", headers=genuine),
                  at("2026-11-26 10:38"))
    run(legal, "2026-11-26 10:39")
    assert answers_to_citizen(legal) == []  # the spent one no longer works
    legal.deliver(supervisor_reply(renewed, "APROBADO, revisado.", headers=genuine),
                  at("2026-11-26 10:40"))
    run(legal, "2026-11-26 10:45")
    assert len(answers_to_citizen(legal)) == 1


def test_a_token_only_in_forwarded_text_does_not_count(legal):
    request = request_review(legal)
    ticket_id = next(iter(tickets(legal)))
    text = request.message.get_body(("plain",)).get_content()
    body = ("APROBADO\n\n---------- Forwarded message ---------\nDe: buzon\n\n" + text)
    legal.deliver(supervisor_reply(request, body, subject=f"Fwd: [{ticket_id}] revisión",
                                   quote=False), at("2026-11-26 10:30"))
    run(legal, "2026-11-26 10:35")
    assert answers_to_citizen(legal) == []
    assert any("forwarded request is not a reply" in t for t in rejected(legal))


def test_two_approvals_racing_send_one_answer(legal):
    request = request_review(legal)
    legal.deliver(supervisor_reply(request, "APROBADO"), at("2026-11-26 10:30"))
    legal.deliver(supervisor_reply(request, "APROBADO",
                                   sender="Supervisora 2 <supervisora2@osce.test>"),
                  at("2026-11-26 10:31"))
    run(legal, "2026-11-26 10:35")
    assert len(answers_to_citizen(legal)) == 1
    [told] = legal.mails("revision_ya_decidida", "supervisora2@osce.test")
    assert "ya había sido decidida" in told.message.get_body(("plain",)).get_content()


def test_nothing_from_the_citizens_subject_reaches_a_header(deployment):
    deployment.write_config(routing=[{"name": "todo", "folder": "Legal",
                                      "from_patterns": ["."]}])
    deployment.deliver(fixture_bytes("subject_header_injection_rfc2047.eml"),
                       at("2026-11-26 09:00"))
    run(deployment, "2026-11-26 09:05")
    request = request_review(deployment, fixture="subject_header_injection_rfc2047.eml")
    deployment.deliver(supervisor_reply(request, "APROBADO"), at("2026-11-26 10:30"))
    run(deployment, "2026-11-26 10:35")
    assert len(deployment.mails("answer")) == 1
    for mail in deployment.sent_by_buzon():
        head = mail.data.split(b"\r\n\r\n", 1)[0]
        assert not re.search(rb"^Bcc:", head, re.M | re.I)
        assert "Bcc" not in mail.message.keys()
