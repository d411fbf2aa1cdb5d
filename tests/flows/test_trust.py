"""Forged and exposed commands by mail, against the real daemon on the real Dovecot: none
reaches a citizen or changes a ticket; each is traced and told to the coordinators in one
digest. The legitimate paths still work, from replies as real clients write them."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import at, fixture_bytes, run

# The organs' protocol to the citizen, with automatic relay (an agency's choice): every
# organ answer reaches the citizen as written, the strictest case. The manual's default
# is tests/flows/test_relay.py.
pytestmark = pytest.mark.usefixtures("automatic_relay")


REPLIES = Path(__file__).resolve().parent.parent / "data" / "replies"
SUPPLIER = "ventas@ferreteriasanmartin.test"
CITIZEN = "logistica@muni-ica.gob.test"
LONG_LINES = policy.default.clone(max_line_length=998)  # Message-IDs on one line


def tickets(d) -> dict:
    return {r["ticket"]: r for r in map(json.loads, d.buzon("tickets", "--json").stdout.split(
        "\n")[:-1])}


def body(mail) -> str:
    return mail.message.get_body(("plain",)).get_content()


def digests(d) -> str:
    return "\n".join(body(m) for m in d.mails("comandos_rechazados", "coordinador@osce.test"))


def client_reply(fixture: str, request, sender: str, *, subject: str | None = None,
                 reply_to=None, extra: tuple = (), message_id: str = "") -> bytes:
    """A reply written in a real client's style (a fixture of tests/data/replies), made to
    answer `request` (a mail buzon sent) from `sender`."""
    message = message_from_bytes((REPLIES / fixture).read_bytes(), policy=LONG_LINES)
    for name in ("From", "To", "Subject", "In-Reply-To", "References", "Message-ID",
                 "Authentication-Results", "Received"):
        del message[name]
    for name, value in extra:  # trace fields on top, as servers add them
        message[name] = value
    message["From"] = sender
    message["To"] = request.message["From"]
    message["Subject"] = subject if subject is not None else f"RE: {request.message['Subject']}"
    thread = (reply_to or request).message["Message-ID"]
    message["In-Reply-To"] = thread
    message["References"] = thread
    message["Message-ID"] = message_id or f"<{abs(hash((fixture, sender, thread)))}@x.test>"
    return message.as_bytes(policy=LONG_LINES)


def plain_mail(sender: str, subject: str, text: str, in_reply_to: str = "") -> bytes:
    message = EmailMessage(policy=LONG_LINES)
    message["From"] = sender
    message["To"] = "consultas@osce.test"
    message["Subject"] = subject
    message["Message-ID"] = f"<{abs(hash((sender, subject, text)))}@x.test>"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    message.set_content(text)
    return message.as_bytes()


def open_incident(d, when: str = "2026-11-16") -> str:
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), at(f"{when} 09:00"))
    run(d, f"{when} 09:05")
    d.move_all("RNP", "Incidencias/Media")
    run(d, f"{when} 10:00")
    return next(t["ticket"] for t in tickets(d).values() if t["kind"] == "incidencia")


def unchanged(d, ticket_id: str, before: dict) -> bool:
    now = tickets(d)[ticket_id]
    return all(now[key] == before[key] for key in ("status", "answered_at", "folder"))


def nothing_to(d, citizen: str, *templates: str) -> bool:
    return all(d.mails(template, citizen) == [] for template in templates)


INCIDENT_ANSWERS = ("incidencia_respuesta", "incidencia_requerimiento")


# Organs ---------------------------------------------------------------------------------

def test_an_organs_from_with_no_proof_and_a_guessed_number_change_nothing(deployment):
    d = deployment
    incident = open_incident(d)
    before = tickets(d)[incident]
    phishing = "Su incidencia está resuelta: ingrese a http://osce-pagos.test para validar."
    # Written as a new mail from the organ's own address, the ticket number in the Subject.
    d.deliver(plain_mail("DRNP <drnp@osce.test>", f"RE: [{incident}] Incidencia", phishing),
              at("2026-11-16 11:00"))
    # And guessed numbers for the other kinds, from the organ and from outside.
    for guess in ("C-2026-000002", "S-2026-000001", "I-2026-000002"):
        d.deliver(plain_mail("drnp@osce.test", f"[{guess}] Respuesta", phishing),
                  at("2026-11-16 11:01"))
    run(d, "2026-11-16 11:05")
    assert nothing_to(d, SUPPLIER, *INCIDENT_ANSWERS)
    assert phishing not in "".join(body(m) for m in d.sent_by_buzon(SUPPLIER))
    assert unchanged(d, incident, before)
    report = digests(d)
    assert len(d.mails("comandos_rechazados", "coordinador@osce.test")) == 1  # one digest
    assert f"{incident}" in report and "a ticket number proves nothing" in report
    assert "osce-pagos" not in report  # the digest quotes no attacker text
    assert "command refused" in d.buzon("ticket", incident).stdout


def test_a_stolen_capability_used_by_the_wrong_role_or_sender_is_spent(deployment):
    d = deployment
    incident = open_incident(d)
    [request] = d.mails("incidencia_organo", "drnp@osce.test")
    before = tickets(d)[incident]
    # Someone who saw the organ's request answers it from their own address...
    d.deliver(client_reply("gmail_es_new_question.eml", request, "Atacante <drnp@osce-test.test>"),
              at("2026-11-16 11:00"))
    # ...and the supervisors' role cannot use an organ's proof either.
    d.deliver(client_reply("iphone_es_verdict_aprobado.eml", request, "supervisor@osce.test",
                           message_id="<sup-steals@x.test>"), at("2026-11-16 11:01"))
    run(d, "2026-11-16 11:05")
    assert nothing_to(d, SUPPLIER, *INCIDENT_ANSWERS)
    assert unchanged(d, incident, before)
    report = digests(d)
    assert "drnp@osce-test.test is not a configured address of organ DRNP" in report
    assert "supervisor@osce.test" in report
    # The proof it carried is spent: the organ gets a new request at its own address, and
    # its genuine answer to the old one no longer counts.
    renewed = d.mails("nueva_referencia", "drnp@osce.test")
    assert renewed and all(SUPPLIER not in m.recipients for m in renewed)
    d.deliver(client_reply("outlook_es_organ_answer.eml", request, "drnp@osce.test"),
              at("2026-11-16 12:00"))
    run(d, "2026-11-16 12:05")
    assert nothing_to(d, SUPPLIER, *INCIDENT_ANSWERS)
    d.deliver(client_reply("outlook_es_organ_answer.eml", request, "drnp@osce.test",
                           reply_to=renewed[-1]), at("2026-11-16 12:30"))
    run(d, "2026-11-16 12:35")
    assert len(d.mails("incidencia_respuesta", SUPPLIER)) == 1
    assert tickets(d)[incident]["status"] == "resolved"


def test_a_capability_for_another_ticket_is_refused(deployment):
    d = deployment
    first = open_incident(d)
    d.deliver(plain_mail("Proveedora <otra@proveedora.test>", "Constancia RNP con error",
                         "Mi constancia del RNP sale con otra razón social."),
              at("2026-11-16 12:00"))
    run(d, "2026-11-16 12:05")
    d.move_all("RNP", "Incidencias/Alta")  # the same organ, DRNP, answers both
    run(d, "2026-11-16 12:30")
    second = max(t["ticket"] for t in tickets(d).values() if t["kind"] == "incidencia")
    assert second != first
    request_for_second = next(m for m in d.mails("incidencia_organo")
                              if second in m.message["Subject"])
    organ = request_for_second.recipients[0]
    before = tickets(d)[first]
    # The proof of the second incident, in a reply that says it is about the first.
    d.deliver(client_reply("thunderbird_es_organ_answer.eml", request_for_second, organ,
                           subject=f"RE: [{first}] Incidencia"), at("2026-11-16 13:00"))
    run(d, "2026-11-16 13:05")
    assert unchanged(d, first, before)
    assert d.mails("incidencia_respuesta") == []
    assert "another ticket" in digests(d)


# Supervisors ------------------------------------------------------------------------------

@pytest.fixture
def legal(deployment):
    deployment.deliver(fixture_bytes("plain_consulta_legal.eml"), at("2026-11-26 09:00"))
    run(deployment, "2026-11-26 09:05")
    return deployment


def draft(d) -> bytes:
    message = EmailMessage()
    message["From"] = d.address("consultas")
    message["To"] = CITIZEN
    message["Subject"] = "RE: Consulta sobre penalidad por mora"
    message["In-Reply-To"] = "<plain-consulta-legal.2026@mail.muni-ica.gob.test>"
    message.set_content("Estimada usuaria:\n\nLa penalidad por mora se calcula así...")
    return bytes(message)


def review_request(d, now: str = "2026-11-26 10:00"):
    d.deliver(draft(d), at(now), folder="Legal/Revisión")
    run(d, now)
    return d.mails("revision_solicitud", "supervisor@osce.test")[-1]


@pytest.mark.parametrize("sender", [
    '"supervisor@osce.test" <attacker@evil.test>',
    "supervisor@osce.test.evil.test",
    "supervisor@0sce.test",
    "supervisor+x@osce.test",
    "=?utf-8?b?c3VwZXJ2aXPQvnJAb3NjZS50ZXN0?= <x@evil.test>",  # Cyrillic o in the name
])
def test_display_names_and_look_alike_addresses_are_not_the_supervisor(legal, sender):
    request = review_request(legal)
    before = next(iter(tickets(legal).values()))
    legal.deliver(client_reply("iphone_es_verdict_aprobado.eml", request, sender),
                  at("2026-11-26 10:30"))
    run(legal, "2026-11-26 10:35")
    assert legal.mails("answer", CITIZEN) == []
    assert unchanged(legal, before["ticket"], before)
    assert "is not a configured supervisor" in digests(legal)


def test_an_exposed_capability_is_spent_and_a_new_request_goes_out(legal):
    request = review_request(legal)
    # The supervisor replies with no verdict: the reply, with the request's Message-ID in
    # its headers, is filed where every assistant can read it.
    legal.deliver(client_reply("outlook_es_organ_ack.eml", request, "supervisor@osce.test"),
                  at("2026-11-26 10:20"))
    run(legal, "2026-11-26 10:25")
    requests = legal.mails("revision_solicitud", "supervisor@osce.test")
    assert len(requests) == 2
    # Whoever read it cannot approve with it, even from the supervisor's address.
    legal.deliver(client_reply("iphone_es_verdict_aprobado.eml", request, "supervisor@osce.test",
                               message_id="<replayed@x.test>"), at("2026-11-26 10:30"))
    run(legal, "2026-11-26 10:35")
    assert legal.mails("answer", CITIZEN) == []
    assert "already used" in digests(legal)
    # The supervisor answers the new request from a phone: approved.
    legal.deliver(client_reply("iphone_es_verdict_aprobado.eml", requests[-1],
                               "Supervisora <supervisor@osce.test>"), at("2026-11-26 10:40"))
    run(legal, "2026-11-26 10:45")
    [answer] = legal.mails("answer", CITIZEN)
    assert "La penalidad por mora se calcula así" in body(answer)


BORDER = "mx.osce.test"
PASS = f"{BORDER}; dkim=pass header.d=osce.test; dmarc=pass header.from=osce.test"
FAIL = f"{BORDER}; dkim=fail header.d=osce.test; dmarc=fail header.from=osce.test"


@pytest.mark.parametrize(("trace", "why"), [
    # The border says fail; the attacker's own copy of a pass sits lower down.
    ((("Authentication-Results", FAIL), ("Received", "from evil.test by mx.osce.test"),
      ("Authentication-Results", PASS)), "it says"),
    # The border said nothing; a pass claimed in its name came with the mail.
    ((("Received", "from evil.test by mx.osce.test"), ("Authentication-Results", PASS)),
     "no Authentication-Results from mx.osce.test"),
    # Another server's pass counts for nothing.
    ((("Authentication-Results", "mx.evil.test; dmarc=pass header.from=osce.test"),),
     "no Authentication-Results from mx.osce.test"),
])
def test_only_the_borders_topmost_authentication_results_count(legal, trace, why):
    legal.config["trust"] = {"authserv_id": BORDER}
    legal.write_config()
    request = review_request(legal)
    legal.deliver(client_reply("iphone_es_verdict_aprobado.eml", request, "supervisor@osce.test",
                               extra=trace), at("2026-11-26 10:30"))
    run(legal, "2026-11-26 10:35")
    assert legal.mails("answer", CITIZEN) == []
    assert why in digests(legal)
    # The genuine one, with the border's pass on top, answers the renewed request.
    renewed = legal.mails("revision_solicitud", "supervisor@osce.test")[-1]
    legal.deliver(client_reply("iphone_es_verdict_aprobado.eml", renewed, "supervisor@osce.test",
                               extra=(("Authentication-Results", PASS),
                                      ("Received", "from mail.osce.test by mx.osce.test"))),
                  at("2026-11-26 10:40"))
    run(legal, "2026-11-26 10:45")
    assert len(legal.mails("answer", CITIZEN)) == 1


def test_internal_hops_above_the_border_are_allowed_for(legal):
    legal.config["trust"] = {"authserv_id": BORDER, "internal_hops": 1}
    legal.write_config()
    request = review_request(legal)
    legal.deliver(client_reply("outlook_es_verdict_observado.eml", request,
                               "supervisor@osce.test",
                               extra=(("Received", "from mx.osce.test by imap.osce.test (LMTP)"),
                                      ("Authentication-Results", PASS),
                                      ("Received", "from mail.osce.test by mx.osce.test"))),
                  at("2026-11-26 10:30"))
    run(legal, "2026-11-26 10:35")
    assert legal.mails("revision_observada", "asistente@osce.test")


# Surveys ---------------------------------------------------------------------------------

def test_a_survey_score_counts_only_from_the_citizen_answering_the_survey(deployment):
    d = deployment
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), at("2026-11-16 09:00"))
    run(d, "2026-11-16 09:05")
    d.move_all("RNP", "Atendidos")
    run(d, "2026-11-16 10:00")
    [survey] = d.mails("encuesta", SUPPLIER)
    references = survey.message["References"].split()
    ticket_id = next(iter(tickets(d)))
    assert all("muni" not in r and ".cap-" not in r for r in references)
    d.deliver(client_reply("gmail_es_courtesy_gracias.eml", survey, "otro@evil.test"),
              at("2026-11-16 11:00"))
    run(d, "2026-11-16 11:05")
    assert "otro@evil.test is not a configured citizen of the ticket" in digests(d)
    trace = d.buzon("ticket", ticket_id).stdout
    assert "survey answered" not in trace


def test_a_plain_citizen_follow_up_is_no_command_and_not_reported(deployment):
    d = deployment
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), at("2026-11-16 09:00"))
    run(d, "2026-11-16 09:05")
    [ack] = d.acknowledgements(SUPPLIER)
    d.deliver(client_reply("gmail_es_new_question.eml", ack, SUPPLIER), at("2026-11-16 10:00"))
    run(d, "2026-11-16 10:05")
    assert d.mails("comandos_rechazados") == []
