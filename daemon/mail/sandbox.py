"""A throwaway local mail server for the demo, the tests and the benchmarks.

A real Dovecot (Debian's dovecot-imapd, started unprivileged on a free loopback port)
and a real aiosmtpd SMTP server that keeps what it receives.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

from aiosmtpd.controller import Controller

DOVECOT_CONFIG = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth2_mechanisms}
mail_location = maildir:{dir}/mail/%u
mail_uid = mail
mail_gid = mail
first_valid_uid = 1
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
mail_max_userip_connections = 100
{oauth2_passdb}passdb {{
  mechanisms = plain login
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={dir}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
namespace inbox {{
  inbox = yes
  separator = {separator}
  prefix = {prefix}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
"""


# The personal namespace of each layout DovecotServer can serve.
LAYOUTS = {"flat": {"prefix": "", "separator": "/"},
           "inbox": {"prefix": "INBOX.", "separator": "."}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


class DovecotUnavailable(RuntimeError):
    pass


@dataclass
class DovecotServer:
    """A private Dovecot where any address logs in with the one password given."""

    password: str
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="buzon-dovecot-")))
    # "flat": folders at the top, '/' between levels (Dovecot's usual layout);
    # "inbox": folders under "INBOX." with '.' (the way Courier and Cyrus show them).
    layout: str = "flat"
    # With a token introspection URL, OAuth2 logins (XOAUTH2, OAUTHBEARER) are checked
    # against it (Dovecot's oauth2 passdb), beside the password.
    oauth2_introspection_url: str = ""
    imap_port: int = 0
    lmtp_port: int = 0

    @property
    def config_path(self) -> Path:
        return self.directory / "dovecot.conf"

    def start(self) -> DovecotServer:
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not os.path.exists(binary):
            raise DovecotUnavailable("dovecot is not installed (apt-get install dovecot-imapd)")
        self.imap_port = self.imap_port or free_port()
        self.lmtp_port = self.lmtp_port or free_port()
        os.chmod(self.directory, 0o755)
        for sub in ("run", "state", "mail"):
            (self.directory / sub).mkdir(exist_ok=True)
        shutil.chown(self.directory / "mail", "mail", "mail")
        self.config_path.write_text(DOVECOT_CONFIG.format(
            dir=self.directory, imap_port=self.imap_port, lmtp_port=self.lmtp_port,
            password=self.password, **LAYOUTS[self.layout], **self._oauth2()))
        subprocess.run([binary, "-c", str(self.config_path)], check=True)
        _wait_for_port(self.imap_port, 15)
        return self

    def _oauth2(self) -> dict[str, str]:
        if not self.oauth2_introspection_url:
            return {"oauth2_mechanisms": "", "oauth2_passdb": ""}
        (self.directory / "oauth2.conf.ext").write_text(
            "introspection_mode = post\n"
            f"introspection_url = {self.oauth2_introspection_url}\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n")
        return {"oauth2_mechanisms": " xoauth2 oauthbearer",
                "oauth2_passdb": "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 "
                                 f"oauthbearer\n  args = {self.directory}/oauth2.conf.ext\n}}\n"}

    def kick_everyone(self) -> None:
        """Drop every client connection, as a real server restart does."""
        subprocess.run(["doveadm", "-c", str(self.config_path), "kick", "*"],
                       check=False, capture_output=True)

    def stop(self) -> None:
        self.kick_everyone()  # imap processes would otherwise outlive the master
        subprocess.run(["doveadm", "-c", str(self.config_path), "stop"],
                       check=False, capture_output=True)
        pid_file = self.directory / "run" / "master.pid"
        deadline = time.monotonic() + 10
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class ReceivedMail:
    envelope_from: str
    recipients: list[str]
    data: bytes
    received_at: float = field(default_factory=time.monotonic)  # for latency benchmarks

    @property
    def message(self):
        return message_from_bytes(self.data, policy=default_policy)


class _Keeper:
    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        """Offer RFC 2920 PIPELINING as Exim and Postfix do (aiosmtpd reads pipelined
        commands in order but does not say so), unless the sink is told not to."""
        session.host_name = hostname
        if self.sink.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        refusal = self.sink.refusal
        if refusal:
            return refusal
        with self.sink.lock:
            self.sink.received.append(ReceivedMail(
                envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a free loopback port that keeps every mail."""

    def __init__(self, port: int = 0):
        self.port = port or free_port()
        self.received: list[ReceivedMail] = []
        self.lock = threading.Lock()
        self.refusal = ""  # set to e.g. "451 try later" to refuse mail
        self.pipelining = True  # offered in the EHLO answer
        self._controller = Controller(_Keeper(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[ReceivedMail]:
        with self.lock:
            return list(self.received)

    def clear(self) -> None:
        with self.lock:
            self.received.clear()
