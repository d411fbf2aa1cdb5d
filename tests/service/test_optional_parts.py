"""An optional part that fails (the model, the index of answers, the suggested drafts) is
logged, told to the coordinators once, and bypassed: intake, acknowledgements and filing
go on, on the real daemon and Dovecot. And the crash that started it (issue 15): a
reopened ticket, the only answered consulta, stopped every start."""

from __future__ import annotations

import json
from email.message import EmailMessage

from conftest import at, fixture_bytes, run

from daemon.config import Settings
from daemon.decide.calendar import WorkCalendar
from daemon.decide.pipeline import Arrival, Decision, PipelineContext, classify
from daemon.mail.parsing import Inbound


def tickets(d) -> dict[str, dict]:
    rows = [json.loads(line) for line in d.buzon("tickets", "--json").stdout.splitlines()]
    return {row["ticket"]: row for row in rows}


def consulta(sender: str, subject: str, message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "consultas@osce.test"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content("Buenos días, ¿cómo recupero mi clave para ingresar al sistema?")
    return bytes(message)


def alerts(d) -> list:
    return d.mails("parte_omitida", "coordinador@osce.test")


def test_a_reopened_ticket_as_the_only_answered_consulta_stops_nothing(deployment):
    d = deployment
    d.deliver(fixture_bytes("plain_consulta_seace.eml"), at("2026-11-23 10:00"))
    run(d, "2026-11-23 10:05")
    answer = EmailMessage()
    answer["From"] = d.address("consultas")
    answer["To"] = "juan.perez@gmail.test"
    answer["Subject"] = "RE: No puedo ingresar al SEACE"
    answer["In-Reply-To"] = "<plain-consulta-seace.2026@mail.gmail.test>"
    answer.set_content("Estimado Juan: restablezca su clave desde el SEACE.\n\nAna Torres")
    d.deliver(bytes(answer), at("2026-11-23 11:00"), folder="Sent")
    run(d, "2026-11-23 11:05")
    again = consulta("Juan Pérez <juan.perez@gmail.test>", "RE: No puedo ingresar al SEACE",
                     "<again@gmail.test>")
    again = again.replace(b"Message-ID: <again@gmail.test>",
                          b"Message-ID: <again@gmail.test>\nIn-Reply-To: "
                          b"<plain-consulta-seace.2026@mail.gmail.test>")
    d.deliver(again, at("2026-11-24 09:00"))
    run(d, "2026-11-24 09:05")
    [reopened] = tickets(d).values()
    assert reopened["status"] == "reopened"
    # Each new start builds the index again, from that ticket alone.
    d.deliver(consulta("Rosa <rosa@correo.test>", "Clave del RNP", "<rosa@correo.test>"),
              at("2026-11-24 10:00"))
    run(d, "2026-11-24 10:05")
    run(d, "2026-11-24 10:10")
    assert len(tickets(d)) == 2 and len(d.acknowledgements("rosa@correo.test")) == 1
    assert alerts(d) == []


def test_a_broken_model_is_bypassed_and_told_once(deployment):
    d = deployment
    broken = d.tmp / "modelo-roto"
    broken.mkdir()
    (broken / "model.json").write_text("{esto no es json", encoding="utf-8")
    d.write_config(classifier={"model_dir": str(broken), "train_if_missing": False},
                   routing=[])
    for number in range(2):
        d.deliver(consulta(f"Persona {number} <p{number}@correo.test>", "Una consulta",
                           f"<m{number}@correo.test>"), at("2026-11-24 09:00"))
        run(d, f"2026-11-24 09:0{number + 5}")
    filed = tickets(d).values()
    assert [t["folder"] for t in filed] == ["Por clasificar", "Por clasificar"]
    assert len(d.acknowledgements()) == 2
    [alert] = alerts(d)
    assert "clasificación automática" in alert.message["Subject"]


def test_a_broken_answer_index_is_bypassed(deployment):
    d = deployment
    answers = d.tmp / "respuestas"
    answers.mkdir()
    (answers / "mala.md").write_text("sin encabezado YAML", encoding="utf-8")
    d.write_config(answers={"directory": str(answers)})
    d.deliver(consulta("Rosa <rosa@correo.test>", "Clave del SEACE", "<r@correo.test>"),
              at("2026-11-24 09:00"))
    run(d, "2026-11-24 09:05")
    assert len(tickets(d)) == 1 and len(d.acknowledgements("rosa@correo.test")) == 1
    [alert] = alerts(d)
    assert "mala.md" in alert.message.get_body(("plain",)).get_content()
    with d.imap() as client:
        client.select_folder("Drafts", readonly=True) if client.folder_exists("Drafts") else None
        assert not client.folder_exists("Drafts") or client.search() == []


class FailingModel:
    def predict(self, inbound):
        raise RuntimeError("model arrays missing")


def test_a_model_failing_on_one_mail_leaves_it_for_review(tmp_path):
    settings = Settings.model_validate({
        "mailboxes": {"consultas": {"address": "c@osce.test", "imap": {
            "host": "127.0.0.1", "username": "c@osce.test", "password_env": "P"}}},
        "smtp": {"host": "127.0.0.1"}})
    ctx = PipelineContext(settings=settings, calendar=WorkCalendar.from_settings(
        settings.calendar, settings.zone), rules=(), lookups=None, classifier=FailingModel())
    arrival = Arrival(mailbox="consultas", kind="consulta", internaldate=at("2026-11-24 09:00"),
                      sha256="x")
    decision = classify(Inbound(subject="Clave", text="¿Cómo entro?"), arrival, Decision(), ctx)
    assert (decision.folder, decision.classification_source) == ("Por clasificar", "abstain")
    assert "the model failed" in decision.notes[-1]
