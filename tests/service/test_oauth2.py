"""OAuth2 for IMAP (issue 16) against Dovecot's own oauth2 passdb: buzon gets a token by
a client-credentials request to a local token endpoint (directly, or through msal from a
local HTTPS authority that plays Microsoft's), logs in with XOAUTH2 or OAUTHBEARER, keeps
the token until shortly before it expires, never logs it, and `buzon check` names the
mechanism."""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import secrets
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from conftest import PASSWORD, at, fixture_bytes, make_deployment, run

from daemon.config import MICROSOFT_SCOPE, OAuth2Settings
from daemon.mail import oauth2
from daemon.mail.sandbox import DovecotServer

CLIENT_SECRET = PASSWORD  # what the tests put in each mailbox's password_env


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made here (the test's own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "authority.pem", directory / "authority.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class TokenServer:
    """A token endpoint (client credentials) and the introspection Dovecot asks, over
    HTTP; given a certificate, also over HTTPS as a Microsoft authority: each tenant's
    OpenID metadata and its /oauth2/v2.0/token."""

    def __init__(self, lifetime: int = 3600, certificate: tuple[Path, Path] | None = None):
        self.lifetime = lifetime
        self.issued: dict[str, str] = {}
        self.requests = 0
        self.forms: list[dict[str, list[str]]] = []  # each token request's form
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                tenant, _, rest = self.path.strip("/").partition("/")
                if rest != "v2.0/.well-known/openid-configuration":
                    return self._answer({"error": "not_found"}, 404)
                base = f"{outer.https_url}/{tenant}"
                self._answer({"issuer": f"{base}/v2.0",
                              "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                              "token_endpoint": f"{base}/oauth2/v2.0/token"})

            def do_POST(self):  # noqa: N802 - http.server's name
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                if self.path == "/introspect":
                    token = form.get("token", [""])[0]
                    answer = ({"active": True, "username": outer.issued[token]}
                              if token in outer.issued else {"active": False})
                    return self._answer(answer)
                outer.forms.append(form)
                if form.get("client_secret") == [CLIENT_SECRET] and \
                        form.get("grant_type") == ["client_credentials"]:
                    outer.requests += 1
                    token = secrets.token_urlsafe(24)
                    outer.issued[token] = form["client_id"][0]
                    self._answer({"access_token": token, "token_type": "Bearer",
                                  "expires_in": outer.lifetime})
                else:
                    self._answer({"error": "invalid_client"}, 401)

            def _answer(self, answer: dict, status: int = 200):
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.servers = [HTTPServer(("127.0.0.1", 0), Handler)]
        self.url = f"http://127.0.0.1:{self.servers[0].server_address[1]}"
        self.https_url = ""
        if certificate:
            https = HTTPServer(("127.0.0.1", 0), Handler)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            https.socket = context.wrap_socket(https.socket, server_side=True)
            self.servers.append(https)
            self.https_url = f"https://127.0.0.1:{https.server_address[1]}"
        for server in self.servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self):
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(params=["generic", "microsoft"])
def oauth_deployment(request, tmp_path, smtp_sink):
    """Both mailboxes on OAuth2: a plain token request, or msal at a local authority."""
    tokens = TokenServer(certificate=self_signed_certificate(tmp_path))
    server = DovecotServer(password=PASSWORD,
                           oauth2_introspection_url=f"{tokens.url}/introspect").start()
    d = make_deployment(tmp_path, server, smtp_sink)
    for name, box in d.config["mailboxes"].items():
        # The app's client id is the mailbox it may open (the introspection's username).
        oauth2 = ({"token_url": f"{tokens.url}/token", "client_id": box["address"],
                   "scope": "imap"} if request.param == "generic" else
                  {"provider": "microsoft", "tenant": "oece-test", "client_id": box["address"],
                   "authority_host": tokens.https_url,
                   "ca_file": str(tmp_path / "authority.pem")})
        box["imap"].update(auth="xoauth2" if name == "consultas" else "oauthbearer",
                           oauth2=oauth2)
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
    expected_scope = "imap" if "token_url" in d.config["mailboxes"]["consultas"]["imap"][
        "oauth2"] else MICROSOFT_SCOPE
    assert all(form["scope"] == [expected_scope] for form in tokens.forms)
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
        assert "wrong" not in str(refused.value) and "invalid_client" in str(refused.value)
    finally:
        tokens.close()


def test_msal_keeps_the_token_and_asks_again_five_minutes_before_expiry(
        tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)  # msal's, requests' and urllib3's debug lines too
    # Many machines set it; requests would then prefer it to a session's own CA file.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)
    # msal takes a cached token for expired five minutes (300 s) before its end: one of
    # 302 s is reused at once and asked for again two seconds later, on the real clock.
    tokens = TokenServer(lifetime=302, certificate=self_signed_certificate(tmp_path))
    try:
        settings = OAuth2Settings(provider="microsoft", tenant="oece-test", client_id="app",
                                  authority_host=tokens.https_url,
                                  ca_file=str(tmp_path / "authority.pem"))
        first = oauth2.access_token(settings, CLIENT_SECRET)
        assert tokens.requests == 1
        assert tokens.forms[0]["grant_type"] == ["client_credentials"]
        assert tokens.forms[0]["client_id"] == ["app"]
        assert tokens.forms[0]["scope"] == [MICROSOFT_SCOPE]
        assert oauth2.access_token(settings, CLIENT_SECRET) == first and tokens.requests == 1
        time.sleep(2.1)
        second = oauth2.access_token(settings, CLIENT_SECRET)
        assert second != first and tokens.requests == 2
        assert oauth2.access_token(settings, CLIENT_SECRET) == second
        with pytest.raises(oauth2.TokenError) as refused:
            oauth2.access_token(settings.model_copy(update={"client_id": "other"}), "wrong")
        assert "wrong" not in str(refused.value) and "invalid_client" in str(refused.value)
        # Without the test's CA the authority is not trusted, and buzon says which one.
        with pytest.raises(oauth2.TokenError) as untrusted:
            oauth2.access_token(settings.model_copy(update={"ca_file": ""}), CLIENT_SECRET)
        assert tokens.https_url in str(untrusted.value)
    finally:
        tokens.close()
    assert "msal" in {record.name.split(".")[0] for record in caplog.records}
    for secret in [*tokens.issued, CLIENT_SECRET]:
        assert secret not in caplog.text


def test_a_generic_token_endpoint_over_https_is_checked_against_ca_file(tmp_path):
    tokens = TokenServer(certificate=self_signed_certificate(tmp_path))
    try:
        settings = OAuth2Settings(token_url=f"{tokens.https_url}/token", client_id="app",
                                  ca_file=str(tmp_path / "authority.pem"))
        assert oauth2.access_token(settings, CLIENT_SECRET) in tokens.issued
        with pytest.raises(oauth2.TokenError) as untrusted:
            oauth2.access_token(settings.model_copy(update={"ca_file": "",
                                                            "client_id": "other"}),
                                CLIENT_SECRET)
        assert "SSLCertVerificationError" in str(untrusted.value)
    finally:
        tokens.close()
