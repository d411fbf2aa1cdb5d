"""Builds the mails buzon sends from the Spanish jinja2 templates."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from pathlib import Path

import jinja2

from daemon.parsing import one_line

_DAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
_MONTHS = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre")


def spanish_datetime(moment: datetime) -> str:
    """'lunes 30 de noviembre de 2026, 08:30' (in the moment's own time zone)."""
    return (f"{_DAYS[moment.weekday()]} {moment.day} de {_MONTHS[moment.month - 1]} "
            f"de {moment.year}, {moment:%H:%M}")


def build_environment(templates_dir: Path) -> jinja2.Environment:
    """The one jinja2 Environment: strict about missing values, escaping HTML templates."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"),
                                            default_for_string=False),
        keep_trailing_newline=True,
    )
    env.filters["fecha"] = spanish_datetime
    return env


def new_message_id(domain: str, tag: str) -> str:
    return f"<{tag}.{secrets.token_hex(8)}@{domain}>"


@dataclass(frozen=True)
class Outgoing:
    """A mail ready to go: who gets it, its Message-ID and its bytes."""

    recipient: str
    message_id: str
    raw: str


def render_mail(
    env: jinja2.Environment,
    template: str,
    values: dict,
    *,
    sender: tuple[str, str],
    recipient: str,
    message_id: str,
    now: datetime,
    in_reply_to: str = "",
    references: tuple[str, ...] = (),
) -> Outgoing:
    """Render `<template>.subject.j2`, `.txt.j2` and `.html.j2` into one mail.

    Values taken from incoming mail are passed as data, never as template source, and
    every header value is folded onto one line, so no incoming text can add a header.
    """
    subject = one_line(env.get_template(f"{template}.subject.j2").render(values), 250)
    message = EmailMessage(policy=SMTP)
    message["From"] = formataddr((one_line(sender[0], 100), sender[1]))
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    chain = tuple(dict.fromkeys(references + ((in_reply_to,) if in_reply_to else ())))
    if chain:
        message["References"] = " ".join(chain[-10:])
    message.set_content(env.get_template(f"{template}.txt.j2").render(values), charset="utf-8")
    try:
        html = env.get_template(f"{template}.html.j2").render(values)
    except jinja2.TemplateNotFound:
        html = None
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8")
    return Outgoing(recipient=recipient, message_id=message_id, raw=message.as_string())
