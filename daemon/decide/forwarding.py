"""Mail the staff forward between the agency's own mailboxes (manual 9.1: a suggestion
that came to consultas@ goes through sugerencias@, and the other way): the forward is
read as the original citizen's mail, from the header block the client wrote above it.
Pure: text in, the original out."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from email.utils import parseaddr

from daemon.mail.parsing import Inbound, one_line, valid_address

# Subject prefixes clients put on a forward: Outlook (RV, FW, TR), Gmail and Thunderbird
# (Fwd), Apple Mail (Fwd), Spanish webmails (Reenviar, RV).
_FORWARD_SUBJECT = re.compile(r"^\s*(?:(?:rv|fw|fwd|tr|reenv(?:iado|iar)?)\s*:\s*)+", re.I)
_REPLY_SUBJECT = re.compile(r"^\s*(?:(?:re|rv|fw|fwd|tr|aw|sv)\s*:\s*)+", re.I)
# Lines that open a forwarded message in Gmail, Thunderbird, Apple Mail and Outlook.
_SEPARATOR = re.compile(
    r"^[\s>*_-]*(?:-+\s*)?(?:forwarded message|mensaje reenviado|inicio del mensaje "
    r"reenviado|begin forwarded message|original message|mensaje original)\b", re.I)
_FIELD = re.compile(r"^[\s>*]*(de|from|asunto|subject|enviado(?: el)?|sent|fecha|date|para|"
                    r"to|cc)\s*\**\s*:\s*\**\s*(.*)$", re.I)
_MAILTO = re.compile(r"\[mailto:([^\]]+)\]", re.I)


@dataclass(frozen=True)
class Original:
    """The forwarded mail, as its header block and body tell it."""

    address: str
    name: str
    subject: str
    text: str


def is_forward(subject: str, text: str) -> bool:
    return bool(_FORWARD_SUBJECT.match(subject)) or any(
        _SEPARATOR.match(line) for line in text.splitlines())


def _sender(value: str) -> tuple[str, str]:
    """(name, address) from "Name <addr>", "Name [mailto:addr]", "addr" or "*Name* <addr>"."""
    value = _MAILTO.sub(r"<\1>", value.replace("*", "")).strip()
    name, address = parseaddr(value)
    return one_line(name.strip(' "'), 200), address.strip().lower()


def original_of(text: str) -> Original | None:
    """The first forwarded message in `text`: its From, Subject and body (its quoting
    marks taken off), or None when no header block names a valid sender."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        match = _FIELD.match(line)
        if not match or match.group(1).lower() not in ("de", "from"):
            continue
        # The block: consecutive field lines around the From (Thunderbird puts Asunto and
        # Fecha above it, and aligns the values with tabs).
        while start > 0 and _FIELD.match(lines[start - 1]):
            start -= 1
        fields, end = {}, start
        while end < len(lines) and _FIELD.match(lines[end]):
            found = _FIELD.match(lines[end])
            if found:
                fields.setdefault(found.group(1).lower(), found.group(2).strip())
            end += 1
        subject = fields.get("asunto", fields.get("subject", ""))
        if len(fields) < 2 or not (subject or {"enviado", "sent", "fecha", "date"} & set(fields)):
            continue
        name, address = _sender(fields.get("de", fields.get("from", "")))
        if not valid_address(address):
            continue
        body = [re.sub(r"^\s?>\s?", "", body_line) for body_line in lines[end:]]
        return Original(address, name, one_line(subject), "\n".join(body).strip())
    return None


def unwrap(inbound: Inbound, staff: frozenset[str]) -> Inbound:
    """A forward by staff (an own mailbox, an assistant, a coordinator) becomes the
    original citizen's mail: their address, name, subject and text. The forwarder's
    thread and trace fields go (they speak of the forward, not of the citizen); the
    forwarder is kept in `forwarded_by`. Anything else comes back as it was."""
    if inbound.problem or inbound.from_address not in staff:
        return inbound
    if not is_forward(inbound.subject, inbound.text):
        return inbound
    original = original_of(inbound.text)
    if original is None or original.address in staff:
        return inbound
    subject = _REPLY_SUBJECT.sub("", original.subject or _FORWARD_SUBJECT.sub("",
                                                                             inbound.subject))
    return replace(inbound, from_address=original.address, from_name=original.name,
                   reply_to="", subject=subject, text=original.text, in_reply_to=(),
                   references=(), trace_fields=(), forwarded_by=inbound.from_address,
                   forward_note=f"{inbound.subject}\n{inbound.text[:2000]}")
