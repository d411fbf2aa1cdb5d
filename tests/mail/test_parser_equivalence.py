"""The hot path's parser (parse_message, the stdlib's parse read as mail-parser reads it)
against mail-parser's own (parse_message_with_mailparser): the same Inbound for every mail
the tests use, the corpus made into mails of several shapes, the mails buzon writes, and
generated mail. Where they differ, on purpose, a test below says so and why."""

from __future__ import annotations

import base64
import json
import os
import quopri
import traceback
import unicodedata
from datetime import UTC, datetime
from email.header import Header
from email.message import EmailMessage
from pathlib import Path

import mailparser
import pytest
from conftest import DATA
from edge_cases import cpython_corpus, generated, mailparser_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import DEFAULT_TEMPLATES_DIR
from daemon.mail.compose import Attachment, build_environment, render_mail
from daemon.mail.parsing import parse_message, parse_message_with_mailparser

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
WHEN = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


# Where mail-parser's own parse raises and the mail became "unparseable", on mail the
# hot path reads (see the tests under "Where the two differ"): the last frame of
# mail-parser's own in the traceback, (function, line).
MAILPARSER_FAILURES = {
    # A lost start boundary in a mail without a boundary or an epilogue of its own.
    ("parse", '"{}".format("--" + self.message.get_boundary()),'),
    ("find_between", "start = text.index(first_token) + len(first_token)"),
    # An attached part the stdlib cannot write back out (mail-parser keeps a copy).
    ("as_string_safe", "return part.as_string()"),
}


def mailparser_failure(raw: bytes) -> tuple[str, str] | None:
    try:
        mailparser.parse_from_bytes(raw)
    except Exception as exc:  # noqa: BLE001 - which failure is the question
        frame = [frame for frame in traceback.extract_tb(exc.__traceback__)
                 if f"{os.sep}mailparser{os.sep}" in frame.filename][-1]
        return frame.name, frame.line
    return None


def assert_same(raw: bytes) -> None:
    light, reference = parse_message(raw), parse_message_with_mailparser(raw)
    if reference.problem.startswith("unparseable") and not light.problem.startswith(
            "unparseable"):
        assert mailparser_failure(raw) in MAILPARSER_FAILURES, (reference.problem, light)
        return
    assert light == reference, {name: (getattr(light, name), getattr(reference, name))
                                for name in light.__dataclass_fields__
                                if getattr(light, name) != getattr(reference, name)}


FIXTURES = sorted(DATA.rglob("*.eml"))
HOSTILE = cpython_corpus() + mailparser_corpus() + list(generated())


@pytest.mark.parametrize("path", FIXTURES, ids=[str(p.relative_to(DATA)) for p in FIXTURES])
def test_every_fixture_mail_reads_the_same(path):
    assert_same(path.read_bytes())


@pytest.mark.parametrize(("name", "raw"), HOSTILE, ids=[name for name, _ in HOSTILE])
def test_every_hostile_mail_reads_the_same(name, raw):
    assert_same(raw)


def corpus_mail(number: int, row: dict) -> bytes:
    """A corpus question as a citizen's mail, in one of four shapes by its number."""
    message = EmailMessage()
    shape = number % 4
    message["From"] = (f"Ciudadano {number} <c{number}@correo.test>", f"c{number}@correo.test",
                       f"Peña Núñez, José {number} <j{number}@correo.test>",
                       f'"Ana {number}" <ana.{number}@correo.test>')[shape]
    message["To"] = "consultas@osce.test"
    if shape == 2:
        message["Cc"] = "Oficina <oficina@osce.test>, otra@correo.test"
    message["Subject"] = row["subject"] or "consulta"
    message["Message-ID"] = f"<corpus-{number}@correo.test>"
    if shape == 1:  # Latin-1 where the text allows it
        latin = all(ord(c) < 256 for c in row["body"])
        message.set_content(row["body"], charset="iso-8859-1" if latin else "utf-8",
                            cte="quoted-printable")
    else:
        message.set_content(row["body"])
    if shape >= 2:
        message.add_alternative(f"<p>{row['body']}</p>", subtype="html")
    if shape == 3:
        message.add_attachment(b"%PDF-1.4 \x00\xff", maintype="application", subtype="pdf",
                               filename="expediente.pdf")
    return bytes(message)


def test_the_corpus_made_into_mails_reads_the_same():
    rows = [json.loads(line) for path in sorted(CORPUS.glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) > 1000
    for number, row in enumerate(rows):
        assert_same(corpus_mail(number, row))


def test_the_mails_buzon_writes_read_the_same():
    env = build_environment(DEFAULT_TEMPLATES_DIR)
    picture = Attachment("logo.png", "image/png", b"\x89PNG\r\n", content_id="logo")
    sheet = Attachment("reporte.xlsx", "application/octet-stream", b"PK\x03\x04")
    for attachments in ((), (picture,), (sheet,), (picture, sheet)):
        outgoing = render_mail(
            env, "acuse_consulta",
            {"ticket_id": "C-2026-000001", "asunto": "¿Cómo renuevo?", "nombre": "José",
             "recibido": WHEN, "recepcion_oficial": WHEN, "plazo": WHEN,
             "fuera_de_horario": False, "hora_corte": "16:30"},
            sender=("OECE - Atención al usuario", "consultas@osce.test"),
            recipient="jose@correo.test", message_id="<ack.1@buzon.osce.test>", now=WHEN,
            in_reply_to="<a@correo.test>", cc=["copia@correo.test"], attachments=attachments)
        assert_same(outgoing.raw.encode())


def part(head: bytes, body: bytes = b"texto") -> bytes:
    return head + b"\r\n\r\n" + body + b"\r\n"


def container(boundary: bytes, head: bytes, *parts: bytes) -> bytes:
    return (b"Content-Type: multipart/mixed; boundary=" + boundary + head + b"\r\n\r\n"
            + b"".join(b"--" + boundary + b"\r\n" + p for p in parts)
            + b"--" + boundary + b"--\r\n")


NAMED_INLINE = part(b'Content-Type: text/plain\r\nContent-Disposition: inline; filename="a.txt"')
FINE_POINTS = {
    # A name of blanks is no name: the part is text.
    "blank name": (part(b'Content-Type: text/plain; name="  "'), "texto"),
    "empty encoded name": (part(b"Content-Type: text/plain; name==?utf-8?q??="), "texto"),
    "named part": (part(b'Content-Type: text/plain; name="carta.txt"'), ""),
    # Named inline text is text, but not inside an attached container, however deep.
    "named inline": (NAMED_INLINE, "texto"),
    "named inline in an attachment": (container(
        b"a", b"\r\nContent-Disposition: attachment", NAMED_INLINE), ""),
    "named inline deep in an attachment": (container(
        b"a", b"\r\nContent-Disposition: attachment", container(b"b", b"", NAMED_INLINE)), ""),
    "html of another main type": (part(b"Content-Type: application/html", b"<p>hola</p>"),
                                  "hola"),
}


@pytest.mark.parametrize("name", FINE_POINTS)
def test_the_fine_points_of_which_part_is_text_read_the_same(name):
    body, text = FINE_POINTS[name]
    raw = b"From: ana@correo.test\r\nSubject: Consulta\r\nMIME-Version: 1.0\r\n" + body
    assert_same(raw)
    assert parse_message(raw).text == text


# Where the two differ ------------------------------------------------------------------

def test_a_lost_boundary_inside_a_mail_without_one_is_still_read():
    """mail-parser looks for a lost part in the top of the mail's epilogue, and raises
    when the top has no boundary (TypeError) or no epilogue (AttributeError): the mail
    was quarantined as unparseable. The hot path reads the rest of it instead."""
    inner = (b'Content-Type: multipart/mixed; boundary="nunca"\r\n\r\n--otra\r\nhola\r\n')
    for top in (b"Content-Type: message/rfc822\r\n\r\n",
                b'Content-Type: multipart/mixed; boundary="a"\r\n\r\n--a\r\n'):
        raw = (b"From: Ana <ana@correo.test>\r\nSubject: Consulta\r\n" + top + inner)
        assert mailparser_failure(raw) in MAILPARSER_FAILURES
        light = parse_message(raw)
        assert not light.problem
        assert (light.from_address, light.subject) == ("ana@correo.test", "Consulta")


def test_an_attachment_the_stdlib_cannot_write_out_leaves_the_rest_readable():
    """mail-parser keeps a copy of each attachment, and a container's copy is written
    back out by the stdlib, which raises on 8-bit text under an RFC 2231 charset
    (TypeError): the mail was quarantined. The hot path never reads attachments."""
    raw = (b"From: Ana <ana@correo.test>\r\nSubject: Consulta\r\n"
           b'Content-Type: multipart/mixed; boundary="b0"\r\nContent-Disposition: attachment'
           b"\r\n\r\n--b0\r\nContent-Type: text/plain; charset*=utf-8''%C3%A9\r\n\r\n"
           b"Hola \xc3\xa9\r\n--b0--\r\n")
    assert mailparser_failure(raw) in MAILPARSER_FAILURES
    assert parse_message_with_mailparser(raw).problem.startswith("unparseable mail")
    light = parse_message(raw)
    assert (light.problem, light.text, light.from_address) == ("", "Hola é", "ana@correo.test")


def test_a_part_after_the_end_boundary_is_recovered_by_both():
    """A start boundary lost inside: mail-parser reads the part left in the epilogue."""
    raw = (b"From: ana@correo.test\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n"
           b"--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\nnada\r\n--a--\r\n"
           b"--a\r\nContent-Type: text/plain\r\n\r\nrecuperado\r\n--a--\r\n")
    assert_same(raw)
    assert parse_message(raw).text == "recuperado"


def test_several_subjects_give_the_first_in_both():
    """mail-parser gives a list when Subject repeats; its text was once the list's repr
    ("['Uno', 'Dos']"). Both now read the first, as the headers do."""
    raw = (b"From: ana@correo.test\r\nSubject: Uno\r\nSubject: Dos\r\n\r\nHola\r\n")
    assert parse_message(raw).subject == parse_message_with_mailparser(raw).subject == "Uno"


def test_mail_nested_too_deep_is_refused_by_both_with_one_reason():
    [(_name, raw)] = [(name, raw) for name, raw in generated() if name == "nested-2000-deep"]
    assert parse_message(raw).problem == "unparseable mail (MIME parts nested too deep)"


# Generated mail -------------------------------------------------------------------------

words = st.text("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789", min_size=1, max_size=8)
plain_address = st.one_of(
    st.builds("{}@{}.{}".format, words, words, st.sampled_from(["test", "pe"])),
    st.from_regex(r"[A-Za-z0-9_+-]{1,6}(\.[A-Za-z0-9_+-]{1,4}){0,2}@[a-z0-9-]{1,5}"
                  r"(\.[A-Za-z0-9-]{1,4}){0,2}", fullmatch=True))
name_words = st.lists(words, max_size=4).flatmap(
    lambda ws: st.sampled_from([" ", "  ", "\t", " \t "]).map(lambda gap: gap.join(ws)))
odd_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
address = st.one_of(
    plain_address,
    st.builds("{} <{}>".format, name_words, plain_address),
    st.builds("{}<{}>".format, st.sampled_from(["", " ", "\t", "Ana  Ruiz ", "Ing. Ana "]),
              plain_address),
    st.builds('"{}" <{}>'.format, odd_text.filter(lambda t: '"' not in t), plain_address),
    st.builds("{} <{}>".format, odd_text.map(lambda t: Header(t, "utf-8").encode()),
              plain_address),
    st.builds("{} ({})".format, plain_address, words),
    st.builds("{}, {}".format, plain_address, plain_address),
    st.builds("{} <{}> {}".format, words, plain_address, words),
    st.builds("{}<{}>".format, words, plain_address.map(lambda a: a.replace("@", "..@"))),
    st.sampled_from(["undisclosed-recipients:;", "<>", "@", "a@b.", "<a@b.test", "a@b.test>",
                     "Ana <a@b.test>, <c@d.test>", "=?utf-8?q?Ana?= <a@b.test>"]),
    odd_text,
)


@settings(max_examples=500, deadline=None)
@given(sender=address, cc=address)
def test_generated_senders_and_copies_read_the_same(sender, cc):
    assert_same(f"From: {sender}\r\nTo: a@b.test, {cc}\r\nCc: {cc}\r\n\r\nHola\r\n"
                .encode())


def header_bytes(value: str, raw_8bit: bool) -> bytes:
    """A field's value as it is, or beyond ASCII either as raw UTF-8 or encoded words."""
    if value.isascii() or raw_8bit:
        return value.encode("utf-8")
    return Header(value, "utf-8").encode().encode()


charsets = st.sampled_from(["", "utf-8", "iso-8859-1", "windows-1252", "x-unknown", "utf-16",
                            "us-ascii"])
encodings = st.sampled_from(["", "7bit", "8bit", "base64", "quoted-printable", "BASE64 "])
# MIME fields, some with raw bytes beyond ASCII (UTF-8 or not) where a name or charset goes.
parameters = st.sampled_from([b"", b'; name="adjunto.bin"', b'; name="\xc3\xa9.txt"',
                              b'; name="\xff"', b"; charset*=utf-8''%C3%A9", b"; charset=\xff8",
                              b"; name*=utf-8''%20", b'; name="  "'])
dispositions = st.sampled_from([b"", b"inline", b"attachment", b'inline; filename="a.txt"',
                                b'attachment; filename="x.pdf"', b'attachment; filename="  "',
                                b"INLINE", b'inline; filename="\xc3\xa1"',
                                b'attachment; filename="\xff"', b"inl\xffine",
                                b"inline; filename==?utf-8?q??="])
content_types = st.sampled_from(["text/plain", "text/html", "application/pdf", "text/rtf",
                                 "text/", "image/png", "message/rfc822", "text/csv",
                                 "application/html"])


@st.composite
def leaf(draw) -> bytes:
    content_type, charset, encoding = draw(content_types), draw(charsets), draw(encodings)
    text = draw(st.one_of(odd_text, st.sampled_from([
        "Hola, ¿cómo renuevo mi RNP?",
        unicodedata.normalize("NFD", "Inscripción en el RNP: ¿qué año?")])))
    body = draw(st.one_of(st.just(text.encode(charset or "utf-8", "replace")
                                  if charset not in ("x-unknown",) else text.encode()),
                          st.binary(max_size=60)))
    if encoding.strip().lower() == "base64":
        body = base64.encodebytes(body)
    elif encoding == "quoted-printable":
        body = quopri.encodestring(body)
    lines = [f"Content-Type: {content_type}".encode()
             + (f"; charset={charset}".encode() if charset else b"") + draw(parameters)]
    if encoding:
        lines.append(f"Content-Transfer-Encoding: {encoding}".encode())
    if disposition := draw(dispositions):
        lines.append(b"Content-Disposition: " + disposition)
    if draw(st.booleans()):
        lines.append(b"Content-ID: <parte@correo.test>")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body + b"\r\n"


def multipart(children: st.SearchStrategy) -> st.SearchStrategy:
    @st.composite
    def build(draw) -> bytes:
        boundary = f"b{draw(st.integers(0, 10**6))}"
        parts = draw(st.lists(children, min_size=0, max_size=3))
        subtype = draw(st.sampled_from(["mixed", "alternative", "related"]))
        disposition = draw(st.sampled_from(["", "attachment", "inline",
                                            'attachment; filename="todo.zip"']))
        head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n'
        if disposition:
            head += f"Content-Disposition: {disposition}\r\n"
        body = b"".join(f"--{boundary}\r\n".encode() + part for part in parts)
        # An end, none, a wrong one, or one with a part after it (which mail-parser
        # recovers when a start boundary was lost).
        ending = draw(st.sampled_from([f"--{boundary}--\r\n", "", "--otra--\r\n",
                                       f"--{boundary}--\r\nepilogo\r\n",
                                       f"--{boundary}--\r\n--{boundary}\r\n"])).encode()
        if ending.endswith(f"--{boundary}\r\n".encode()):
            ending += draw(leaf()) + f"--{boundary}--\r\n".encode()
        return head.encode() + b"\r\n" + body + ending
    return build()


bodies = st.recursive(leaf(), multipart, max_leaves=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sender=address, to=address, cc=st.one_of(st.none(), address),
       subject=st.one_of(odd_text, st.just("Consulta sobre el RNP")), raw_8bit=st.booleans(),
       body=bodies)
def test_generated_mail_reads_the_same(sender, to, cc, subject, raw_8bit, body):
    head = (b"From: " + header_bytes(sender, raw_8bit) + b"\r\n"
            + b"To: " + to.encode("utf-8") + b"\r\n"
            + (b"Cc: " + cc.encode("utf-8") + b"\r\n" if cc is not None else b"")
            + b"Subject: " + header_bytes(subject, raw_8bit) + b"\r\n"
            + b"Message-ID: <gen@correo.test>\r\nMIME-Version: 1.0\r\n")
    assert_same(head + body)
