"""The assistant sends what the citizen reads (manual 9.1, 9.3.7.1), on the real daemon
and Dovecot with the default second_level.relay: an organ's answer comes back to the
assistants with Por_enviar and reaches the citizen only through Sent; a reply to the
organ sends it back; EN EVALUACIÓN keeps a suggestion open."""

from __future__ import annotations

from email.message import EmailMessage

from conftest import at, run
from test_trust import body, client_reply, tickets

CITIZEN = "ventas@ferreteriasanmartin.test"


def consulta() -> bytes:
    message = EmailMessage()
    message["From"] = f"Ferretería San Martín <{CITIZEN}>"
    message["To"] = "consultas@osce.test"
    message["Subject"] = "No puedo ingresar al SEACE"
    message["Message-ID"] = "<relay-consulta@ferreteriasanmartin.test>"
    message.set_content("Buenos días, el SEACE me dice usuario bloqueado. ¿Qué hago?")
    return bytes(message)


def incident(d) -> tuple[str, object]:
    """A consulta turned into an incident: (its I- id, the request DSEACE got)."""
    d.deliver(consulta(), at("2026-11-16 09:00"))
    run(d, "2026-11-16 09:05")
    [folder] = [f for f in ("SEACE", "RNP", "Legal", "Por clasificar") if d.folder_uids(f)]
    d.move_all(folder, "Incidencias/Alta")
    run(d, "2026-11-16 10:00")
    [request] = d.mails("incidencia_organo", "dseace@osce.test")
    [ticket] = [t for t in tickets(d).values() if t["kind"] == "incidencia"]
    return ticket["ticket"], request


def sent_by_assistant(d, to: str, subject: str, text: str, in_reply_to: str) -> bytes:
    """What an assistant's Outlook leaves in Sent after answering from the mailbox."""
    message = EmailMessage()
    message["From"] = d.address("consultas")
    message["To"] = to
    message["Subject"] = subject
    message["In-Reply-To"] = in_reply_to
    message["References"] = in_reply_to
    message["Message-ID"] = f"<{abs(hash((to, text)))}@outlook.test>"
    message.set_content(text)
    return bytes(message)


def derived_suggestion(d):
    """A suggestion moved to Derivar/DSEACE: the request DSEACE got."""
    message = EmailMessage()
    message["From"] = f"Vecina <{CITIZEN}>"
    message["To"] = d.address("sugerencias")
    message["Subject"] = "Sugerencia: buscador por región"
    message.set_content("Sugiero que el buscador del SEACE filtre por región.")
    d.deliver(bytes(message), at("2026-11-16 10:00"), mailbox="sugerencias")
    run(d, "2026-11-16 10:10")
    d.move_all("INBOX", "Derivar/DSEACE", mailbox="sugerencias")
    run(d, "2026-11-16 11:00")
    [request] = d.mails("derivacion_sugerencia", "dseace@osce.test")
    return request


def organ_reply(d, request, text: str) -> bytes:
    reply = EmailMessage()
    reply["From"] = "DSEACE <dseace@osce.test>"
    reply["To"] = d.address("sugerencias")
    reply["Subject"] = f"RE: {request.message['Subject']}"
    reply["In-Reply-To"] = reply["References"] = request.message["Message-ID"]
    reply.set_content(text)
    return bytes(reply)


def incident_flags(d, incident_id: str) -> list[set[str]]:
    """The flags of the incident's mails (the consulta's, and the organs' answers)."""
    consulta = tickets(d)[incident_id]["linked_ticket"]
    return [*d.ticket_flags("Incidencias/Alta", consulta),
            *d.ticket_flags("Incidencias/Alta", incident_id)]


def test_an_organs_outlook_acknowledgement_never_reaches_the_citizen(deployment):
    d = deployment
    incident_id, request = incident(d)
    d.deliver(client_reply("outlook_es_organ_ack.eml", request, "DSEACE <dseace@osce.test>"),
              at("2026-11-16 11:00"))
    run(d, "2026-11-16 11:05")
    # Nothing went to the citizen beyond the acknowledgement and the incident's notice.
    assert [m for m in d.sent_by_buzon(CITIZEN) if not m.message["Message-ID"].startswith(
        ("<ack.", "<incidencia-ciudadano."))] == []
    state = tickets(d)[incident_id]
    assert state["status"] == "to_relay" and state["answered_at"] is None
    [notice] = d.mails("respuesta_organo", "asistente@osce.test")
    assert incident_id in notice.message["Subject"]
    text = body(notice)
    assert "Recibido, lo revisamos" in text and "Dirección del SEACE" in text
    assert "Miguel Ángel Torres Huerta" not in text  # the organ's signature stays out
    assert any("Por_enviar" in f and "Respuesta_DSEACE" in f
               for f in incident_flags(d, incident_id))

    # The assistant sends it back to the organ from the mailbox: it waits for DSEACE again,
    # which gets a new request it can answer.
    d.deliver(sent_by_assistant(d, "dseace@osce.test", f"RE: [{incident_id}] respuesta",
                                "Necesitamos la solución, no el acuse.",
                                request.message["Message-ID"]),
              at("2026-11-16 12:00"), folder="Sent")
    run(d, "2026-11-16 12:05")
    state = tickets(d)[incident_id]
    assert (state["status"], state["organ"]) == ("derived", "DSEACE")
    assert not any("Por_enviar" in f for f in incident_flags(d, incident_id))
    [again] = d.mails("nueva_referencia", "dseace@osce.test")
    d.deliver(client_reply("outlook_es_organ_answer.eml", again, "DSEACE <dseace@osce.test>"),
              at("2026-11-17 09:00"))
    run(d, "2026-11-17 09:05")
    assert tickets(d)[incident_id]["status"] == "to_relay"
    assert len(d.mails("respuesta_organo", "asistente@osce.test")) == 2
    assert d.mails("incidencia_respuesta") == []


def test_the_assistant_passes_the_answer_on_through_sent(deployment):
    d = deployment
    incident_id, request = incident(d)
    d.deliver(client_reply("outlook_es_organ_answer.eml", request, "DSEACE <dseace@osce.test>"),
              at("2026-11-16 11:00"))
    run(d, "2026-11-16 11:05")
    assert tickets(d)[incident_id]["status"] == "to_relay"
    # The assistant replies to the citizen's own mail, in the consulta's thread.
    d.deliver(sent_by_assistant(d, CITIZEN, "RE: No puedo ingresar al SEACE",
                                "Estimada/o usuaria/o: ya restablecimos su usuario.",
                                "<relay-consulta@ferreteriasanmartin.test>"),
              at("2026-11-16 15:00"), folder="Sent")
    run(d, "2026-11-16 15:05")
    state = tickets(d)[incident_id]
    assert state["status"] == "resolved"
    assert state["answered_at"] == at("2026-11-16 15:00").isoformat()
    assert not any("Por_enviar" in f for f in incident_flags(d, incident_id))
    assert d.mails("incidencia_respuesta") == []  # buzon sent nothing itself


def test_en_evaluacion_keeps_a_suggestion_open(deployment):
    d = deployment
    request = derived_suggestion(d)
    d.deliver(organ_reply(d, request, "EN EVALUACIÓN\nLo veremos en el comité de enero."),
              at("2026-11-17 09:00"), mailbox="sugerencias")
    run(d, "2026-11-17 09:05")
    [suggestion] = [t for t in tickets(d).values() if t["kind"] == "sugerencia"]
    assert (suggestion["status"], suggestion["result"]) == ("derived", "evaluating")
    assert suggestion["answered_at"] is None
    assert d.mails("resultado_sugerencia") == []
    [notice] = d.mails("respuesta_organo", "asistente@osce.test")
    assert "sigue en evaluación" in body(notice)

    # The organ's result later, on the new request it got: handed to the assistants.
    [again] = d.mails("nueva_referencia", "dseace@osce.test")
    d.deliver(organ_reply(d, again, "IMPLEMENTADA\nDesde abril el buscador filtra por región."),
              at("2026-12-01 09:00"), mailbox="sugerencias")
    run(d, "2026-12-01 09:05")
    [suggestion] = [t for t in tickets(d).values() if t["kind"] == "sugerencia"]
    assert (suggestion["status"], suggestion["result"]) == ("to_relay", "implemented")
    assert d.mails("resultado_sugerencia") == []


def test_automatic_relay_tells_the_citizen_en_evaluacion_without_closing(deployment):
    d = deployment
    d.write_config(second_level={"relay": "automatic"})
    request = derived_suggestion(d)
    d.deliver(organ_reply(d, request, "EN EVALUACIÓN\nLo veremos en el comité de enero."),
              at("2026-11-17 09:00"), mailbox="sugerencias")
    run(d, "2026-11-17 09:05")
    [told] = d.mails("resultado_sugerencia", CITIZEN)
    assert "sigue en evaluación" in body(told) and "damos por atendida" not in body(told)
    assert told.message["Auto-Submitted"] is None  # the organ's words, relayed
    [suggestion] = [t for t in tickets(d).values() if t["kind"] == "sugerencia"]
    assert suggestion["status"] == "derived" and suggestion["answered_at"] is None

