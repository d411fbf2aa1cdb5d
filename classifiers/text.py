"""What the writer of a mail typed now, and the text a consulta is judged on (pure).

`reply_text` is the one stripper of quotes and signatures, for every path:

- keep_forwarded=True (`new_body_text`: what the classifier and the suggested answers
  judge): a forwarded mail stays, without its headers, since a forward is often the
  question itself;
- keep_forwarded=False (commands, and an organ's answer, a supervisor's observations or a
  survey comment that is passed on): everything from a forwarded mail on goes too, so a
  command or a token only present in forwarded text does not count.

Either way the earlier mail goes: '>' quotes with the attribution line that opens them,
and the unquoted history below an Outlook, Apple, Samsung or Zimbra header block, a
"Mensaje original" divider or an attribution. New lines written below or between '>'
quotes (bottom-posting, inline answers) stay. The signature goes: a "-- " line, a phone or
app tagline, a legal disclaimer, and a name / cargo / contact block after the text.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

_I = re.IGNORECASE

# Lines are matched stripped of surrounding whitespace.

# --- The earlier mail ----------------------------------------------------------------------

# "El lun, 23 nov 2026 a las 10:15, Mesa <x@y> escribió:" / "On ... wrote:". Gmail wraps it
# over two lines and Yahoo indents it.
_ATTRIBUTION = re.compile(r"^(El|On)\s.{2,240}?\b(escribi[óo]|wrote)\s*:$", _I)
_ATTRIBUTION_OPENING = re.compile(r"^(El|On)\s", _I)
_TIME = re.compile(r"\d{1,2}:\d{2}")
# Over unquoted history only a real attribution counts, and a real one has a time or an
# address: "El comité me escribió:" followed by the letter is typed text.
_ATTRIBUTION_DETAIL = re.compile(rf"{_TIME.pattern}|@")
_DIVIDER = re.compile(
    r"^-{2,}\s*(Mensaje original|Original Message|Respuesta original)\s*-{2,}$", _I)
_UNDERSCORES = re.compile(r"^_{10,}$")  # Outlook draws it above its header block
_FORWARD_MARKER = re.compile(
    r"^(-{2,}\s*(Forwarded message|Mensaje reenviado|Mensaje enviado)\s*-{2,}"
    r"|Inicio del mensaje reenviado:|Begin forwarded message:)$", _I)
# Outlook forwards ("RV:") look exactly like replies: only the subject tells.
_FORWARD_SUBJECT = re.compile(r"^(\[[^\]]*\]\s*)?(rv|fw|fwd|reenv|tr|wg)\s*:", _I)
_FROM_LINE = re.compile(r"^\*?(De|From)\s*:\*?\s*\S", _I)
_SENT_LINE = re.compile(r"^\*?(Enviado(s| el)?|Sent)\s*:", _I)
_DATE_LINE = re.compile(r"^\*?(Fecha|Date)\s*:", _I)
_HEADER_LINE = re.compile(
    r"^\*?(De|From|Para|To|CC|CCO|Bcc|Asunto|Subject|Fecha|Date|Enviado(s| el)?|Sent|"
    r"Responder a|Reply-To)\s*:", _I)
_QUOTE_PREFIX = re.compile(r"^\s*>\s?")

# --- The signature -------------------------------------------------------------------------

_SIGNATURE_DASHES = re.compile(r"^--$")  # "-- ", the signature separator
# "Enviado desde mi iPhone", "Obtener Outlook para Android<https://aka.ms/...>": a short
# line, not a sentence that happens to start the same way.
_TAGLINE = re.compile(
    r"^(Enviado desde (mi|Yahoo|Outlook|Correo)|Sent from (my|Yahoo|Outlook|Mail)|"
    r"(Obtener|Descargar) Outlook para|Get Outlook for)\b[^.?!<]{0,60}\.?(<[^>]*>)?$", _I)
_DISCLAIMER_OPENING = re.compile(
    r"^\W*(AVISO (DE )?CONFIDENCIALIDAD|CONFIDENCIALIDAD|AVISO LEGAL|DISCLAIMER|"
    r"CONFIDENTIALITY|Este (mensaje|correo)|La informaci[óo]n contenida en este|"
    r"This (e-?mail|message))", _I)
# An answer may open "Este correo es para ...": a disclaimer also says one of these.
_DISCLAIMER_WORDS = re.compile(
    r"confidencial|destinatario|prohibid|por error|intended recipient|confidential|"
    r"privileged", _I)
# "Antes de imprimir este correo, piense en el medio ambiente."
_ENVIRONMENT = re.compile(
    r"^\W*(Antes de imprimir|Por favor,? considere|Please consider)"
    r".{0,80}(medio ambiente|environment)", _I)
_CLOSING = re.compile(
    r"^((muy )?atentamente|cordialmente|(un )?(cordial )?saludos?( cordiales| atentos)?|"
    r"((best|kind|warm) )?regards|best|sincerely|gracias de antemano|"
    r"quedo atent[oa]( a (su|sus) \w+)?|quedo a la espera( de su respuesta)?)\W*$", _I)
_PHONE_CUE = re.compile(
    r"\b(anexo|tel[eé]fono|telf?|cel|celular|m[oó]vil|central|phone|mobile|direct)\b"
    r"|\+\d|\(\d{2,3}\)", _I)
_CONTACT_CUE = re.compile(rf"{_PHONE_CUE.pattern}|www\.|https?://|@|\[cid:", _I)
_WORD = re.compile(r"\w+")
_NAME_STOPWORDS = {"del", "los", "las", "para", "and", "the"}
_MAX_SIGNATURE_LINES = 10
_MAX_TERSE_SIGNATURE_LINES = 4  # after a closing formula, with no contact cue
_LOOKAHEAD = 5  # lines looked at past a marker: bounds the work on a hostile mail
_BLANK_RUNS = re.compile(r"\n{3,}")

# --- The subject ---------------------------------------------------------------------------

_SUBJECT_PREFIX = re.compile(r"^\s*((re|rv|fw|fwd|res|reenv)\s*:\s*)+", _I)
_TICKET = re.compile(r"\[[A-Z]+-\d{4}-\d+\]")


class _History(NamedTuple):
    start: int  # first line of the earlier mail
    forwarded: bool  # opened by a forward marker, not by a reply header


def reply_text(body: str, *, keep_forwarded: bool, sender_name: str = "",
               subject: str = "") -> str:
    """What the writer of `body` typed now, without quotes and signature.

    keep_forwarded: keep a forwarded mail (its text, not its headers) below the writer's
    note; otherwise the text ends where a forwarded mail starts.
    sender_name: the From display name; a short line naming the writer starts the signature.
    subject: "RV:" / "Fwd:" tells a forward whose body looks like a reply (Outlook).
    """
    lines = (body or "").replace("\r\n", "\n").replace("\r", "\n").replace(
        "\ufeff", "").split("\n")
    history = _history(lines)
    own = lines[:history.start] if history else lines
    own = _without_signature(_without_quotes(own), _name_words(sender_name))
    if keep_forwarded and history and (
            history.forwarded or _FORWARD_SUBJECT.match(subject or "")):
        own = own + [""] + _forwarded_text(lines[history.start:])
    return _BLANK_RUNS.sub("\n\n", "\n".join(line.rstrip() for line in own)).strip()


def new_body_text(body: str, *, sender_name: str = "", subject: str = "") -> str:
    """The new text of a body, forwarded mail included: what a consulta is judged on."""
    return reply_text(body, keep_forwarded=True, sender_name=sender_name, subject=subject)


def clean_subject(subject: str) -> str:
    return _TICKET.sub(" ", _SUBJECT_PREFIX.sub("", subject or "")).strip()


def judged_text(subject: str, body: str) -> str:
    """Subject and new body text, the subject first (it is the most telling line)."""
    return f"{clean_subject(subject)}\n{new_body_text(body, subject=subject)}".strip()


# --- The earlier mail ----------------------------------------------------------------------

def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _next_text(lines: list[str], start: int) -> str:
    """The first non-blank line of the few from `start` on ("" when there is none)."""
    return next((line for line in lines[start:start + _LOOKAHEAD] if line.strip()), "")


def _attribution(lines: list[str], i: int) -> int:
    """How many lines the attribution at line i takes (2 when wrapped), 0 when none."""
    first = lines[i].strip()
    if not _ATTRIBUTION_OPENING.match(first):
        return 0
    if _ATTRIBUTION.match(first):
        return 1
    if i + 1 < len(lines) and not _quoted(lines[i + 1]) and _ATTRIBUTION.match(
            f"{first} {lines[i + 1].strip()}"):
        return 2
    return 0


def _header_block(lines: list[str], i: int) -> bool:
    """Line i opens a header block: From, then within three lines the date it was sent.
    A "Fecha:" line needs a time or the From line an address: a typed memo has neither."""
    if not _FROM_LINE.match(lines[i].strip()):
        return False
    for line in lines[i + 1:i + 4]:
        text = line.strip()
        if _SENT_LINE.match(text) or (
                _DATE_LINE.match(text) and (_TIME.search(text) or "@" in lines[i])):
            return True
    return False


def _history(lines: list[str]) -> _History | None:
    """Where the unquoted earlier mail starts ('>' quotes are dropped line by line)."""
    for i, line in enumerate(lines):
        text = line.strip()
        if not text or _quoted(text):
            continue
        if _FORWARD_MARKER.match(text):
            return _History(i, forwarded=True)
        if _DIVIDER.match(text) or _header_block(lines, i):
            return _History(i, forwarded=False)
        if _UNDERSCORES.match(text) and i + 1 < len(lines) and _header_block(lines, i + 1):
            return _History(i, forwarded=False)
        size = _attribution(lines, i)
        if size and not _quoted(_next_text(lines, i + size)) and _ATTRIBUTION_DETAIL.search(
                " ".join(lines[i:i + size])):
            return _History(i, forwarded=False)  # Yahoo: the history is indented, not '>'
    return None


def _without_quotes(lines: list[str]) -> list[str]:
    """The lines outside '>' quotes, without the attributions that open the quotes: what
    a bottom-posted or inline answer wrote between them, after a blank line, stays."""
    kept, i, in_quote = [], 0, False
    while i < len(lines):
        size = _attribution(lines, i)
        if size and _quoted(_next_text(lines, i + size)):
            i += size
            continue
        line = lines[i]
        if _quoted(line):
            in_quote = True
        elif not line.strip():
            in_quote = False
            kept.append(line)
        elif not in_quote:  # a line glued under a quote is the quote's own wrapped tail
            kept.append(line)
        i += 1
    return kept


def _forwarded_text(lines: list[str]) -> list[str]:
    """The forwarded mail, which is content: without its markers and header blocks, and
    unquoted when the client quotes it like a reply (Apple Mail)."""
    if _quoted(_next_text(lines, 1)):
        lines = [_QUOTE_PREFIX.sub("", line, count=1) for line in lines]
    kept, in_header = [], False
    for i, line in enumerate(lines):
        text = line.strip()
        if (_FORWARD_MARKER.match(text) or _DIVIDER.match(text) or _UNDERSCORES.match(text)
                or _header_block(lines, i)):
            in_header = True
        elif not (in_header and (not text or _HEADER_LINE.match(text))):
            in_header = False
            if not _quoted(line):  # the forwarded mail's own quotes
                kept.append(line)
    return kept


# --- The signature -------------------------------------------------------------------------

def _without_signature(lines: list[str], name_words: set[str]) -> list[str]:
    lines = lines[:_marked_signature_start(lines)]
    return lines[:_signature_block_start(lines, name_words)]


def _marked_signature_start(lines: list[str]) -> int:
    """A "-- " line or a tagline anywhere; a disclaimer once some text was written."""
    text_seen = False
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        if _SIGNATURE_DASHES.match(text) or _TAGLINE.match(text):
            return i
        if text_seen and (_ENVIRONMENT.match(text) or (
                _DISCLAIMER_OPENING.match(text) and _DISCLAIMER_WORDS.search(
                    _paragraph(lines, i)))):
            return i
        text_seen = True
    return len(lines)


def _signature_block_start(lines: list[str], name_words: set[str]) -> int:
    """Where an unmarked signature starts after the text: at a line naming the sender, after
    a closing formula, or as a last block with a phone or an Anexo. What follows the start
    must look like a signature, never like sentences or a question."""
    text_seen = False
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        if text_seen:
            before = lines[i - 1].strip()
            if ((not before or _CLOSING.match(before)) and _names_sender(text, name_words)
                    and _signature_like(_filled(lines, i, _MAX_SIGNATURE_LINES + 1))):
                return i
            if _CLOSING.match(text):
                end = _after_closings(lines, i)
                tail = _filled(lines, end, _MAX_SIGNATURE_LINES + 1)
                if _signature_like(tail) and (
                        len(tail) <= _MAX_TERSE_SIGNATURE_LINES
                        or any(_CONTACT_CUE.search(line) for line in tail)):
                    return end
        text_seen = True
    return _contact_block_start(lines)


def _contact_block_start(lines: list[str]) -> int:
    """The last block, when it is 2 to 8 signature lines with a phone or an Anexo and the
    text before it does not announce it ("Puede llamar a:")."""
    blocks = _blocks(lines)
    if len(blocks) < 2:
        return len(lines)
    start, end = blocks[-1]
    block = _filled(lines[start:end])
    announced = lines[blocks[-2][1] - 1].strip().endswith(":")
    if (2 <= len(block) <= 8 and not announced and _signature_like(block)
            and any(_PHONE_CUE.search(line) for line in block)):
        return start
    return len(lines)


def _signature_like(filled: list[str]) -> bool:
    """A few short lines, none a question or a sentence: a name, a cargo, an address."""
    return 0 < len(filled) <= _MAX_SIGNATURE_LINES and all(
        len(line) <= 100 and not line.endswith(("?", ":")) and not line.startswith("¿")
        and not (line.endswith(".") and len(line.split()) > 4) for line in filled)


def _names_sender(line: str, name_words: set[str]) -> bool:
    """A short line with two or more words of the sender's display name."""
    words = set(_WORD.findall(_folded(line)))
    return len(name_words) >= 2 and len(words) <= 10 and len(words & name_words) >= 2


def _name_words(sender_name: str) -> set[str]:
    return {word for word in _WORD.findall(_folded(sender_name or ""))
            if len(word) > 2 and word not in _NAME_STOPWORDS}


def _after_closings(lines: list[str], i: int) -> int:
    """The line after the closing formula at i and any closing or blank lines that follow
    ("Quedo atenta." then "Saludos cordiales,"): the writer typed those, they stay."""
    end = i + 1
    while end < min(len(lines), i + _LOOKAHEAD) and (
            not lines[end].strip() or _CLOSING.match(lines[end].strip())):
        end += 1
    return end


def _paragraph(lines: list[str], i: int) -> str:
    """The first lines of the paragraph at i: a disclaimer says what it is early."""
    text = []
    for line in lines[i:i + 2 * _LOOKAHEAD]:
        if not line.strip():
            break
        text.append(line.strip())
    return " ".join(text)


def _blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each run of non-blank lines."""
    blocks, start = [], None
    for i, line in enumerate([*lines, ""]):
        if line.strip() and start is None:
            start = i
        elif not line.strip() and start is not None:
            blocks.append((start, i))
            start = None
    return blocks


def _filled(lines: list[str], start: int = 0, limit: int | None = None) -> list[str]:
    """The non-blank lines from `start` on, stripped (the first `limit` of them)."""
    found: list[str] = []
    for j in range(start, len(lines)):
        if lines[j].strip():
            found.append(lines[j].strip())
            if len(found) == limit:
                break
    return found


def _folded(text: str) -> str:
    """Lower case without accents."""
    return "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c)).lower()
