"""Builds the mails buzon sends from the Spanish jinja2 templates."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formataddr
from pathlib import Path

import jinja2

from daemon.config import KNOWN_ORGAN_NAMES
from daemon.mail.parsing import one_line

_DAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
_MONTHS = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre")


def spanish_datetime(moment: datetime) -> str:
    """'martes 10 de marzo de 2026, a las 08:30', as the manual writes dates, in the
    moment's own time zone; templates write "a más tardar el {{ plazo | fecha }}."
    Between 01:00 and 01:59 it reads 'a la 01:15' (la una)."""
    article = "a la" if moment.hour == 1 else "a las"
    return (f"{_DAYS[moment.weekday()]} {moment.day} de {_MONTHS[moment.month - 1]} "
            f"de {moment.year}, {article} {moment.hour:02d}:{moment.minute:02d}")


# How every mail buzon sends is signed: the unit, never "Mesa de ..." (easily taken for
# the Mesa de Partes, where filings are made).
DEFAULT_UNIT = "Unidad de Atención a la Usuaria y al Usuario"


# Names of organs that take "el" (the help desk's own organs are feminine: Dirección,
# Oficina, Subdirección, Unidad...).
_MASCULINE_STARTS = ("órgano", "organo", "despacho", "consejo", "comité", "comite",
                     "tribunal", "centro", "área", "area")


def organ_phrases(names: dict[str, str]) -> dict[str, Callable[[str], str]]:
    """Filters that name an organ in full mid-sentence, with its article: `el_organo`
    ("la Dirección del SEACE"), `del_organo` ("de la ..."), `al_organo` ("a la ...")."""
    def full(key: str) -> tuple[str, bool]:
        name = names.get(key) or KNOWN_ORGAN_NAMES.get(key, key)
        return name, name.lower().startswith(_MASCULINE_STARTS)

    def the(key: str) -> str:
        name, masculine = full(key)
        return f"{'el' if masculine else 'la'} {name}"

    def of(key: str) -> str:
        name, masculine = full(key)
        return f"{'del' if masculine else 'de la'} {name}"

    def to(key: str) -> str:
        name, masculine = full(key)
        return f"{'al' if masculine else 'a la'} {name}"

    return {"el_organo": the, "del_organo": of, "al_organo": to}


def build_environment(templates_dir: Path, unit: str = DEFAULT_UNIT,
                      organ_names: dict[str, str] | None = None,
                      automatic_relay: bool = False) -> jinja2.Environment:
    """The one jinja2 Environment: strict about missing values, escaping HTML templates;
    `unidad` (the signing unit) is known to every template, and the organ filters
    (organ_phrases) name organs in full; `reenvio_automatico` tells whether organs'
    answers go to citizens as written (second_level.relay)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"),
                                            default_for_string=False),
        keep_trailing_newline=True,
        # Read once, like the standard answers and rules.yaml: a restart takes up edits.
        # Checking each template's file at every mail cost 5 % of a backlog's intake.
        auto_reload=False,
    )
    env.filters["fecha"] = spanish_datetime
    env.globals["unidad"] = unit
    env.filters.update(organ_phrases(organ_names or {}))
    env.globals["reenvio_automatico"] = automatic_relay
    return env


class _RandomBytes:
    """The system's random bytes (os.urandom, as `secrets` uses), read 4 KiB at a time: a
    backlog makes five tokens a mail (Message-IDs, MIME boundaries), and each read of
    its own let the other threads take the interpreter lock in between. A forked child
    starts with none of its parent's bytes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""

    def hex(self, count: int) -> str:
        with self._lock:
            if len(self._bytes) < count:
                self._bytes += os.urandom(4096)
            taken, self._bytes = self._bytes[:count], self._bytes[count:]
        return taken.hex()


_random = _RandomBytes()


def new_message_id(domain: str, tag: str) -> str:
    return f"<{tag}.{_random.hex(8)}@{domain}>"


@dataclass(frozen=True)
class Outgoing:
    """A mail ready to go: who gets it, its Message-ID and its bytes."""

    recipient: str
    message_id: str
    raw: str


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes
    # Set for a picture the HTML part shows inline (<img src="cid:...">).
    content_id: str = ""


def render_text(env: jinja2.Environment, template: str, values: dict) -> str:
    """The plain-text body of a template, for a mail buzon composes itself (a draft)."""
    return env.get_template(f"{template}.txt.j2").render(values)


def render_mail(
    env: jinja2.Environment,
    template: str,
    values: dict,
    *,
    sender: tuple[str, str],
    recipient: str | list[str],
    message_id: str,
    now: datetime,
    in_reply_to: str = "",
    references: tuple[str, ...] = (),
    cc: list[str] | tuple[str, ...] = (),
    attachments: tuple[Attachment, ...] = (),
    automatic: bool = True,
) -> Outgoing:
    """Render `<template>.subject.j2`, `.txt.j2` and `.html.j2` into one mail
    (`automatic`: see compose_raw).

    Values taken from incoming mail are passed as data, never as template source, and
    every header value is folded onto one line, so no incoming text can add a header.
    """
    recipients = [recipient] if isinstance(recipient, str) else list(recipient)
    subject = one_line(env.get_template(f"{template}.subject.j2").render(values), 250)
    text = env.get_template(f"{template}.txt.j2").render(values)
    try:
        html = env.get_template(f"{template}.html.j2").render(values)
    except jinja2.TemplateNotFound:
        html = None
    raw = compose_raw(sender=sender, recipients=recipients, subject=subject,
                      message_id=message_id, now=now, text=text, html=html,
                      in_reply_to=in_reply_to, references=references, cc=cc,
                      attachments=attachments, automatic=automatic)
    return Outgoing(recipient=",".join(recipients + list(cc)), message_id=message_id, raw=raw)


def compose_raw(*, sender: tuple[str, str], recipients: list[str], subject: str,
                message_id: str, now: datetime, text: str, html: str | None = None,
                in_reply_to: str = "", references: tuple[str, ...] = (),
                cc: list[str] | tuple[str, ...] = (),
                attachments: tuple[Attachment, ...] = (), automatic: bool = True) -> str:
    """The bytes of a mail (as text): every header on one line, bodies in base64.
    `automatic` mail says so (Auto-Submitted, RFC 3834); an answer a person wrote, which
    buzon only relays (an approved legal answer, an organ's answer), does not."""
    headers = [
        ("From", formataddr((_encoded(one_line(sender[0], 100)), sender[1]))),
        ("To", one_line(", ".join(recipients), 2000)),
        ("Subject", _encoded(one_line(subject, 250))),
        ("Date", format_datetime(now)),
        ("Message-ID", one_line(message_id, 300)),
        *([("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")]
          if automatic else []),
        ("MIME-Version", "1.0"),
    ]
    if cc:
        headers.insert(2, ("Cc", one_line(", ".join(cc), 2000)))
    if in_reply_to:
        headers.append(("In-Reply-To", one_line(in_reply_to, 300)))
    chain = tuple(dict.fromkeys(references + ((in_reply_to,) if in_reply_to else ())))
    if chain:
        headers.append(("References", "\r\n ".join(one_line(r, 300) for r in chain[-10:])))
    inline = [a for a in attachments if a.content_id and html]
    attached = [a for a in attachments if a not in inline]
    if not html:
        content_headers, body = _text_headers("plain"), _base64(text)
    else:
        html_part = (_text_headers("html"), _base64(html))
        if inline:  # the HTML with the pictures it shows, as one multipart/related
            html_part = _multipart("related", [html_part] + [
                _file_part(a, "inline") for a in inline])
        content_headers, body = _multipart("alternative", [
            (_text_headers("plain"), _base64(text)), html_part])
    if attached:
        parts = [(content_headers, body)] + [_file_part(a, "attachment") for a in attached]
        content_headers, body = _multipart("mixed", parts)
    return f"{_header_block(headers + content_headers)}\r\n{body}"


def _file_part(attachment: Attachment, disposition: str) -> tuple[list, str]:
    name = _safe_filename(attachment.filename)
    headers = [("Content-Type", f'{attachment.content_type}; name="{name}"'),
               ("Content-Disposition", f'{disposition}; filename="{name}"'),
               ("Content-Transfer-Encoding", "base64")]
    if attachment.content_id:
        headers.append(("Content-ID", f"<{_safe_filename(attachment.content_id)}>"))
    return headers, _base64_lines(attachment.data)


def _multipart(subtype: str, parts: list[tuple[list, str]]) -> tuple[list, str]:
    boundary = f"=_buzon_{_random.hex(12)}"
    body = "".join(f"--{boundary}\r\n{_header_block(headers)}\r\n{content}"
                   for headers, content in parts) + f"--{boundary}--\r\n"
    return [("Content-Type", f'multipart/{subtype}; boundary="{boundary}"')], body


def _safe_filename(name: str) -> str:
    return "".join(c for c in name if c.isalnum() or c in "._- ") or "adjunto"


def _encoded(value: str) -> str:
    """RFC 2047 encoded-words (UTF-8, base64) where the value is not plain ASCII.

    Each word carries whole characters and stays within the 75-character limit.
    """
    if value.isascii():
        return value
    data, words, start = value.encode("utf-8"), [], 0
    while start < len(data):
        end = start + 45  # 45 bytes -> 60 base64 characters
        while end < len(data) and data[end] & 0xC0 == 0x80:  # inside a character
            end -= 1
        words.append(data[start:end])
        start = end
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)


def _text_headers(subtype: str) -> list[tuple[str, str]]:
    return [("Content-Type", f'text/{subtype}; charset="utf-8"'),
            ("Content-Transfer-Encoding", "base64")]


def _header_block(headers: list[tuple[str, str]]) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in headers)


def _base64(text: str) -> str:
    return _base64_lines(text.encode("utf-8"))


def _base64_lines(data: bytes) -> str:
    """Base64 in lines of 76 characters, each ended by CRLF (as base64.encodebytes)."""
    encoded = base64.b64encode(data).decode("ascii")
    return "\r\n".join([encoded[i:i + 76] for i in range(0, len(encoded), 76)] + [""])
