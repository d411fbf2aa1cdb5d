"""OAuth2 for IMAP (issue 16) against Dovecot's own oauth2 passdb: buzon gets a token by
a client-credentials request to a local token endpoint, logs in with XOAUTH2 or
OAUTHBEARER, keeps the token until shortly before it expires, never logs it, and
`buzon check` names the mechanism."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest
from conftest import PASSWORD, at, fixture_bytes, make_deployment, run

from daemon.config import OAuth2Settings
from daemon.mail import oauth2
from daemon.mail.sandbox import DovecotServer

CLIENT_SECRET = PASSWORD  # what the tests put in each mailbox's password_env


class TokenServer:
    """A token endpoint (client credentials) and the introspection Dovecot asks."""

    def __init__(self, lifetime: int = 3600):
        self.issued: dict[str, str] = {}
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                if self.path == "/introspect":
                    token = form.get("token", [""])[0]
                    answer = ({"active": True, "username": outer.issued[token]}
                              if token in outer.issued else {"active": False})
                elif form.get("client_secret") == [CLIENT_SECRET]:
                    outer.requests += 1
                    token = secrets.token_urlsafe(24)
                    outer.issued[token] = form["client_id"][0]
                    answer = {"access_token": token, "expires_in": lifetime}
                else:
                    answer = {"error": "invalid_client"}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def close(self):
        self.http.shutdown()


@pytest.fixture
def oauth_deployment(tmp_path, smtp_sink):
    tokens = TokenServer()
    server = DovecotServer(password=PASSWORD,
                           oauth2_introspection_url=f"{tokens.url}/introspect").start()
    d = make_deployment(tmp_path, server, smtp_sink)
    for name, box in d.config["mailboxes"].items():
        # The app's client id is the mailbox it may open (the introspection's username).
        box["imap"].update(auth="xoauth2" if name == "consultas" else "oauthbearer",
                           oauth2={"token_url": f"{tokens.url}/token",
                                   "client_id": box["address"], "scope": "imap"})
    d.write_config()
    yield d, tokens
    server.remove()
    tokens.close()


def test_buzon_logs_in_with_oauth2_and_never_shows_the_token(oauth_deployment):
    d, tokens = oauth_deployment
    d.deliver(fixture_bytes("plain_consulta_seace.eml"), at("2026-11-23 10:00"))
    result = run(d, "2026-11-23 10:05")
    assert len(d.acknowledgements()) == 1
    assert tokens.requests == 2  # one per mailbox's client id, kept for the run
    logged = result.stderr + result.stdout
    assert not any(token in logged for token in tokens.issued)
    assert CLIENT_SECRET not in logged
    check = d.buzon("check")
    assert "mailbox consultas: reachable" in check.stdout and "XOAUTH2" in check.stdout
    assert "OAUTHBEARER" in check.stdout
    # Dovecot itself says how each mailbox logged in.
    log = (d.dovecot.directory / "dovecot.log").read_text()
    assert f"user=<{d.address('consultas')}>, method=XOAUTH2" in log
    assert f"user=<{d.address('sugerencias')}>, method=OAUTHBEARER" in log


def test_a_token_is_kept_until_shortly_before_it_expires(monkeypatch):
    tokens = TokenServer(lifetime=3600)
    try:
        settings = OAuth2Settings(token_url=f"{tokens.url}/token", client_id="app")
        first = oauth2.access_token(settings, CLIENT_SECRET)
        assert oauth2.access_token(settings, CLIENT_SECRET) == first and tokens.requests == 1
        # Within REFRESH_MARGIN of expiry, a new one is asked for.
        clock = oauth2.time.monotonic() + 3600 - oauth2.REFRESH_MARGIN + 1
        monkeypatch.setattr(oauth2.time, "monotonic", lambda: clock)
        assert oauth2.access_token(settings, CLIENT_SECRET) != first and tokens.requests == 2
        with pytest.raises(oauth2.TokenError) as refused:
            oauth2.access_token(OAuth2Settings(token_url=f"{tokens.url}/token",
                                               client_id="other"), "wrong")
        assert "wrong" not in str(refused.value)
    finally:
        tokens.close()
