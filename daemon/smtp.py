"""Outgoing mail through the relay (aiosmtplib), one connection per batch."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass

import aiosmtplib

from daemon.config import SmtpSettings

log = logging.getLogger("daemon.smtp")


@dataclass(frozen=True)
class SendResult:
    ok: bool
    permanent: bool = False
    error: str = ""


def _client(settings: SmtpSettings) -> aiosmtplib.SMTP:
    context = ssl.create_default_context()
    return aiosmtplib.SMTP(
        hostname=settings.host, port=settings.port, timeout=settings.timeout_seconds,
        use_tls=settings.security == "ssl",
        start_tls=True if settings.security == "starttls" else False,
        tls_context=context,
    )


async def _send_all(settings: SmtpSettings, password: str | None,
                    mails: list[tuple[str, str, bytes]]) -> list[SendResult]:
    results: list[SendResult] = []
    client = _client(settings)
    await client.connect()
    try:
        if settings.username:
            await client.login(settings.username, password or "")
        for sender, recipient, raw in mails:
            try:
                await client.sendmail(sender, [recipient], raw)
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


def send_batch(settings: SmtpSettings, password: str | None,
               mails: list[tuple[str, str, bytes]]) -> list[SendResult]:
    """Send (envelope sender, recipient, bytes) in order; the results line up with `mails`.

    A shorter result list means the relay failed part-way: the rest were not tried.
    """
    if not mails:
        return []
    return asyncio.run(_send_all(settings, password, mails))


def probe(settings: SmtpSettings, password: str | None) -> None:
    """Connect, greet and log in if configured; raises when the relay cannot be reached."""

    async def _probe():
        client = _client(settings)
        await client.connect()
        try:
            if settings.username:
                await client.login(settings.username, password or "")
            await client.noop()
        finally:
            await client.quit()

    asyncio.run(_probe())
