"""Outgoing mail through the relay (aiosmtplib), one connection per batch."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from functools import cache

import aiosmtplib

from daemon.config import SmtpSettings
from daemon.mail.oauth2 import access_token

log = logging.getLogger("daemon.smtp")


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


async def _send_over_one_connection(settings: SmtpSettings, password: str | None,
                                    mails: list[tuple[str, list[str], bytes]]) -> list[SendResult]:
    results: list[SendResult] = []
    client = _client(settings)
    await client.connect()
    try:
        if settings.username:
            await _log_in(client, settings, password)
        for sender, recipients, raw in mails:
            try:
                await client.sendmail(sender, recipients, raw)
                results.append(SendResult(ok=True))
            except aiosmtplib.SMTPRecipientsRefused as exc:
                codes = [r.code for r in exc.recipients]
                results.append(SendResult(False, all(c >= 500 for c in codes), str(exc)[:300]))
            except aiosmtplib.SMTPResponseException as exc:
                results.append(SendResult(False, exc.code >= 500, f"{exc.code} {exc.message}"))
                if exc.code < 500:
                    break  # the relay is unwell: keep the rest for the next flush
    finally:
        try:
            await client.quit()
        except Exception:  # noqa: BLE001 - the relay may have closed already
            client.close()
    return results


async def _send_all(settings: SmtpSettings, password: str | None,
                    mails: list[tuple[str, list[str], bytes]]) -> list[SendResult | None]:
    """Spread the mails over a few connections; a slot left None was not tried."""
    lanes = max(1, min(settings.connections, len(mails)))
    shares = [list(range(lane, len(mails), lanes)) for lane in range(lanes)]
    outcomes = await asyncio.gather(
        *(_send_over_one_connection(settings, password, [mails[i] for i in share])
          for share in shares),
        return_exceptions=True,
    )
    results: list[SendResult | None] = [None] * len(mails)
    for share, outcome in zip(shares, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            continue  # that connection failed: its mails stay queued
        for index, result in zip(share, outcome, strict=False):
            results[index] = result
    return results


def send_batch(settings: SmtpSettings, password: str | None,
               mails: list[tuple[str, list[str], bytes]]) -> list[SendResult | None]:
    """Send (envelope sender, recipients, bytes); the results line up with `mails`.

    None in a slot means that mail was not tried (the relay failed part-way); it stays
    queued for the next flush.
    """
    if not mails:
        return []
    results = asyncio.run(_send_all(settings, password, mails))
    if all(result is None for result in results):
        raise ConnectionError(f"SMTP relay {settings.host}:{settings.port} took no mail")
    return results


def probe(settings: SmtpSettings, password: str | None) -> None:
    """Connect, greet and log in if configured; raises when the relay cannot be reached."""

    async def _probe():
        client = _client(settings)
        await client.connect()
        try:
            if settings.username:
                await _log_in(client, settings, password)
            await client.noop()
        finally:
            await client.quit()

    asyncio.run(_probe())
