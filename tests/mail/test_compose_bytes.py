"""The composer's quick helpers (daemon.mail.compose) give the bytes the straightforward
ways give: encoded-words split character by character, base64 by the standard library's
encodebytes, the time by strftime; and so does a whole mail built with either. Message-IDs
drawn from buffered random bytes stay unique, in a forked child too."""

from __future__ import annotations

import base64
import itertools
import os
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_string

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config import DEFAULT_TEMPLATES_DIR
from daemon.mail import compose
from daemon.mail.compose import Attachment, build_environment, new_message_id, render_mail


def encoded_char_by_char(value: str) -> str:
    if value.isascii():
        return value
    words, chunk = [], b""
    for char in value:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > 45:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)


def base64_by_encodebytes(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_encoded_words_are_the_character_by_character_ones(value):
    assert compose._encoded(value) == encoded_char_by_char(value)


def test_encoded_words_split_where_characters_end():
    for value in ("é" * 23, "é" * 22 + "a", "a" + "€" * 15, "🙂" * 12, "a🙂" * 9,
                  "OECE - Atención al usuario"):
        assert compose._encoded(value) == encoded_char_by_char(value), value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1000))
def test_base64_lines_are_the_standard_librarys(data):
    assert compose._base64_lines(data) == base64_by_encodebytes(data)


@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])))
def test_the_time_of_day_is_strftimes(moment):
    assert compose.spanish_datetime(moment).endswith(f" {moment:%H:%M}")


def test_a_whole_mail_is_the_same_bytes_as_with_the_straightforward_helpers(monkeypatch):
    env = build_environment(DEFAULT_TEMPLATES_DIR)
    when = datetime(2026, 11, 26, 1, 5, tzinfo=UTC)

    def mail() -> str:
        tokens = (f"{n:024x}" for n in itertools.count())  # the same boundaries each time
        monkeypatch.setattr(compose._random, "hex", lambda _size: next(tokens))
        return render_mail(
            env, "acuse_consulta",
            {"ticket_id": "C-2026-000001", "asunto": "¿Cómo renuevo mi inscripción? " * 4,
             "nombre": "José Ñañez 🙂", "recibido": when, "recepcion_oficial": when,
             "plazo": when, "fuera_de_horario": True, "hora_corte": "16:30"},
            sender=("OECE - Atención al usuario", "consultas@osce.test"),
            recipient="jose@correo.test", message_id="<ack.1@buzon.osce.test>", now=when,
            attachments=(Attachment("logo.png", "image/png", bytes(range(256)) * 3,
                                    content_id="logo"),
                         Attachment("reporte.xlsx", "application/octet-stream", b"PK" * 99))
        ).raw

    quick = mail()
    monkeypatch.setattr(compose, "_encoded", encoded_char_by_char)
    monkeypatch.setattr(compose, "_base64_lines", base64_by_encodebytes)
    monkeypatch.setattr(compose, "spanish_datetime", lambda moment: (
        f"{compose._DAYS[moment.weekday()]} {moment.day} de "
        f"{compose._MONTHS[moment.month - 1]} de {moment.year}, a la {moment:%H:%M}"))
    env.filters["fecha"] = compose.spanish_datetime
    [text] = [part.get_payload(decode=True).decode() for part in
              message_from_string(quick).walk() if part.get_content_type() == "text/plain"]
    assert "=?utf-8?b?" in quick and "a la 01:05" in text
    assert mail() == quick


def test_message_ids_are_unique_and_a_forked_judge_draws_its_own():
    """Random bytes are read 4 KiB at a time: a forked child must not reuse the ones
    its parent had read but not yet used (two mails would share a Message-ID)."""
    ids = {new_message_id("buzon.osce.test", "ack") for _ in range(20_000)}
    assert len(ids) == 20_000
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.write(writing, new_message_id("buzon.osce.test", "ack").encode())
        os._exit(0)
    os.waitpid(child, 0)
    from_child = os.read(reading, 200).decode()
    os.close(reading)
    os.close(writing)
    assert from_child != new_message_id("buzon.osce.test", "ack")
