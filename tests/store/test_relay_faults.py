"""The SMTP relay refusing or away: a 4xx is retried with a growing pause until a
deadline, then the ticket records it and the coordinators are told once; a 5xx is
permanent and recorded on the ticket. Real aiosmtpd, real Dovecot."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from conftest import fixture_bytes

from daemon.mail.sandbox import free_port

WHEN = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def run(d, after: timedelta = timedelta()):
    """`run --once` with the clock `after` from now (what is due is decided by it)."""
    d.buzon("run", "--once", "--now", (datetime.now(UTC) + after).isoformat())


def outbox(d, kinds: tuple[str, ...] = ("<ack.", "<envio-fallido.")) -> list[tuple]:
    """The acknowledgement and alert mails in the outbox (the clock moved ahead may also
    make a morning summary due: not what these tests look at)."""
    with sqlite3.connect(d.database.removeprefix("sqlite:///")) as db:
        rows = db.execute("SELECT status, attempts, next_attempt_at, last_error, message_id "
                          "FROM outbox WHERE action = 'send' ORDER BY id").fetchall()
    return [row for row in rows if row[4].startswith(kinds)]


def test_a_relay_asking_to_try_later_gets_the_mail_on_a_later_try(deployment):
    d = deployment
    d.write_config(smtp={**d.config["smtp"], "retry_initial_seconds": 600})
    d.sink.refusal = "451 4.3.0 Intente más tarde"
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), WHEN)
    run(d)
    [(status, attempts, retry_at, error, _id)] = outbox(d)
    assert (status, attempts) == ("pending", 1) and retry_at is not None and "451" in error
    d.sink.refusal = ""
    run(d, timedelta(minutes=1))  # before its pause (8 to 10 minutes) is over
    assert d.acknowledgements() == []
    run(d, timedelta(minutes=11))
    assert len(d.acknowledgements()) == 1
    assert outbox(d)[0][:2] == ("done", 2)  # two tries


def test_a_relay_refusing_until_the_deadline_is_given_up_and_the_coordinators_told(deployment):
    d = deployment
    d.write_config(smtp={**d.config["smtp"], "retry_initial_seconds": 60,
                         "give_up_after_seconds": 3600})
    d.sink.refusal = "451 4.3.0 Intente más tarde"
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), WHEN)
    run(d)
    run(d, timedelta(minutes=5))
    assert [row[:2] for row in outbox(d)] == [("pending", 2)]
    run(d, timedelta(hours=2))  # past the deadline: given up, the alert queued
    assert [row[:2] for row in outbox(d)] == [("failed", 3), ("pending", 0)]
    [ticket] = d.buzon("tickets").stdout.split()[:1]
    assert "mail not delivered" in d.buzon("ticket", ticket).stdout
    # The alert itself is queued for when the relay is back; it is sent once.
    d.sink.refusal = ""
    run(d, timedelta(hours=3))
    run(d, timedelta(hours=4))
    [alert] = d.mails("envio_fallido", "coordinador@osce.test")
    assert "ventas@ferreteriasanmartin.test" in alert.message.get_body(("plain",)).get_content()
    assert d.acknowledgements() == []


def test_a_permanent_refusal_is_recorded_on_the_ticket_and_not_retried(deployment):
    d = deployment
    d.sink.refusal = "550 5.1.1 Buzón inexistente"
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), WHEN)
    run(d)
    assert [row[:2] for row in outbox(d)] == [("failed", 1)]
    d.sink.refusal = ""
    run(d, timedelta(hours=1))
    assert d.acknowledgements() == []
    [ticket] = d.buzon("tickets").stdout.split()[:1]
    assert "mail refused" in d.buzon("ticket", ticket).stdout


def test_a_relay_that_is_away_is_tried_again_later(deployment):
    d = deployment
    relay = dict(d.config["smtp"])
    d.write_config(smtp={**relay, "port": free_port()})  # nothing listens there
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), WHEN)
    run(d)
    [(status, attempts, _retry_at, error, _id)] = outbox(d)
    assert (status, attempts) == ("pending", 1) and "relay unavailable" in error
    d.write_config(smtp=relay)  # the relay is back
    run(d, timedelta(hours=1))
    assert len(d.acknowledgements()) == 1


CONSULTAS = ("plain_consulta_rnp.eml", "plain_consulta_seace.eml", "plain_consulta_legal.eml")


def test_a_backlog_worked_two_actions_at_a_time_is_filed_and_acknowledged(deployment):
    d = deployment
    d.write_config(watcher={"outbox_slice": 2})  # three mails' actions span several slices
    for name in CONSULTAS:
        d.deliver(fixture_bytes(name), WHEN)
    run(d)
    assert len(d.acknowledgements()) == 3
    assert d.folder_uids("INBOX") == []
    assert [row[0] for row in outbox(d)] == ["done"] * 3


def test_refusals_across_outbox_slices_end_in_one_alert(deployment):
    d = deployment
    d.write_config(smtp={**d.config["smtp"], "retry_initial_seconds": 60,
                         "give_up_after_seconds": 3600},
                   watcher={"outbox_slice": 2})
    d.sink.refusal = "451 4.3.0 Intente más tarde"
    for name in CONSULTAS:
        d.deliver(fixture_bytes(name), WHEN)
    run(d)
    assert [row[:2] for row in outbox(d)] == [("pending", 1)] * 3
    run(d, timedelta(hours=2))  # past the deadline: all three given up, one alert queued
    assert [row[:2] for row in outbox(d)] == [("failed", 2)] * 3 + [("pending", 0)]
    d.sink.refusal = ""
    run(d, timedelta(hours=3))
    [alert] = d.mails("envio_fallido", "coordinador@osce.test")
    text = alert.message.get_body(("plain",)).get_content()
    for address in ("logistica@muni-ica.gob.test", "ventas@ferreteriasanmartin.test",
                    "juan.perez@gmail.test"):
        assert address in text
