"""Hostile and broken mail for the bad-input runs (tests/test_bad_input.py and
benchmarks/soak.py): public corpora where the machine has them, and generated cases."""

from __future__ import annotations

import base64
import sysconfig
from collections.abc import Iterator
from pathlib import Path

CPYTHON_EMAIL_DATA = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"


def cpython_corpus() -> list[tuple[str, bytes]]:
    """The messages CPython's own email tests use, when this Python ships them."""
    if not CPYTHON_EMAIL_DATA.is_dir():
        return []
    return [(f"cpython/{path.name}", path.read_bytes())
            for path in sorted(CPYTHON_EMAIL_DATA.glob("msg_*.txt"))]


def mailparser_corpus() -> list[tuple[str, bytes]]:
    """mail-parser's own test mails, when its installed package carries them."""
    import mailparser

    root = Path(mailparser.__file__).resolve().parent.parent
    found = []
    for folder in (root / "tests" / "mails", Path(mailparser.__file__).parent / "tests"):
        if folder.is_dir():
            found += [(f"mail-parser/{p.name}", p.read_bytes())
                      for p in sorted(folder.iterdir()) if p.is_file()]
    return found


def _head(subject: str = "Consulta sobre el RNP", extra: str = "",
          sender: str = "Ciudadana <ciudadana@correo.test>", number: str = "1") -> str:
    lines = [f"From: {sender}" if sender else "", "To: consultas@osce.test",
             f"Subject: {subject}", "Date: Thu, 26 Nov 2026 10:00:00 -0500",
             f"Message-ID: <edge-{number}@correo.test>", "MIME-Version: 1.0", extra]
    return "\r\n".join(line for line in lines if line) + "\r\n"


def nested(depth: int) -> bytes:
    parts = [_head(number=f"nested-{depth}")]
    for level in range(depth):
        parts.append(f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n')
    parts.append("Content-Type: text/plain\r\n\r\n¿Cómo me inscribo en el RNP?\r\n".replace(
        "¿Cómo", "Como"))
    for level in reversed(range(depth)):
        parts.append(f"--b{level}--\r\n")
    return "".join(parts).encode()


def many_parts(count: int) -> bytes:
    body = [_head(extra='Content-Type: multipart/mixed; boundary="p"', number=f"parts-{count}"),
            "\r\n"]
    for index in range(count):
        body.append(f"--p\r\nContent-Type: text/plain\r\n\r\nparte {index}\r\n")
    body.append("--p--\r\n")
    return "".join(body).encode()


def big_attachment(megabytes: int) -> bytes:
    payload = base64.encodebytes(b"\x00\xff" * (megabytes * 512 * 1024)).replace(b"\n", b"\r\n")
    head = _head(extra='Content-Type: multipart/mixed; boundary="a"',
                 number=f"attachment-{megabytes}").encode()
    return (head + b"\r\n--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"Adjunto mi expediente del RNP.\r\n--a\r\nContent-Type: application/pdf; "
            b'name="expediente.pdf"\r\nContent-Disposition: attachment; filename="exp.pdf"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + payload + b"--a--\r\n")


def generated() -> Iterator[tuple[str, bytes]]:
    """Each edge the issue names, small enough for the test run (the 40 MB one apart)."""
    yield "nested-2000-deep", nested(2000)
    yield "20000-parts", many_parts(20000)
    yield "nul-bytes", (_head(number="nul") + "\r\nHola\x00 mundo\x00 RNP\r\n").encode()
    yield "lying-charset", (_head(extra="Content-Type: text/plain; charset=iso-8859-1",
                                  number="lying") + "\r\n").encode() + \
        "Cotización “urgente” – RNP €".encode("cp1252") + b"\r\n"
    yield "unknown-charset", (_head(extra="Content-Type: text/plain; charset=x-klingon",
                                    number="klingon") + "\r\nQapla' RNP\r\n").encode()
    yield "100kB-header-line", (_head(extra="X-Long: " + "a" * 100_000, number="long")
                                + "\r\nConsulta RNP\r\n").encode()
    yield "encoded-newline-subject", (_head(
        subject="=?utf-8?q?Hola=0D=0ABcc:_victima@correo.test?=", number="injection")
        + "\r\nConsulta\r\n").encode()
    yield "encoded-newline-from", (_head(
        sender="=?utf-8?q?Ana=0D=0ABcc:_x@y.test?= <ana@correo.test>", number="from-inj")
        + "\r\nConsulta\r\n").encode()
    yield "no-from", (_head(sender="", number="nofrom") + "\r\nConsulta sin remitente\r\n"
                      ).encode()
    yield "no-date", (_head(number="nodate").replace(
        "Date: Thu, 26 Nov 2026 10:00:00 -0500\r\n", "") + "\r\nConsulta\r\n").encode()
    yield "duplicate-message-id-a", (_head(number="dup") + "\r\nPrimera versión\r\n").encode()
    yield "duplicate-message-id-b", (_head(number="dup") + "\r\nSegunda versión\r\n").encode()
    yield "only-headers", _head(number="noblank").encode()
    yield "binary-garbage", bytes(range(256)) * 40
    yield "empty", b""
    yield "bare-lf-and-cr", (_head(number="bare").replace("\r\n", "\n") + "\nUno\rDos\n"
                             ).encode()
    yield "bad-base64", (_head(extra="Content-Transfer-Encoding: base64", number="b64")
                         + "\r\n!!!no es base64***\r\n").encode()
    yield "bad-boundary", (_head(extra='Content-Type: multipart/mixed; boundary="nunca"',
                                 number="boundary") + "\r\n--otra\r\nhola\r\n").encode()
    yield "8bit-headers", _head(number="8bit").encode() + \
        b"X-Raw: \xe1\xe9\xed\xf3\xfa\r\n\r\nCuerpo\r\n"
