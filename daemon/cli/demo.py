"""`buzon demo`: the daemon on a throwaway local mail server with sample citizen mail."""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from imapclient import IMAPClient
from sqlmodel import Session, select

from daemon.config import parse_settings
from daemon.mail.sandbox import DovecotServer, SmtpSink
from daemon.runtime import Runtime
from daemon.service.parts import load_classifier, load_knowledge
from daemon.service.run import run_once
from daemon.store.db import make_engine, utcnow
from daemon.store.models import MailRecord, Ticket


@dataclass(frozen=True)
class SampleMail:
    mailbox: str
    sender: str
    subject: str
    body: str
    headers: tuple[tuple[str, str], ...] = ()


SAMPLES = (
    SampleMail("consultas", "Juan Pérez Huamán <juan.perez@gmail.test>",
               "No puedo ingresar al SEACE",
               "Buenas tardes, desde ayer el SEACE me dice que mi usuario está bloqueado. "
               "¿Cómo lo desbloqueo? Tengo que presentar una oferta el lunes."),
    SampleMail("consultas", "Ferretería San Martín <ventas@ferreteria-sanmartin.test>",
               "Renovación de inscripción en el RNP",
               "Señores: nuestra inscripción en el RNP como proveedor de bienes vence este mes. "
               "¿Qué pasos debemos seguir para renovarla?"),
    SampleMail("consultas", "Rosa Mendoza <logistica@muni-ica.gob.test>",
               "Penalidad por mora",
               "Estimados, un contratista entregó los bienes con 12 días de retraso. ¿Cómo se "
               "calcula la penalidad por mora según la Ley N° 32069?"),
    SampleMail("consultas", "Carlos Rojas <carlos.rojas@yahoo.test>", "consulta",
               "hola buenas, una pregunta: una empresa donde el socio es primo de un regidor "
               "puede contratar con la municipalidad? gracias"),
    SampleMail("consultas", "Lucía Torres <lucia.torres@outlook.test>",
               "Duda sobre la subasta inversa",
               "¿En la subasta inversa electrónica cuántos lances puedo hacer?"),
    SampleMail("consultas", "Oficina <jefe.logistica@hospital.gob.test>",
               "Respuesta automática: fuera de la oficina",
               "Estaré fuera de la oficina hasta el lunes.", (("Auto-Submitted", "auto-replied"),)),
    SampleMail("consultas", "Mail Delivery System <MAILER-DAEMON@mx.correo.test>",
               "Undelivered Mail Returned to Sender", "The mail could not be delivered."),
    SampleMail("consultas", "Boletín Contrataciones <boletin@noticias.test>",
               "Novedades del mes", "Lea nuestras novedades.",
               (("List-Unsubscribe", "<mailto:baja@noticias.test>"),)),
    SampleMail("sugerencias", "Martín Alarcón <martin.alarcon@gmail.test>",
               "Filtrar por región en el buscador",
               "Sugiero que el buscador público del SEACE permita filtrar por región."),
    SampleMail("sugerencias", "Ana Ruiz <ana.ruiz@mail.test>", "Horario de atención",
               "Sería útil atender consultas telefónicas hasta las 18:00."),
)


def sample_times(now: datetime, calendar) -> list[tuple[str, datetime]]:
    """Arrival times in the recent past that show the receipt rules at work."""
    zone = calendar.zone
    local = now.astimezone(zone)
    days = [local.date() - timedelta(days=n) for n in range(1, 30)]
    friday = next(d for d in days if d.weekday() == 4)
    saturday = next(d for d in days if d.weekday() == 5)
    working = next(d for d in days if calendar.is_working_day(d))
    at = lambda day, h, m, s=0: datetime(day.year, day.month, day.day, h, m, s, tzinfo=zone)  # noqa: E731
    return [
        ("día hábil, 10:05", at(working, 10, 5)),
        ("viernes, 16:45 (después del corte)", at(friday, 16, 45)),
        ("viernes, 16:30:00 (justo a tiempo)", at(friday, 16, 30)),
        ("sábado, 11:20", at(saturday, 11, 20)),
        ("día hábil, 07:40 (antes de abrir)", at(working, 7, 40)),
    ]


def _build(sample: SampleMail, to: str, number: int) -> bytes:
    message = EmailMessage()
    message["From"] = sample.sender
    message["To"] = to
    message["Subject"] = sample.subject
    message["Message-ID"] = f"<demo-{number}.{secrets.token_hex(4)}@correo.test>"
    for name, value in sample.headers:
        message[name] = value
    message.set_content(sample.body)
    return bytes(message)


def run_demo(out=print, model: Path | None = None) -> int:
    """The demo; `model`: a trained model to copy instead of training one (the tests)."""
    logging.getLogger().setLevel(logging.WARNING)
    password = secrets.token_hex(8)
    work = Path(tempfile.mkdtemp(prefix="buzon-demo-"))
    dovecot = DovecotServer(password=password).start()
    sink = SmtpSink().start()
    try:
        settings = parse_settings({
            "timezone": "America/Lima",
            "database": f"sqlite:///{work / 'buzon.db'}",
            "mailboxes": {
                name: {"address": f"{name}@osce.test",
                       "imap": {"host": "127.0.0.1", "port": dovecot.imap_port,
                                "security": "none", "username": f"{name}@osce.test",
                                "password_env": "BUZON_DEMO_PASSWORD"}}
                for name in ("consultas", "sugerencias")
            },
            "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "none"},
            "people": {"coordinators": ["coordinador@osce.test"]},
            # One routing rule; the trained model files the rest.
            "routing": [{"name": "rnp", "folder": "RNP", "subject_patterns": [r"\bRNP\b"]}],
            "classifier": {"model_dir": str(work / "model")},
        })
        rt = Runtime.build(settings, {"BUZON_DEMO_PASSWORD": password},
                           make_engine(settings.database))
        out(f"buzon demo: a throwaway Dovecot on 127.0.0.1:{dovecot.imap_port} "
            f"and an SMTP sink on 127.0.0.1:{sink.port}")
        if model is not None:
            shutil.copytree(model, work / "model")
        else:
            out("training the classifier from data/corpus and data/offtopic "
                "(about a minute)...")
        load_classifier(rt)
        load_knowledge(rt)
        times = sample_times(utcnow(), rt.calendar)
        for number, sample in enumerate(SAMPLES):
            label, when = times[number % len(times)]
            with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as client:
                client.login(f"{sample.mailbox}@osce.test", password)
                client.append("INBOX", _build(sample, f"{sample.mailbox}@osce.test", number),
                              (), when)
        out(f"{len(SAMPLES)} sample mails delivered; running `buzon run --once` over them\n")
        run_once(rt)
        _report(rt, sink, out)
    finally:
        sink.stop()
        dovecot.remove()
        # The database and the model trained for the demo (about 25 MB) go with it.
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _report(rt: Runtime, sink: SmtpSink, out) -> None:
    zone = rt.settings.zone
    with Session(rt.engine) as session:
        order = (MailRecord.mailbox, MailRecord.uid)
        records = list(session.exec(select(MailRecord).order_by(*order)))
        tickets = {t.id: t for t in session.exec(select(Ticket))}

    def when(moment: datetime) -> str:
        return f"{moment.astimezone(zone):%a %Y-%m-%d %H:%M:%S}"

    for record in records:
        out(f"* {record.mailbox}: \"{record.subject}\" from {record.sender or '(no sender)'}")
        out(f"    arrived            {when(record.internaldate)}")
        ticket = tickets.get(record.ticket_id or "")
        if record.outcome == "ticket" and ticket:
            how = ticket.classification_source or "suggestions stay in the inbox"
            if ticket.classification_confidence is not None and how == "model":
                how += f", confidence {ticket.classification_confidence:.2f}"
            out(f"    ticket             {ticket.id} -> folder {ticket.folder or 'INBOX'} ({how})")
            out(f"    official receipt   {when(ticket.effective_receipt)}")
            out(f"    deadline           {when(ticket.deadline)}")
        else:
            out(f"    {record.outcome:<18} -> {record.destination or 'INBOX'}: {record.reason}")
    acks = sink.messages()
    out(f"\n{len(acks)} acknowledgements sent:")
    for ack in acks:
        out(f"  to {', '.join(ack.recipients)}: {ack.message['Subject']}")
    if acks:
        out("\nThe first one, as the citizen reads it:\n")
        out(acks[0].message.get_body(("plain",)).get_content())
