"""OAuth2 access tokens for IMAP (XOAUTH2, OAUTHBEARER) and SMTP (XOAUTH2): from a
client-credentials request or from the operator's command, kept until shortly before
they expire, and never logged."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request

from daemon.config import OAuth2Settings

REFRESH_MARGIN = 60.0  # seconds before expiry a token is replaced
DEFAULT_LIFETIME = 300.0  # a command that says nothing of expiry: asked again after this

_cache: dict[tuple, tuple[str, float]] = {}
_lock = threading.Lock()


class TokenError(RuntimeError):
    """No token could be had; the message names the source, never a secret."""


def access_token(settings: OAuth2Settings, secret: str | None) -> str:
    """A valid access token (cached per source until REFRESH_MARGIN before it expires)."""
    key = (settings.token_url, settings.client_id, settings.scope,
           tuple(settings.token_command))
    with _lock:
        cached = _cache.get(key)
        if cached and cached[1] - REFRESH_MARGIN > time.monotonic():
            return cached[0]
        token, lifetime = (_from_command(settings.token_command) if settings.token_command
                           else _client_credentials(settings, secret))
        _cache[key] = (token, time.monotonic() + lifetime)
        return token


def _client_credentials(settings: OAuth2Settings, secret: str | None) -> tuple[str, float]:
    form = {"grant_type": "client_credentials", "client_id": settings.client_id,
            "client_secret": secret or ""}
    if settings.scope:
        form["scope"] = settings.scope
    request = urllib.request.Request(settings.token_url,
                                     data=urllib.parse.urlencode(form).encode(),
                                     headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read().decode())
    except Exception as exc:  # noqa: BLE001 - named without the request's secret
        raise TokenError(f"token request to {settings.token_url} failed: "
                         f"{type(exc).__name__}") from None
    return _read(answer, settings.token_url)


def _from_command(command: list[str]) -> tuple[str, float]:
    try:
        output = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise TokenError(f"token command {command[0]} failed: {type(exc).__name__}") from None
    if output.startswith("{"):
        return _read(json.loads(output), command[0])
    return output, DEFAULT_LIFETIME


def _read(answer: dict, source: str) -> tuple[str, float]:
    token = answer.get("access_token")
    if not token:
        raise TokenError(f"{source} gave no access_token ({answer.get('error', 'no error')})")
    return str(token), float(answer.get("expires_in") or DEFAULT_LIFETIME)
