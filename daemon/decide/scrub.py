"""What of an answer sent to one citizen may be offered to the next (pure, no I/O).

A past answer enters the suggestions index only without what belonged to its citizen
and its writer: the greeting, the closing and signature, the names of both, e-mail
addresses, DNI, RUC and phone numbers (issue 15, point 9). The note buzon puts at the top
of a suggested draft is delimited by two marker lines, defined here once for the template
that writes them and for the check that finds them in a reply that was sent anyway.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_I = re.IGNORECASE

# The note for the assistant -------------------------------------------------------------

NOTE_START = ("=== NOTA PARA LA/EL ASISTENTE (borre desde aquí hasta la línea "
              "«FIN DE LA NOTA») ===")
NOTE_END = "=== FIN DE LA NOTA ==="
# The marker lines as compared: no quote marks, accents, case, spaces or frames, so a
# line re-wrapped, quoted ("> ") or re-cased by a mail client is still recognized. The
# square-bracket markers of earlier drafts still count.
_FRAME = re.compile(r"[\s>=\[\]*_|]+")


def _core(line: str) -> str:
    decomposed = unicodedata.normalize("NFKD", line)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).upper()
    return _FRAME.sub("", plain)


_START_CORE = "NOTAPARALA/ELASISTENTE"
_END_CORE = _core("FIN DE LA NOTA")


def _is_note_start(line: str) -> bool:
    return _core(line).startswith(_START_CORE)


def _is_note_end(line: str) -> bool:
    return _core(line) == _END_CORE


def has_note(text: str) -> bool:
    """The text still holds the note for the assistant (either marker line)."""
    return any(_is_note_start(line) or _is_note_end(line)
               for line in (text or "").splitlines())


def without_note(text: str) -> str:
    """The text with every note block taken out: from a start marker to its end marker,
    or, with the end marker lost, to the first blank line."""
    kept: list[str] = []
    inside, until_blank = False, False
    lines = (text or "").splitlines()
    for i, line in enumerate(lines):
        if not inside and _is_note_start(line):
            inside = True
            until_blank = not any(_is_note_end(rest) for rest in lines[i + 1:])
            continue
        if inside:
            if _is_note_end(line) or (until_blank and not line.strip()):
                inside = False
            continue
        if not _is_note_end(line):  # a lone end marker goes too
            kept.append(line)
    return "\n".join(kept)


# Greeting, closing and signature --------------------------------------------------------

_GREETING = re.compile(
    r"^\W*(estimad[oa]s?(/[oa]s?)?(\([oa]s?\))?|apreciad[oa]s?|distinguid[oa]s?|"
    r"querid[oa]s?|se[ñn]or(a|ita|es)?|sr(a|ta|es)?\.?|hola|buen(os|as)\s+(d[ií]as|tardes|"
    r"noches)|buen d[ií]a|de (mi|nuestra) (mayor )?consideraci[óo]n|a quien corresponda)\b",
    _I)
# A greeting's head ends at its first ",", ":", ";", "!" or "." ("Sr." does not end it).
_GREETING_HEAD = re.compile(
    r"^(?:\b(?:sr|sra|srta|sres|dr|dra|ing|lic)\.|[^,:;!.\n]){0,80}[,:;!.]\s*", _I)
_SHORT_GREETING_WORDS = 8
_CLOSING = re.compile(
    r"^\W*((muy )?atentamente|cordialmente|(un |reciba un )?(cordial |afectuoso )?saludos?"
    r"( cordiales| atentos)?|sin otro particular|quedo (de usted|atent[oa])|"
    r"quedamos atent[oa]s)\b(\W*$|[^.?!]{0,60}\.?$)", _I)
# A signature line: a role, the unit or the agency, a contact line.
_SIGNATURE_WORDS = re.compile(
    r"\b(asistente|especialista|analista|coordinador[a]?|supervisor[a]?|abogad[oa]|"
    r"unidad de atenci[óo]n|organismo especializado|OECE|OSCE|anexo|tel[ée]fono|celular|"
    r"correo)\b", _I)
_NAME_LIKE = re.compile(r"^([A-ZÁÉÍÓÚÑ][\wÁÉÍÓÚÑáéíóúñü.'-]*|de|del|la|las|los|y)"
                        r"(\s+([A-ZÁÉÍÓÚÑ][\wÁÉÍÓÚÑáéíóúñü.'-]*|de|del|la|las|los|y)){0,4}$")
_MAX_SIGNATURE_LINES = 6


def _without_greeting(lines: list[str]) -> list[str]:
    """Greeting lines at the top go; a greeting that opens a sentence loses its head."""
    lines = list(lines)
    while True:
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        if first is None or not _GREETING.match(lines[first].strip()):
            return lines
        text = lines[first].strip()
        head = _GREETING_HEAD.match(text)
        if head is None or len(head.group().split()) > _SHORT_GREETING_WORDS:
            if len(text.split()) > _SHORT_GREETING_WORDS:
                return lines  # a sentence, not a greeting: its names go later
            del lines[first]
            continue
        rest = text[head.end():].strip()
        if rest:
            lines[first] = rest[:1].upper() + rest[1:]
        else:
            del lines[first]


def _without_closing(lines: list[str]) -> list[str]:
    """Everything from the closing formula on, else a trailing signature block."""
    seen_text = False
    for i, line in enumerate(lines):
        if seen_text and _CLOSING.match(line.strip()):
            return lines[:i]
        seen_text = seen_text or bool(line.strip())
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    start = end
    while start > 0 and end - start < _MAX_SIGNATURE_LINES and _signature_line(
            lines[start - 1].strip()):
        start -= 1
    # Never the whole answer: a signature follows some text.
    return lines[:start] if any(line.strip() for line in lines[:start]) else lines


def _signature_line(text: str) -> bool:
    if not text or text.endswith((".", "?", ":", ";")):
        return False
    return bool(_NAME_LIKE.match(text)) or (len(text.split()) <= 12
                                            and bool(_SIGNATURE_WORDS.search(text)))


# Personal data --------------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# Digits that are part of a norm's or a file's number ("344-2018-EF", "N° 2026-00123")
# are never personal data: no digit group glued to "-", "/", "." or "," is taken.
_ALONE_BEFORE, _ALONE_AFTER = r"(?<![\w/.,-])", r"(?![\w/-]|[.,]\d)"
_RUC = re.compile(rf"{_ALONE_BEFORE}(10|15|17|20)\d{{9}}{_ALONE_AFTER}")
_MOBILE = re.compile(
    rf"{_ALONE_BEFORE}(\+\s?51[\s.-]?)?9\d{{2}}[\s-]?\d{{3}}[\s-]?\d{{3}}{_ALONE_AFTER}")
# A landline has its area code ("(01) 614-3636", "+51 1 614 3636") or follows a phone
# word: "344-2018" alone is a norm's number.
_LANDLINE = re.compile(
    rf"(?P<code>\+\s?51[\s.-]?(\(0?\d{{1,2}}\)|0?\d{{1,2}})[\s.-]?|\(0?\d{{1,2}}\)\s?)?"
    rf"{_ALONE_BEFORE}\d{{3}}[\s-]?\d{{4}}{_ALONE_AFTER}")
_PHONE_WORD = re.compile(r"(tel[ée]fono|telf?|fijo|central|llamar)\W{0,6}$", _I)


def _landline(match: re.Match) -> str:
    before = match.string[max(0, match.start() - 20):match.start()]
    return PHONE if match.group("code") or _PHONE_WORD.search(before) else match.group()


_DNI = re.compile(rf"{_ALONE_BEFORE}\d{{8}}{_ALONE_AFTER}")
_HONORIFIC = re.compile(
    r"\b((?i:se[ñn]or(a|ita)?|sr(a|ta)?\.|dr(a)?\.|ing\.|lic\.|abog\.))"
    r"((\s+(?!de\b|del\b)[A-ZÁÉÍÓÚÑ][\wáéíóúñü'-]*)+)")
_NAME_STOPWORDS = {"del", "los", "las", "san", "una", "uno", "por", "para", "con"}
NAME, EMAIL, DNI, RUC, PHONE = "[nombre]", "[correo]", "[DNI]", "[RUC]", "[teléfono]"
PLACEHOLDERS = (NAME, EMAIL, DNI, RUC, PHONE)
_REPEATED_NAME = re.compile(rf"{re.escape(NAME)}(\s+{re.escape(NAME)})+")


def _name_words(names: Iterable[str]) -> set[str]:
    words = set()
    for name in names:
        for word in re.findall(r"[^\W\d_]+", name or ""):
            if len(word) >= 3 and word.lower() not in _NAME_STOPWORDS:
                words.add(word)
    return words


def without_data(text: str, names: Iterable[str] = ()) -> str:
    """E-mail addresses, RUC, phone numbers, DNI and the given names (and any name after
    "señor", "Sra." and the like) replaced by neutral placeholders."""
    text = _EMAIL.sub(EMAIL, text)
    text = _RUC.sub(RUC, text)
    text = _LANDLINE.sub(_landline, _MOBILE.sub(PHONE, text))
    text = _DNI.sub(DNI, text)
    text = _HONORIFIC.sub(lambda m: f"{m.group(1)} {NAME}", text)
    words = _name_words(names)
    if words:
        pattern = r"\b(" + "|".join(re.escape(w) for w in sorted(words, key=len,
                                                                 reverse=True)) + r")\b"
        text = re.sub(pattern, NAME, text, flags=_I)
    return _REPEATED_NAME.sub(NAME, text)


def scrub_answer(text: str, names: Iterable[str] = ()) -> str:
    """The reusable body of an answer: no note, greeting, closing or signature, and no
    personal data (`names`: the earlier citizen's and the writer's, when known)."""
    lines = without_note(text).replace("\r\n", "\n").split("\n")
    lines = _without_closing(_without_greeting(lines))
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in lines)).strip()
    return without_data(body, names)
