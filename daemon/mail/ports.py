"""Telling a TLS port from a plain one, to name the setting when `security` does not fit."""

from __future__ import annotations

import socket
import ssl


def speaks_tls(host: str, port: int, seconds: float = 5.0) -> bool:
    """Whether a TLS handshake succeeds on the port (the certificate is not checked: this
    only tells an SSL port from a plain one)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=seconds) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return True
    except (OSError, ssl.SSLError):
        return False


def greets_in_clear(host: str, port: int, greetings: tuple[bytes, ...],
                    seconds: float = 5.0) -> bool:
    """Whether the port greets in plain text, as a plain IMAP ("* OK") or SMTP ("220")
    port does."""
    try:
        with socket.create_connection((host, port), timeout=seconds) as raw:
            return raw.recv(64).startswith(greetings)
    except OSError:
        return False


PROTOCOLS = {  # the plain greetings, the usual SSL port, the usual plain port
    "IMAP": ((b"* OK", b"* PREAUTH", b"* BYE"), 993, 143),
    "SMTP": ((b"220",), 465, 587),
}


def wrong_kind_of_port(key: str, protocol: str, host: str, port: int, security: str) -> str:
    """What to change when a connection failed because the port is of the other kind
    than `security` says; "" when that is not why (the server is down, refuses, ...)."""
    greetings, ssl_port, plain_port = PROTOCOLS[protocol]
    where = f"{key}: {host}:{port}"
    if security == "ssl" and greets_in_clear(host, port, greetings):
        return (f"{where} does not speak TLS from the first byte, but security is 'ssl': it "
                f"is a plain {protocol} port; set security to 'starttls' for it, or use the "
                f"server's SSL port (usually {ssl_port})")
    if security != "ssl" and speaks_tls(host, port):
        return (f"{where} speaks TLS from the first byte (an SSL port), but security is "
                f"{security!r}: set security to 'ssl' for this port, or use the server's "
                f"plain port (usually {plain_port}) with 'starttls'")
    return ""
