"""Outgoing mail through the relay (aiosmtplib): a few persistent connections on one
long-lived event loop, shared by the whole process.

aiosmtplib opens each connection (greeting, STARTTLS, login); where the relay offers
RFC 2920 PIPELINING the mails then go out pipelined (daemon.mail.pipelining), one round
trip each, and one by one through aiosmtplib where it does not.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import aiosmtplib

from daemon.config import SmtpSettings
from daemon.mail.oauth2 import access_token
from daemon.mail.pipelining import Outcome, envelope, send_pipelined

log = logging.getLogger("daemon.smtp")

Mail = tuple[str, list[str], bytes]  # envelope sender, recipients, the mail's bytes

# Relays drop idle clients (Exim and Postfix after 5 minutes, some after one): a
# connection unused this long is closed by us first, and opened again when needed.
IDLE_CLOSE_SECONDS = 30.0
# A connection unused this long may have been dropped without our noticing: a NOOP
# checks it before reuse (a connection used for the batch just before is not checked).
CHECK_AFTER_SECONDS = 2.0
# What a failing connection raises: that lane's remaining mails stay untried.
CONNECTION_ERRORS = (OSError, asyncio.TimeoutError, aiosmtplib.SMTPException)


@dataclass(frozen=True)
class SendResult:
    ok: bool
    permanent: bool = False
    error: str = ""


@cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()  # loading the CA store is slow: once per process


def _client(settings: SmtpSettings) -> aiosmtplib.SMTP:
    context = _tls_context() if settings.security != "none" else None
    return aiosmtplib.SMTP(
        hostname=settings.host, port=settings.port, timeout=settings.timeout_seconds,
        use_tls=settings.security == "ssl",
        start_tls=True if settings.security == "starttls" else False,
        tls_context=context,
    )


async def _log_in(client: aiosmtplib.SMTP, settings: SmtpSettings,
                  password: str | None) -> None:
    """Password, or with XOAUTH2 a token (the password is then the client secret)."""
    if settings.auth == "xoauth2":
        await client.auth_xoauth2(settings.username, access_token(settings.oauth2, password))
    else:
        await client.login(settings.username, password or "")


async def _open(settings: SmtpSettings, password: str | None) -> aiosmtplib.SMTP:
    client = _client(settings)
    await client.connect()
    try:
        if settings.username:
            await _log_in(client, settings, password)
        if client.is_ehlo_or_helo_needed:  # the relay's extensions (PIPELINING) known now
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await client.helo()
    except BaseException:
        client.close()
        raise
    return client


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except Exception:  # noqa: BLE001 - the relay may have closed already
        client.close()


_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _event_loop() -> asyncio.AbstractEventLoop:
    """The process's SMTP event loop, on a thread of its own (started on first use, it
    lives as long as the process: connections outlive each batch and each flush)."""
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="smtp-loop", daemon=True).start()
            _loop = loop
        return _loop


@dataclass(eq=False)
class _Lane:
    """One connection to the relay, used by one send at a time."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    client: aiosmtplib.SMTP | None = None
    used_at: float = 0.0  # time.monotonic() of its last answer
    reaper: asyncio.TimerHandle | None = None


class SmtpPool:
    """`settings.connections` connections to the relay, opened when first needed, kept
    between batches, opened again after an error, closed when idle or on close()."""

    def __init__(self, settings: SmtpSettings, password: str | None):
        self.settings, self.password = settings, password
        self.loop = _event_loop()
        self.opened = 0  # connections opened so far (tests and benchmarks count them)
        self.pipelining = True  # RFC 2920 where the relay offers it (tests turn it off)
        self._lanes = [_Lane() for _ in range(settings.connections)]

    def _call(self, make_coroutine, *args, timeout: float | None = None):
        """Run a coroutine on the SMTP loop and wait for its result, from any thread."""
        return asyncio.run_coroutine_threadsafe(make_coroutine(*args), self.loop).result(timeout)

    def send(self, mails: list[Mail],
             on_accepted: Callable[[int], None] | None = None) -> list[SendResult | None]:
        """Send each mail; the results line up with `mails`. None in a slot means that
        mail was not tried (its connection failed, or the relay asked to try later); it
        stays queued for the next flush. `on_accepted(index)` is called, on the SMTP
        thread, the moment the relay has accepted mails[index]."""
        if not mails:
            return []
        results = self._call(self._send_all, mails, on_accepted)
        if all(result is None for result in results):
            raise ConnectionError(f"SMTP relay {self.settings.host}:{self.settings.port} "
                                  "took no mail")
        return results

    def close(self) -> None:
        """QUIT every connection (bounded: a relay that does not answer is dropped)."""
        self._call(self._close_all, timeout=self.settings.timeout_seconds + 5)

    async def _close_all(self) -> None:
        await asyncio.gather(*(self._drop(lane) for lane in self._lanes))

    async def _send_all(self, mails: list[Mail],
                        on_accepted: Callable[[int], None] | None) -> list[SendResult | None]:
        # Each lane takes every n-th mail: a lane that fails leaves only its own untried.
        lanes = self._lanes[:min(len(self._lanes), len(mails))]
        shares = [range(number, len(mails), len(lanes)) for number in range(len(lanes))]
        results: list[SendResult | None] = [None] * len(mails)
        # Every lane ends before the caller hears of one's failure (a bug, or a failing
        # on_accepted): none goes on sending behind its back.
        outcomes = await asyncio.gather(
            *(self._send_lane(lane, [(i, mails[i]) for i in share], results, on_accepted)
              for lane, share in zip(lanes, shares, strict=True)), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return results

    async def _send_lane(self, lane: _Lane, items: list[tuple[int, Mail]],
                         results: list[SendResult | None],
                         on_accepted: Callable[[int], None] | None) -> None:
        async with lane.lock:
            try:
                client = await self._ready(lane)
            except CONNECTION_ERRORS as exc:
                log.warning("SMTP relay %s:%s: cannot connect: %s", self.settings.host,
                            self.settings.port, exc)
                return
            try:
                if client.supports_extension("pipelining") and self.pipelining:
                    await self._send_pipelined(lane, client, items, results, on_accepted)
                    return
                for index, (sender, recipients, raw) in items:
                    result, go_on = await self._send_one(client, sender, recipients, raw)
                    results[index] = result
                    if result is not None and result.ok and on_accepted is not None:
                        on_accepted(index)
                    if not client.is_connected:
                        await self._drop(lane)  # lost, or closed after a 421
                    if not go_on:
                        return  # the rest of this lane stays queued for the next flush
            finally:
                lane.used_at = time.monotonic()
                self._reap_later(lane)

    async def _send_pipelined(self, lane: _Lane, client: aiosmtplib.SMTP,
                              items: list[tuple[int, Mail]], results: list[SendResult | None],
                              on_accepted: Callable[[int], None] | None) -> None:
        """RFC 2920: one round trip per mail (daemon.mail.pipelining)."""
        prepared = []
        for index, (sender, recipients, raw) in items:
            try:
                commands, message = envelope(client, sender, recipients, raw)
            except ValueError as exc:  # an address that cannot go in an envelope
                results[index] = SendResult(False, True, f"invalid address: {exc}"[:300])
                continue
            prepared.append((index, commands, message, len(recipients)))

        def record(index: int, outcome: Outcome) -> None:
            results[index] = SendResult(True) if outcome.accepted else \
                SendResult(False, outcome.permanent, str(outcome.reply)[:300])
            if outcome.accepted and on_accepted is not None:
                on_accepted(index)

        try:
            usable = await send_pipelined(client, prepared, self.settings.timeout_seconds,
                                          record)
        except CONNECTION_ERRORS as exc:
            log.warning("SMTP relay %s:%s: connection lost: %s", self.settings.host,
                        self.settings.port, exc)
            usable = False
        if not usable:
            await self._drop(lane)

    async def _send_one(self, client: aiosmtplib.SMTP, sender: str, recipients: list[str],
                        raw: bytes) -> tuple[SendResult | None, bool]:
        """The relay's answer to one mail (None when the connection failed under it), and
        whether the lane goes on with its next mail."""
        try:
            await client.sendmail(sender, recipients, raw)
            return SendResult(ok=True), True
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            return SendResult(False, all(c >= 500 for c in codes), str(exc)[:300]), True
        except aiosmtplib.SMTPResponseException as exc:
            # A 4xx: the relay is unwell, the rest waits for the next flush.
            return SendResult(False, exc.code >= 500, f"{exc.code} {exc.message}"), \
                exc.code >= 500
        except ValueError as exc:  # an address aiosmtplib cannot put in an envelope
            return SendResult(False, True, f"invalid address: {exc}"[:300]), True
        except CONNECTION_ERRORS as exc:
            log.warning("SMTP relay %s:%s: connection lost: %s", self.settings.host,
                        self.settings.port, exc)
            return None, False

    async def _ready(self, lane: _Lane) -> aiosmtplib.SMTP:
        """The lane's connection, checked when it has been idle, or a new one."""
        client = lane.client
        if client is not None and client.is_connected:
            if time.monotonic() - lane.used_at < CHECK_AFTER_SECONDS:
                return client
            try:
                await client.noop()
                return client
            except CONNECTION_ERRORS:
                pass  # dropped by the relay while idle: opened again below
        await self._drop(lane)
        lane.client = await _open(self.settings, self.password)
        self.opened += 1
        return lane.client

    async def _drop(self, lane: _Lane) -> None:
        if lane.reaper is not None:
            lane.reaper.cancel()
            lane.reaper = None
        client, lane.client = lane.client, None
        if client is not None:
            await _quit(client)

    def _reap_later(self, lane: _Lane) -> None:
        if lane.reaper is not None:
            lane.reaper.cancel()
        lane.reaper = self.loop.call_later(IDLE_CLOSE_SECONDS, self._reap, lane)

    def _reap(self, lane: _Lane) -> None:
        lane.reaper = None
        if lane.client is not None and not lane.lock.locked():
            client, lane.client = lane.client, None
            self.loop.create_task(_quit(client))


_shared_lock = threading.Lock()
_shared: SmtpPool | None = None


def shared_pool(settings: SmtpSettings, password: str | None) -> SmtpPool:
    """The process's pool for these settings: every mailbox's outbox sends through it."""
    global _shared
    with _shared_lock:
        if _shared is not None and (_shared.settings != settings or
                                    _shared.password != password):
            _shared.close()
            _shared = None
        if _shared is None:
            _shared = SmtpPool(settings, password)
        return _shared


def close_shared_pool() -> None:
    """On shutdown: QUIT the shared pool's connections."""
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.close()
            _shared = None


def send_batch(settings: SmtpSettings, password: str | None,
               mails: list[Mail]) -> list[SendResult | None]:
    """Send a few mails on connections of their own (an alert no outbox carries)."""
    pool = SmtpPool(settings, password)
    try:
        return pool.send(mails)
    finally:
        pool.close()


def probe(settings: SmtpSettings, password: str | None) -> None:
    """Connect, greet and log in if configured; raises when the relay cannot be reached."""

    async def _probe():
        client = await _open(settings, password)
        try:
            await client.noop()
        finally:
            await _quit(client)

    asyncio.run(_probe())
