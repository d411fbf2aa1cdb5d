"""OAuth2 access tokens for IMAP (XOAUTH2, OAUTHBEARER) and SMTP (XOAUTH2): from a
client-credentials request (generic, or Microsoft's through msal) or from the operator's
command, kept until shortly before they expire, and never logged."""

from __future__ import annotations

import functools
import hashlib
import json
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from daemon.config import MICROSOFT_SCOPE, OAuth2Settings

REFRESH_MARGIN = 60.0  # seconds before expiry a token is replaced
DEFAULT_LIFETIME = 300.0  # a command that says nothing of expiry: asked again after this

_cache: dict[tuple, tuple[str, float]] = {}
_msal_apps: dict[tuple, object] = {}  # one msal application per source: its token cache
_lock = threading.Lock()


class TokenError(RuntimeError):
    """No token could be had; the message names the source, never a secret."""


def access_token(settings: OAuth2Settings, secret: str | None) -> str:
    """A valid access token. Generic and command tokens are cached here per source until
    REFRESH_MARGIN before they expire; Microsoft's are kept by msal's own token cache,
    which is asked at each login and gets a new token five minutes before expiry."""
    with _lock:
        if settings.provider == "microsoft":
            return _from_msal(settings, secret)
        key = (settings.provider, settings.token_url, settings.client_id, settings.scope,
               tuple(settings.token_command))
        cached = _cache.get(key)
        if cached and cached[1] - REFRESH_MARGIN > time.monotonic():
            return cached[0]
        token, lifetime = (_from_command(settings.token_command)
                           if settings.provider == "command"
                           else _client_credentials(settings, secret))
        _cache[key] = (token, time.monotonic() + lifetime)
        return token


def authority(settings: OAuth2Settings) -> str:
    return f"{settings.authority_host.rstrip('/')}/{settings.tenant}"


def _from_msal(settings: OAuth2Settings, secret: str | None) -> str:
    import msal  # only deployments on Microsoft 365 need it loaded

    source = authority(settings)
    # The secret's digest, not the secret, tells a changed secret from the same one.
    key = (source, settings.client_id, settings.ca_file,
           hashlib.sha256((secret or "").encode()).hexdigest())
    app = _msal_apps.get(key)
    if app is None:
        try:
            # No instance discovery: buzon asks the authority the settings name, and no
            # other host of Microsoft's. It fetches the tenant's OpenID metadata here.
            app = msal.ConfidentialClientApplication(
                settings.client_id, authority=source, client_credential=secret or "",
                validate_authority=False, instance_discovery=False,
                http_client=_http_client(settings.ca_file))
        except Exception as exc:  # noqa: BLE001 - named without the secret
            raise TokenError(f"authority {source} could not be used: "
                             f"{type(exc).__name__}") from None
        _msal_apps[key] = app
    try:
        answer = app.acquire_token_for_client(scopes=[settings.scope or MICROSOFT_SCOPE])
    except Exception as exc:  # noqa: BLE001 - named without the secret
        raise TokenError(f"token request to {source} failed: {type(exc).__name__}") from None
    return _read(answer, source)[0]


def _http_client(ca_file: str):
    """msal's HTTP client, as msal builds its own but with `ca_file` given on each request:
    a requests session's own `verify` gives way to REQUESTS_CA_BUNDLE when that is set."""
    import requests  # msal's own HTTP library

    session = requests.Session()
    session.mount("https://", requests.adapters.HTTPAdapter(max_retries=1))
    session.request = functools.partial(session.request, timeout=30, verify=ca_file or True)
    return session


def _client_credentials(settings: OAuth2Settings, secret: str | None) -> tuple[str, float]:
    form = {"grant_type": "client_credentials", "client_id": settings.client_id,
            "client_secret": secret or ""}
    if settings.scope:
        form["scope"] = settings.scope
    request = urllib.request.Request(settings.token_url,
                                     data=urllib.parse.urlencode(form).encode(),
                                     headers={"Accept": "application/json"})
    try:
        context = ssl.create_default_context(cafile=settings.ca_file or None)
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            answer = json.loads(response.read().decode())
    except urllib.error.HTTPError as exc:  # RFC 6749 errors come as 400 or 401 with JSON
        try:
            answer = json.loads(exc.read().decode())
        except ValueError:
            answer = {"error": f"HTTP {exc.code}"}
    except Exception as exc:  # noqa: BLE001 - named without the request's secret
        cause = getattr(exc, "reason", None)  # a URLError's: refused, certificate...
        cause = cause if isinstance(cause, Exception) else exc
        raise TokenError(f"token request to {settings.token_url} failed: "
                         f"{type(cause).__name__}") from None
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
