"""Raw mail bytes to an Inbound record (pure; never raises on bad mail)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.utils import parseaddr
from functools import cached_property
from html.parser import HTMLParser

import mailparser

from classifiers.text import judged_text, reply_text
from daemon.mail.capability import hashed_id

_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$")
_MSGID = re.compile(r"<[^<>\s]+>")
_TRACE_FIELDS = ("received", "authentication-results")


def one_line(text: str, limit: int = 998) -> str:
    """Collapse every run of whitespace (CR and LF included) into one space."""
    return " ".join(str(text or "").split())[:limit]


def folded(text: str) -> str:
    """Upper case without accents, for commands typed on a phone ("Aprobado", "APROBADO")."""
    return "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c)).upper()


def own_part(text: str, sender_name: str = "") -> str:
    """What the writer of a reply typed now, for a command or for passing it on: no
    quoted or forwarded mail, no signature (the one stripper, classifiers.text)."""
    return reply_text(text or "", keep_forwarded=False, sender_name=sender_name)


def valid_address(address: str) -> bool:
    return bool(_ADDRESS.match(address or ""))


def message_ids(value: str) -> tuple[str, ...]:
    return tuple(_MSGID.findall(value or ""))


class _HtmlText(HTMLParser):
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "table", "blockquote"}
    _HIDDEN = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._HIDDEN:
            self.hidden += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - broken HTML still gives whatever text was read
        pass
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


@dataclass(frozen=True)
class Inbound:
    """What the pipeline knows of one mail."""

    message_id: str = ""
    subject: str = ""
    from_address: str = ""
    from_name: str = ""
    reply_to: str = ""
    to: tuple[str, ...] = ()
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = ""
    text: str = ""
    problem: str = ""
    # Received and Authentication-Results fields, top (newest) first: who vouches for
    # the sender depends on where each stands (RFC 8601 section 5).
    trace_fields: tuple[tuple[str, str], ...] = ()
    # A forward by staff read as the citizen's mail (daemon.decide.forwarding): who
    # forwarded it, and the forward's own Subject and text (they may name a ticket).
    forwarded_by: str = ""
    forward_note: str = ""

    @cached_property
    def question(self) -> str:
        """The text it is judged on: subject and new body text (computed once)."""
        return judged_text(self.subject, self.text)

    @property
    def reply_address(self) -> str:
        return self.reply_to or self.from_address

    @property
    def thread_ids(self) -> tuple[str, ...]:
        return self.in_reply_to + tuple(r for r in self.references if r not in self.in_reply_to)


def _header_map(parsed) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in parsed.message.items():
        key = str(name).lower()
        if key not in headers:
            headers[key] = one_line(value if isinstance(value, str) else str(value), 4000)
    return headers


def _thread_ids(value: str) -> tuple[str, ...]:
    """Message-IDs of In-Reply-To or References, with a capability buzon issued kept only
    as its digest. Some libraries fold a long Message-ID as an RFC 2047 encoded-word."""
    if "=?" in value:
        try:
            value = str(make_header(decode_header(value)))
        except (ValueError, LookupError):
            pass
    return tuple(map(hashed_id, message_ids(value)))


def _first_address(value: str) -> tuple[str, str]:
    name, address = parseaddr(value or "")
    return one_line(name, 200), address.strip().lower()


def parse_message(raw: bytes) -> Inbound:
    try:
        return _parse(raw)
    except Exception as exc:  # noqa: BLE001 - bad mail becomes a record with its problem
        return Inbound(problem=f"unparseable mail ({type(exc).__name__}: {one_line(exc, 200)})")


def _parse(raw: bytes) -> Inbound:
    if not raw or not raw.strip():
        return Inbound(problem="empty message")
    parsed = mailparser.parse_from_bytes(raw)
    headers = _header_map(parsed)
    from_name, from_address = "", ""
    if parsed.from_:
        from_name, from_address = one_line(parsed.from_[0][0], 200), parsed.from_[0][1].lower()
    if not from_address:
        from_name, from_address = _first_address(headers.get("from", ""))
    _, reply_to = _first_address(headers.get("reply-to", ""))
    to = tuple(a.lower() for _, a in (parsed.to or []) + (parsed.cc or []) if a)
    text = "\n".join(parsed.text_plain or []).strip()
    if not text and parsed.text_html:
        text = html_to_text("\n".join(parsed.text_html))
    message_id = message_ids(headers.get("message-id", ""))
    problem = ""
    if not headers:
        problem = "no mail headers"
    elif not valid_address(from_address):
        problem = "no valid sender address in From"
    return Inbound(
        message_id=message_id[0] if message_id else "",
        subject=one_line(parsed.subject or ""),
        from_address=from_address if valid_address(from_address) else "",
        from_name=from_name,
        reply_to=reply_to if valid_address(reply_to) else "",
        to=to,
        # A capability buzon issued comes back here; past this point only its digest.
        in_reply_to=_thread_ids(headers.get("in-reply-to", "")),
        references=_thread_ids(headers.get("references", "")),
        headers=headers,
        content_type=headers.get("content-type", "text/plain").split(";")[0].strip().lower(),
        text=text.replace("\x00", ""),
        problem=problem,
        trace_fields=tuple((str(name).lower(), one_line(value, 4000))
                           for name, value in parsed.message.items()
                           if str(name).lower() in _TRACE_FIELDS),
    )
