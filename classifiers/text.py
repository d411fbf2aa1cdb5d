"""The text a consulta is judged on: subject plus the new text of the body (pure).

Quoted replies, signatures, legal disclaimers and forwarded-message headers are
stripped; what a forward carries stays, since it is often the question itself.
"""

from __future__ import annotations

import re

# A line that opens a quoted earlier message: everything from it on is history.
_REPLY_OPENERS = [
    r"^El .{0,120}(escribi[óo]|wrote)\s*:\s*$",
    r"^On .{0,120}wrote\s*:\s*$",
    r"^-{2,}\s*(Mensaje original|Original Message|Respuesta original)\s*-{2,}\s*$",
    r"^_{5,}\s*$",  # Outlook draws a line above the quoted header
    r"^(De|From)\s*:.*\n(Enviado( el)?|Sent|Fecha|Date)\s*:",
]
_FORWARD_MARKERS = re.compile(
    r"^-{2,}\s*(Forwarded message|Mensaje reenviado|Mensaje enviado)\s*-{2,}\s*$",
    re.IGNORECASE | re.MULTILINE)
_HEADER_LINE = re.compile(
    r"^(De|From|Para|To|CC|Cc|Asunto|Subject|Fecha|Date|Enviado( el)?|Sent)\s*:.*$",
    re.IGNORECASE)
_DISCLAIMER = re.compile(
    r"^\W*(AVISO (DE )?CONFIDENCIALIDAD|CONFIDENCIALIDAD|DISCLAIMER|AVISO LEGAL|"
    r"Este (mensaje|correo)( electr[óo]nico)?( y sus (anexos|adjuntos))? (es|son|contiene|"
    r"puede contener|va dirigido)|La informaci[óo]n contenida en este (mensaje|correo)|"
    r"Antes de imprimir|Por favor,? considere el medio ambiente)",
    re.IGNORECASE)
_SIGNATURE = re.compile(
    r"^(-- ?|Enviado desde mi .*|Sent from my .*|Obtener Outlook para .*|Get Outlook for .*)$",
    re.IGNORECASE)
_REPLY = re.compile("|".join(f"(?:{p})" for p in _REPLY_OPENERS), re.IGNORECASE | re.MULTILINE)
_SUBJECT_PREFIX = re.compile(r"^\s*((re|rv|fw|fwd|res|reenv)\s*:\s*)+", re.IGNORECASE)
_TICKET = re.compile(r"\[[A-Z]+-\d{4}-\d+\]")


def new_body_text(body: str) -> str:
    """The part of a body its writer typed now."""
    text = (body or "").replace("\r\n", "\n").replace("\r", "\n")
    forward = _FORWARD_MARKERS.search(text)
    reply = _REPLY.search(text)
    if reply and (not forward or reply.start() < forward.start()):
        text = text[:reply.start()]
    lines: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        if _SIGNATURE.match(stripped) or _DISCLAIMER.match(stripped):
            if not forward or _DISCLAIMER.match(stripped):
                break
            continue
        if _FORWARD_MARKERS.match(stripped) or (forward and _HEADER_LINE.match(stripped)):
            continue
        lines.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def clean_subject(subject: str) -> str:
    return _TICKET.sub(" ", _SUBJECT_PREFIX.sub("", subject or "")).strip()


def judged_text(subject: str, body: str) -> str:
    """Subject and new body text, the subject first (it is the most telling line)."""
    return f"{clean_subject(subject)}\n{new_body_text(body)}".strip()
