"""Raw mail bytes to an Inbound record (pure; never raises on bad mail)."""

from __future__ import annotations

import email
import re
import unicodedata
from dataclasses import dataclass, field
from email import errors
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr
from functools import cached_property
from html.parser import HTMLParser

import mailparser
from mailparser.exceptions import MailParserRecursionError
from mailparser.utils import decode_header_part, get_addresses

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


def _header_map(message: Message) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in message.items():
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
    """The mail as mail-parser reads it, from the stdlib's parse alone (the hot path:
    mail-parser's own parse costs ten times more, for attachments, defects and trace
    fields buzon does not read). tests/mail/test_parser_equivalence.py holds it equal to
    parse_message_with_mailparser."""
    return _guarded(_parse, raw)


def parse_message_with_mailparser(raw: bytes) -> Inbound:
    """The same record through mail-parser's parse (the reference for parse_message)."""
    return _guarded(_parse_with_mailparser, raw)


def _guarded(parse, raw: bytes) -> Inbound:
    try:
        if not raw or not raw.strip():
            return Inbound(problem="empty message")
        return parse(raw)
    except (RecursionError, MailParserRecursionError):  # the stdlib walks parts recursively
        return Inbound(problem="unparseable mail (MIME parts nested too deep)")
    except Exception as exc:  # noqa: BLE001 - bad mail becomes a record with its problem
        return Inbound(problem=f"unparseable mail ({type(exc).__name__}: {one_line(exc, 200)})")


def _parse_with_mailparser(raw: bytes) -> Inbound:
    parsed = mailparser.parse_from_bytes(raw)
    subject = parsed.subject  # a list when the mail has several Subject fields
    return _inbound(parsed.message, (parsed.from_ or [("", "")])[0],
                    (parsed.to or []) + (parsed.cc or []),
                    subject[0] if isinstance(subject, list) else subject,
                    parsed.text_plain, parsed.text_html)


def _parse(raw: bytes) -> Inbound:
    message = email.message_from_bytes(raw)  # compat32, as mail-parser parses
    plain, html = _bodies(message)
    return _inbound(message, (_mailboxes(message, "from") or [("", "")])[0],
                    _mailboxes(message, "to") + _mailboxes(message, "cc"),
                    decode_header_part(message.get("subject")), plain, html)


# The shapes nearly every From and To take: `Some Name <address>` or a bare address, of
# ASCII letters, digits and dot-atoms alone, where mail-parser's reading is plain (the
# tests hold the two equal). Any other shape goes to mail-parser's parser.
_ATOM = r"[A-Za-z0-9_+-]+"
_PLAIN_ADDRESS = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_MAILBOX = re.compile(
    rf"[ \t]*(?:([A-Za-z0-9 \t]*)<({_PLAIN_ADDRESS})>|({_PLAIN_ADDRESS}))[ \t]*")


def _mailboxes(message: Message, name: str) -> list[tuple[str, str]]:
    """(name, address) of the first such field, by mail-parser's own structural address
    parser: the stdlib's of this Python (3.11.7) has no strict mode (CVE-2023-27043)."""
    value = message.get(name)
    plain = _PLAIN_MAILBOX.fullmatch(value) if isinstance(value, str) else None
    if plain:
        return [(" ".join((plain[1] or "").split()), plain[2] or plain[3])]
    return [("" if shown == address else shown, address)
            for shown, address in get_addresses(value, decode_names=True) if address]


# mail-parser's reading of the bodies (mailparser/core.py, MailParser.parse), without
# what buzon does not read. Where a step looks odd, it is mail-parser's.

def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _bodies(message: Message) -> tuple[list[str], list[str]]:
    """The text/plain and the text/html bodies: every part not an attachment nor inside
    one, and a named inline text part too."""
    parts, in_attachment = [], set()
    for part in message.walk():
        inside = part in in_attachment
        parts.append((part, inside))
        if part.is_multipart():
            disposition = part.get_content_disposition()
            # RFC 2183 2.9: a container's disposition covers what it holds.
            if inside or disposition not in (None, "inline") or (
                    disposition != "inline" and part.get_filename()):
                in_attachment.update(part.get_payload())
    if any(isinstance(defect, errors.StartBoundaryNotFoundDefect)
           for part, _ in parts for defect in part.defects):
        parts += _epilogue_part(message)
    plain, html = [], []
    for part, inside in parts:
        content_type = part.get_content_type()
        kind = content_type.partition("/")[2]
        # Only plain and html text is kept (of any main type, as mail-parser sorts it).
        if kind not in ("plain", "html") or part.is_multipart():
            continue
        # (mail-parser reads these three from a copy of the MIME fields in UTF-8, U+FFFD
        # for other bytes: the stdlib puts U+FFFD there too, and either way such a
        # name is a name and such a charset is no charset.)
        disposition = _nfc(part.get_content_disposition() or "").lower()
        # mail-parser's other signs of an attachment (a Content-ID, an rtf type) never
        # mark a plain or html part.
        attachment = disposition == "attachment" or bool(decode_header_part(part.get_filename()))
        inline_body = (not inside and disposition == "inline"
                       and content_type in ("text/plain", "text/html"))
        if attachment and not inline_body:
            continue
        if text := _body_text(part, part.get_content_charset("utf-8")):
            (html if kind == "html" else plain).append(text)
    return plain, html


def _epilogue_part(message: Message) -> list[tuple[Message, bool]]:
    """The part a lost start boundary left in the epilogue. (mail-parser raises where
    the mail has no boundary or no epilogue of its own: here the rest is still read.)"""
    boundary, epilogue = message.get_boundary(), message.epilogue
    if boundary is None or epilogue is None:
        return []
    first, last = f"--{boundary}", f"--{boundary}--"
    start = epilogue.find(first)
    end = epilogue.find(last, start + len(first))
    if start < 0 or end < 0:
        return []
    try:
        return [(email.message_from_string(epilogue[start + len(first):end].strip()), True)]
    except Exception:  # noqa: BLE001 - as mail-parser: the epilogue is a bonus
        return []


def _body_text(part: Message, charset: str) -> str:
    payload = part.get_payload(decode=True)
    encoding = str(part.get("Content-Transfer-Encoding", "") or "").strip().lower()
    if not encoding or encoding in ("7bit", "8bit"):
        text = part._payload  # the stored text, when it is text already
        if isinstance(text, str):
            try:
                text.encode("utf-8")
                return text
            except UnicodeEncodeError:
                pass
    if not payload:
        return ""
    try:
        text = payload.decode(charset)
        text.encode("utf-8")  # some codecs give lone surrogates
    except (LookupError, UnicodeError):
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            text = payload.decode("utf-8", "replace")
    return _nfc(text)


def _inbound(message: Message, sender: tuple[str, str], recipients: list[tuple[str, str]],
             subject: str, plain: list[str], html: list[str]) -> Inbound:
    headers = _header_map(message)
    from_name, from_address = one_line(sender[0], 200), sender[1].lower()
    if not from_address:
        from_name, from_address = _first_address(headers.get("from", ""))
    _, reply_to = _first_address(headers.get("reply-to", ""))
    text = "\n".join(plain).strip()
    if not text and html:
        text = html_to_text("\n".join(html))
    message_id = message_ids(headers.get("message-id", ""))
    problem = ""
    if not headers:
        problem = "no mail headers"
    elif not valid_address(from_address):
        problem = "no valid sender address in From"
    return Inbound(
        message_id=message_id[0] if message_id else "",
        subject=one_line(subject or ""),
        from_address=from_address if valid_address(from_address) else "",
        from_name=from_name,
        reply_to=reply_to if valid_address(reply_to) else "",
        to=tuple(address.lower() for _, address in recipients if address),
        # A capability buzon issued comes back here; past this point only its digest.
        in_reply_to=_thread_ids(headers.get("in-reply-to", "")),
        references=_thread_ids(headers.get("references", "")),
        headers=headers,
        content_type=headers.get("content-type", "text/plain").split(";")[0].strip().lower(),
        text=text.replace("\x00", ""),
        problem=problem,
        trace_fields=tuple((str(name).lower(), one_line(value, 4000))
                           for name, value in message.items()
                           if str(name).lower() in _TRACE_FIELDS),
    )
