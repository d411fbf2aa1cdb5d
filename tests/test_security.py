"""Security review (issue 7): no secret and no mail body in the logs, private files,
attacker text never rendered as a template, and `buzon check` warning about an insecure
production config."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import yaml
from conftest import PASSWORD

from daemon.cli.checks import insecure_settings
from daemon.config import parse_settings

WHEN = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
BODY_SECRET = "Mi clave del RNP es Zq7-secreta"


def consulta(subject: str, body: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Rosa Quispe <rosa.quispe@correo.test>"
    message["To"] = "consultas@osce.test"
    message["Subject"] = subject
    message["Message-ID"] = "<seguridad-1@correo.test>"
    message.set_content(body)
    return bytes(message)


def test_no_password_and_no_mail_body_reach_the_log_even_at_debug(deployment):
    d = deployment
    d.deliver(consulta("Renovación RNP", BODY_SECRET), WHEN)
    result = d.buzon("--log-level", "DEBUG", "run", "--once")
    log = result.stdout + result.stderr
    assert "DEBUG" in log  # the run did log at debug level
    assert PASSWORD not in log
    assert BODY_SECRET not in log and "Zq7-secreta" not in log


def test_the_files_buzon_writes_are_private(deployment):
    d = deployment
    d.deliver(consulta("Renovación RNP", "Consulta"), WHEN)
    d.buzon("run", "--once")
    out = d.tmp / "registro.xlsx"
    d.buzon("report", "daily", "--date", "2026-11-26", "--out", str(out))
    database = Path(d.database.removeprefix("sqlite:///"))
    written = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
    written.append(out)
    assert len(written) >= 3  # the database, its journal or locks, the workbook
    for path in written:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path.name} is {oct(mode)}"


def test_attacker_text_is_never_rendered_as_a_template(deployment):
    d = deployment
    subject = "{{ 7*7 }} {% for x in range(3) %}X{% endfor %} RNP"
    # The border vouches for the sender: only then does the acknowledgement echo the
    # Subject, and it must echo it as text.
    d.write_config(trust={"authserv_id": "mx.oece.test"})
    vouched = "mx.oece.test; dkim=pass header.d=correo.test; dmarc=pass header.from=correo.test"
    raw = consulta(subject, "{{ config }} {{ ''.__class__ }}")
    d.deliver(f"Authentication-Results: {vouched}\r\n".encode() + raw, WHEN)
    d.buzon("run", "--once")
    [ack] = d.acknowledgements()
    text = ack.message.get_body(("plain",)).get_content()
    assert "{{ 7*7 }}" in ack.message["Subject"]
    assert "{{ config }}" not in text and "<class" not in text
    assert "49" not in ack.message["Subject"] and "XXX" not in ack.message["Subject"]


PRODUCTION = """
database: postgresql://buzon:hunter2@db.osce.gob.pe/buzon
mailboxes:
  consultas:
    address: consultas@osce.gob.pe
    imap: {host: imap.osce.gob.pe, security: none, username: consultas,
           password_env: BUZON_CONSULTAS_PASSWORD}
smtp: {host: smtp.osce.gob.pe, security: none}
people: {supervisors: [supervisor@osce.gob.pe]}
"""


def test_check_warns_about_an_insecure_production_config():
    warnings = "\n".join(insecure_settings(parse_settings(yaml.safe_load(PRODUCTION))))
    assert "mailboxes.consultas.imap.security is 'none' for a remote host" in warnings
    assert "smtp.security is 'none' for a remote host" in warnings
    assert "database: the URL holds a password" in warnings
    assert "trust.authserv_id is not set" in warnings
    safe = yaml.safe_load(PRODUCTION)
    safe["database"] = "postgresql://buzon@db.osce.gob.pe/buzon"
    safe["mailboxes"]["consultas"]["imap"]["security"] = "ssl"
    safe["smtp"]["security"] = "ssl"
    safe["trust"] = {"authserv_id": "mx.osce.gob.pe"}
    assert insecure_settings(parse_settings(safe)) == []
