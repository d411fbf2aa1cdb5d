"""A citizen's "Gracias" after the answer is recorded, and is no new work: the ticket stays
answered, with its deadline and response time. A reply with a new question reopens it."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from conftest import at, fixture_bytes, run
from test_trust import client_reply, tickets

CITIZEN = "Juan Pérez <juan.perez@gmail.test>"
CITIZEN_MESSAGE_ID = "<plain-consulta-seace.2026@mail.gmail.test>"


class Mail:
    """A mail as the tests hold one: its parsed message."""

    def __init__(self, raw: bytes):
        self.message = message_from_bytes(raw, policy=policy.default)


def answered(d) -> tuple[str, Mail]:
    d.deliver(fixture_bytes("plain_consulta_seace.eml"), at("2026-11-23 10:00"))
    run(d, "2026-11-23 10:05")
    answer = EmailMessage()
    answer["From"] = d.address("consultas")
    answer["To"] = "juan.perez@gmail.test"
    answer["Subject"] = "RE: No puedo ingresar al SEACE"
    answer["Message-ID"] = "<answer.seace@osce.test>"
    answer["In-Reply-To"] = CITIZEN_MESSAGE_ID
    answer.set_content("Estimado Juan:\n\nPuede restablecer su clave desde el SEACE.\n\nAna Torres")
    d.deliver(bytes(answer), at("2026-11-23 11:00"), folder="Sent")
    run(d, "2026-11-23 11:05")
    [ticket_id] = tickets(d)
    return ticket_id, Mail(bytes(answer))


def test_thanks_from_a_phone_or_gmail_do_not_reopen(deployment):
    d = deployment
    ticket_id, answer = answered(d)
    before = tickets(d)[ticket_id]
    assert before["status"] == "answered"
    for number, fixture in enumerate(("gmail_es_courtesy_gracias.eml", "iphone_es_courtesy.eml",
                                      "samsung_es_courtesy_ok_recibido.eml")):
        d.deliver(client_reply(fixture, answer, CITIZEN, message_id=f"<thanks{number}@x.test>"),
                  at("2026-11-24 09:00"))
    run(d, "2026-11-24 09:05")
    after = tickets(d)[ticket_id]
    assert (after["status"], after["answered_at"], after["deadline"]) == (
        before["status"], before["answered_at"], before["deadline"])
    assert d.buzon("ticket", ticket_id).stdout.count("courtesy reply") == 3
    assert len(d.acknowledgements()) == 1  # no new ticket, no new acknowledgement


def test_a_new_question_after_thanks_reopens(deployment):
    d = deployment
    ticket_id, answer = answered(d)
    d.deliver(client_reply("gmail_es_new_question.eml", answer, CITIZEN),
              at("2026-11-24 09:00"))
    run(d, "2026-11-24 09:05")
    ticket = tickets(d)[ticket_id]
    assert ticket["status"] == "reopened" and ticket["answered_at"] is None


def test_with_new_tickets_for_follow_ups_thanks_open_none_and_a_question_opens_one(deployment):
    d = deployment
    d.write_config(followups={"after_answer": "new_ticket"})
    ticket_id, answer = answered(d)
    d.deliver(client_reply("iphone_es_courtesy.eml", answer, CITIZEN,
                           message_id="<thanks@x.test>"), at("2026-11-24 09:00"))
    run(d, "2026-11-24 09:05")
    assert list(tickets(d)) == [ticket_id]
    assert "courtesy reply" in d.buzon("ticket", ticket_id).stdout
    d.deliver(client_reply("gmail_es_new_question.eml", answer, CITIZEN,
                           message_id="<question@x.test>"), at("2026-11-24 10:00"))
    run(d, "2026-11-24 10:05")
    by_id = tickets(d)
    [new] = [t for t in by_id.values() if t["ticket"] != ticket_id]
    assert new["linked_ticket"] == ticket_id and by_id[ticket_id]["status"] == "answered"
