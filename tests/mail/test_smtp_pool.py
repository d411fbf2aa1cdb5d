"""The SMTP pool against a real aiosmtpd relay that counts its connections: connections
kept across batches, reopened after the relay drops one, a 4xx stopping only its own
connection's share, idle connections closed. Each test runs against a relay that offers
RFC 2920 PIPELINING (as Exim and Postfix do) and one that does not."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from conftest import wait_for

from daemon.config import SmtpSettings
from daemon.mail import smtp
from daemon.mail.sandbox import free_port
from daemon.mail.smtp import SmtpPool, send_batch


class Relay:
    """A relay that keeps each mail with the connection it came on. `refuse` and `drop`
    name a mail by its body: answered with that reply, or the connection cut under it
    (once), the mail not kept."""

    def __init__(self, pipelining: bool = False):
        self.pipelining = pipelining
        self.pipelined = 0  # mails whose RCPT and DATA had arrived with their MAIL
        self.refuse_rcpt: dict[str, str] = {}  # recipient: the answer to its RCPT
        self.lock = threading.Lock()
        self.kept: list[tuple[tuple, bytes]] = []  # (peer, body)
        self.opened = 0
        self.live = 0
        self.refuse: dict[bytes, str] = {}
        self.drop: set[bytes] = set()
        relay = self

        class Counting(SMTP):
            def connection_made(self, transport):
                super().connection_made(transport)
                with relay.lock:
                    relay.opened += 1
                    relay.live += 1

            def connection_lost(self, error):
                super().connection_lost(error)
                with relay.lock:
                    relay.live -= 1

        class Keeper:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
                session.host_name = hostname
                if relay.pipelining:
                    responses.insert(-1, "250-PIPELINING")
                return responses

            async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: N802
                if b"DATA\r\n" in bytes(server._reader._buffer):  # sent in the same write
                    with relay.lock:
                        relay.pipelined += 1
                envelope.mail_from = address
                envelope.mail_options.extend(options)
                return "250 OK"

            async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
                if address in relay.refuse_rcpt:
                    return relay.refuse_rcpt[address]
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's
                body = bytes(envelope.content).rsplit(b"\r\n\r\n", 1)[-1].strip()
                if body in relay.drop:
                    relay.drop.discard(body)
                    server.transport.abort()
                    return "250 OK"  # never reaches the client
                if body in relay.refuse:
                    return relay.refuse[body]
                with relay.lock:
                    relay.kept.append((session.peer, body))
                return "250 OK"

        class Counted(Controller):
            def factory(self):
                return Counting(self.handler, **self.SMTP_kwargs)

        self.port = free_port()
        self._controller = lambda: Counted(Keeper(), hostname="127.0.0.1", port=self.port)
        self.controller = None

    def start(self) -> None:
        self.controller = self._controller()  # a stopped one cannot start again
        self.controller.start()
        assert wait_for(lambda: self.live == 0, 5)
        with self.lock:
            self.opened = 0  # the controller's own check that the relay is up

    def stop(self) -> None:
        self.controller.stop()

    def peers(self) -> set[tuple]:
        with self.lock:
            return {peer for peer, _body in self.kept}

    def bodies(self) -> list[bytes]:
        with self.lock:
            return sorted(body for _peer, body in self.kept)


@pytest.fixture(params=[True, False], ids=["pipelining", "one-by-one"])
def relay(request) -> Iterator[Relay]:
    relay = Relay(pipelining=request.param)
    relay.start()
    yield relay
    relay.stop()


def settings(relay: Relay, connections: int) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=relay.port, security="none",
                        connections=connections, timeout_seconds=5)


def mails(*names: str) -> list[tuple[str, list[str], bytes]]:
    return [("buzon@osce.test", [f"{name}@correo.test"],
             f"Subject: {name}\r\n\r\n{name}\r\n".encode()) for name in names]


def names(count: int, start: int = 0) -> list[str]:
    return [f"m{number}" for number in range(start, start + count)]


def test_connections_are_kept_across_batches(relay):
    pool = SmtpPool(settings(relay, 2), None)
    try:
        first = pool.send(mails(*names(10)))
        second = pool.send(mails(*names(10, start=10)))
    finally:
        pool.close()
    assert all(r is not None and r.ok for r in first + second)
    assert len(relay.bodies()) == 20
    assert len(relay.peers()) == 2 and relay.opened == 2 and pool.opened == 2
    # Against it: connections of their own for each batch (the path of an alert).
    send_batch(settings(relay, 2), None, mails(*names(4, start=20)))
    send_batch(settings(relay, 2), None, mails(*names(4, start=24)))
    assert relay.opened == 6


def test_accepted_mails_are_reported_one_by_one(relay):
    pool = SmtpPool(settings(relay, 3), None)
    accepted = []
    try:
        results = pool.send(mails(*names(7)), on_accepted=accepted.append)
    finally:
        pool.close()
    assert all(r.ok for r in results)
    assert sorted(accepted) == list(range(7))


def test_a_connection_dropped_mid_batch_is_reopened_and_the_rest_sent_next_time(relay):
    relay.drop = {b"m4"}  # lane 0 takes m0, m2, m4, m6, m8; lane 1 the odd ones
    pool = SmtpPool(settings(relay, 2), None)
    try:
        batch = names(10)
        results = pool.send(mails(*batch))
        untried = [name for name, r in zip(batch, results, strict=True) if r is None]
        assert untried == ["m4", "m6", "m8"]  # only the dropped connection's rest
        assert all(r.ok for r in results if r is not None)
        again = pool.send(mails(*untried))
    finally:
        pool.close()
    assert all(r.ok for r in again)
    assert relay.bodies() == sorted(name.encode() for name in names(10))  # each once
    assert pool.opened == 3  # the two, then the dropped one again


def test_a_connection_the_relay_closed_while_idle_is_reopened(relay, monkeypatch):
    monkeypatch.setattr(smtp, "CHECK_AFTER_SECONDS", 0.0)
    pool = SmtpPool(settings(relay, 1), None)
    try:
        assert pool.send(mails("a"))[0].ok
        relay.stop()  # a relay restart drops every client
        relay.start()
        assert pool.send(mails("b"))[0].ok
    finally:
        pool.close()
    assert relay.bodies() == [b"a", b"b"] and pool.opened == 2
    assert len(relay.peers()) == 2


def test_a_4xx_stops_its_connection_and_leaves_the_rest_untried(relay):
    relay.refuse = {b"m2": "451 4.3.0 Intente mas tarde"}
    pool = SmtpPool(settings(relay, 2), None)
    try:
        batch = names(8)
        results = dict(zip(batch, pool.send(mails(*batch)), strict=True))
    finally:
        pool.close()
    refused = results["m2"]
    assert not refused.ok and not refused.permanent and "451" in refused.error
    assert [name for name, r in results.items() if r is None] == ["m4", "m6"]
    assert all(results[name].ok for name in ("m0", "m1", "m3", "m5", "m7"))
    assert relay.bodies() == sorted([b"m0", b"m1", b"m3", b"m5", b"m7"])


def test_a_5xx_is_permanent_and_the_connection_goes_on(relay):
    relay.refuse = {b"m0": "550 5.1.1 Buzon inexistente"}
    pool = SmtpPool(settings(relay, 1), None)
    try:
        results = pool.send(mails(*names(3)))
    finally:
        pool.close()
    assert results[0].permanent and [r.ok for r in results] == [False, True, True]


def test_a_relay_that_takes_nothing_raises(relay):
    pool = SmtpPool(SmtpSettings(host="127.0.0.1", port=free_port(), security="none",
                                 timeout_seconds=2), None)
    try:
        with pytest.raises(ConnectionError):
            pool.send(mails("a", "b"))
    finally:
        pool.close()


def test_idle_connections_are_closed_and_close_quits_the_rest(relay, monkeypatch):
    monkeypatch.setattr(smtp, "IDLE_CLOSE_SECONDS", 0.3)
    pool = SmtpPool(settings(relay, 2), None)
    try:
        pool.send(mails(*names(4)))
        assert relay.live == 2
        assert wait_for(lambda: relay.live == 0, 5)  # closed by us after the idle time
        monkeypatch.setattr(smtp, "IDLE_CLOSE_SECONDS", 60.0)
        pool.send(mails(*names(4, start=4)))
        assert relay.live == 2
    finally:
        pool.close()
    assert wait_for(lambda: relay.live == 0, 5)
    assert relay.opened == 4


def test_two_threads_share_the_pool(relay):
    pool = SmtpPool(settings(relay, 2), None)
    outcomes = {}

    def send(prefix: str) -> None:
        outcomes[prefix] = pool.send(mails(*(f"{prefix}{n}" for n in range(20))))

    try:
        threads = [threading.Thread(target=send, args=(p,)) for p in ("x", "y")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        pool.close()
    assert all(r.ok for results in outcomes.values() for r in results)
    assert len(relay.bodies()) == 40 and relay.opened == 2


def test_a_pipelining_relay_gets_each_mail_in_one_round_trip(relay):
    pool = SmtpPool(settings(relay, 1), None)
    try:
        assert all(r.ok for r in pool.send(mails(*names(20))))
    finally:
        pool.close()
    assert relay.bodies() == sorted(f"m{n}".encode() for n in range(20))
    assert relay.pipelined == (20 if relay.pipelining else 0)


def test_every_recipient_refused_is_permanent_and_the_next_mails_go(relay):
    """After a refused envelope the relay is reset (RSET): the next mail's MAIL is not
    taken for a second one in the same transaction."""
    relay.refuse_rcpt = {"m1@correo.test": "550 5.1.1 Buzon inexistente"}
    pool = SmtpPool(settings(relay, 1), None)
    try:
        results = pool.send(mails(*names(4)))
    finally:
        pool.close()
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[1].permanent and "550" in results[1].error
    assert relay.bodies() == [b"m0", b"m2", b"m3"]


def test_a_mail_with_one_recipient_refused_goes_to_the_others(relay):
    relay.refuse_rcpt = {"nadie@correo.test": "550 5.1.1 Buzon inexistente"}
    pool = SmtpPool(settings(relay, 1), None)
    try:
        [result] = pool.send([("buzon@osce.test", ["nadie@correo.test", "a@correo.test"],
                               b"Subject: a\r\n\r\na\r\n")])
    finally:
        pool.close()
    assert result.ok and relay.bodies() == [b"a"]


def test_the_mail_arrives_byte_for_byte_whichever_way_it_is_sent(relay):
    """Lone line feeds become CRLF, a line starting with a dot survives (dot-stuffed on
    the wire), every recipient is in the envelope."""
    raw = b"Subject: puntos\n\n.una linea con punto\r\n..dos\nfin"
    pool = SmtpPool(settings(relay, 1), None)
    try:
        [result] = pool.send([("buzon@osce.test", ["a@correo.test", "b@correo.test"], raw)])
    finally:
        pool.close()
    assert result.ok
    assert relay.bodies() == [b".una linea con punto\r\n..dos\r\nfin"]
