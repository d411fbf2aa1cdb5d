"""Mail that is none of the help desk's business, against the real Dovecot: spam marked by
the border's filter or judged by the model, mail for another agency, and mail too short
for the model to judge."""

from __future__ import annotations

import json
from email.message import EmailMessage

from conftest import at
from test_suggested_answers import drafts

# Close to a standard answer (seace-recuperar-contrasena): without its spam mark this mail
# would get a suggested reply in Drafts.
PHISH = ("Estimado proveedor, olvidó la contraseña para ingresar al SEACE? Recupere su "
         "clave aquí antes de que su cuenta sea suspendida: http://seace-clave.test/login")


def mail(number: int, subject: str, body: str, sender: str, to: str = "consultas@osce.test",
         **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<otros-{number}@correo.test>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return bytes(message)


def tickets(d) -> list[dict]:
    return [json.loads(line) for line in d.buzon("tickets", "--json").stdout.splitlines()]


def test_spam_marked_by_the_border_is_filed_with_no_ticket_acknowledgement_or_draft(deployment):
    d = deployment
    when = at("2026-11-24 10:00")
    d.deliver(mail(1, "Su cuenta SEACE será suspendida", PHISH, "Soporte <soporte@phish.test>",
                   X_Spam_Flag="YES", X_Spam_Status="Yes, score=14.2 required=5.0"), when)
    d.deliver(mail(2, "Diplomado en contrataciones", "Inscríbase hoy en nuestro diplomado.",
                   "Cursos <ventas@cursos.test>", to="sugerencias@osce.test",
                   X_Spam="Yes"), when, mailbox="sugerencias")
    # The same filter's verdict on a real consulta: "No", so it is a consulta like any other.
    d.deliver(mail(3, "Consulta", "Buenas tardes, olvidé la contraseña para ingresar al SEACE "
                   "como proveedor, ¿cómo la recupero?", "Juan Pérez <juan.perez@correo.test>",
                   X_Spam_Status="No, score=0.4 required=5.0"), when)
    d.buzon("run", "--once", "--now", at("2026-11-24 10:05").isoformat())

    assert len(d.folder_uids("Otros temas")) == 1
    assert len(d.folder_uids("Otros temas", mailbox="sugerencias")) == 1
    assert [t["citizen"] for t in tickets(d)] == ["juan.perez@correo.test"]
    assert d.sent_by_buzon("soporte@phish.test") == []
    assert d.sent_by_buzon("ventas@cursos.test") == []
    assert [draft["To"] for _flags, draft in drafts(d)] == ["juan.perez@correo.test"]
    assert len(d.acknowledgements("juan.perez@correo.test")) == 1


def test_a_two_word_mail_stays_for_review_however_sure_the_model_is(model_deployment, tmp_path):
    d = model_deployment
    vague = mail(4, "ayuda", "hola necesito ayuda urgente por favor llamenme",
                 "Rosa Quispe <rosa.quispe@correo.test>")
    path = tmp_path / "vago.eml"
    path.write_bytes(vague)

    def classified() -> dict:
        return json.loads(d.buzon("classify", "--json", str(path)).stdout)

    row = classified()
    assert (row["folder"], row["source"]) == ("Por clasificar", "too_short")
    # Without the rule the model would file it, and confidently: the rule is what keeps it.
    d.config["classifier"]["min_meaningful_words"] = 0
    d.write_config()
    unruled = classified()
    assert unruled["source"] == "model" and unruled["folder"] != "Por clasificar"
    assert unruled["confidence"] == row["confidence"]
    d.config["classifier"]["min_meaningful_words"] = 3
    d.write_config()

    d.deliver(vague, at("2026-11-24 10:00"))
    d.deliver(mail(5, "No puedo ingresar al SEACE", "Buenas tardes, olvidé la contraseña para "
                   "ingresar al SEACE como proveedor, ¿cómo la recupero?",
                   "Juan Pérez <juan.perez@correo.test>"), at("2026-11-24 10:00"))
    d.buzon("run", "--once", "--now", at("2026-11-24 10:05").isoformat())
    assert len(d.folder_uids("Por clasificar")) == 1
    assert len(d.folder_uids("SEACE")) == 1
    # Still a consulta with its ticket and acknowledgement: only the sorting waits.
    assert len(tickets(d)) == 2
    assert len(d.acknowledgements("rosa.quispe@correo.test")) == 1


def test_mail_for_another_agency_is_filed_apart_with_a_draft_that_points_there(
        model_deployment):
    d = model_deployment
    when = at("2026-11-24 10:00")
    d.deliver(mail(6, "DNI perdido", "Buenos dias, se me perdio el DNI en la combi y necesito "
                   "sacar el duplicado para cobrar un giro, cuanto cuesta y donde lo tramito? "
                   "gracias", "Carmen Huamán <carmen.huaman@correo.test>"), when)
    d.deliver(mail(7, "Validación obligatoria de su cuenta RNP", "Estimado proveedor: su "
                   "cuenta del Registro Nacional de Proveedores sera dada de baja hoy por falta "
                   "de validacion. Ingrese su usuario y clave en http://rnp-validacion.test/login "
                   "en las proximas 24 horas para evitar la suspension definitiva.",
                   "Registro de Proveedores <alertas@rnp-validacion.test>"), when)
    d.deliver(mail(8, "Renovación RNP", "Buenas tardes, mi inscripción como proveedor de "
                   "bienes en el RNP vence la próxima semana, ¿cómo hago la renovación y "
                   "cuánto se paga?", "Luis Rojas <luis.rojas@correo.test>"), when)
    d.buzon("run", "--once", "--now", at("2026-11-24 10:05").isoformat())

    assert len(d.folder_uids("Otros temas")) == 2  # the DNI question and the phishing
    assert len(d.folder_uids("RNP")) == 1
    by_citizen = {t["citizen"]: t for t in tickets(d)}
    # The DNI question is a consulta like any other: a ticket, its acknowledgement and a
    # suggested reply that sends the citizen to the RENIEC. The phishing gets nothing.
    assert set(by_citizen) == {"carmen.huaman@correo.test", "luis.rojas@correo.test"}
    assert len(d.acknowledgements("carmen.huaman@correo.test")) == 1
    assert d.sent_by_buzon("alertas@rnp-validacion.test") == []
    found = {draft["To"]: draft.get_body(("plain",)).get_content()
             for _flags, draft in drafts(d)}
    assert set(found) == {"carmen.huaman@correo.test", "luis.rojas@correo.test"}
    assert "otros-reniec-dni.md" in found["carmen.huaman@correo.test"]
    assert "RENIEC" in found["carmen.huaman@correo.test"]
    # A consulta filed in a category is never pointed elsewhere.
    assert "otros-" not in found["luis.rojas@correo.test"]

    # An assistant who disagrees moves the mail out of Otros temas: a correction the
    # next training learns from (the phishing, which has no ticket, moves along unseen).
    d.move_all("Otros temas", "RNP")
    d.buzon("run", "--once", "--now", at("2026-11-24 10:10").isoformat())
    from sqlmodel import Session, select

    from daemon.store.db import make_engine
    from daemon.store.models import LabelledExample, Ticket

    with Session(make_engine(d.database)) as session:
        [example] = session.exec(select(LabelledExample)).all()
        ticket = session.get(Ticket, example.ticket_id)
    assert (example.label, ticket.citizen_address) == ("RNP", "carmen.huaman@correo.test")
    assert (ticket.folder, ticket.first_folder) == ("RNP", "Otros temas")
