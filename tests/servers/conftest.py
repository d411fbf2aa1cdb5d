"""The real Cyrus and the real Courier (daemon/mail/sandbox_servers.py), one per
parameter, and a buzon deployment whose mailboxes live on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, fields

import pytest
from conftest import PASSWORD, Deployment, LayoutClient, make_deployment

from daemon.mail.imap import personal_namespace, server_folder
from daemon.mail.sandbox_servers import CourierServer, CyrusServer, ServerUnavailable

# name: (class, arguments). Cyrus as Debian ships it (folders under "INBOX."), Cyrus with
# `altnamespace: yes` (folders at the top), Courier as Debian ships it, and Courier
# without custom keywords (IMAP_KEYWORDS=0).
SERVERS = {
    "cyrus": (CyrusServer, {}),
    "cyrus-altnamespace": (CyrusServer, {"altnamespace": True}),
    "courier": (CourierServer, {}),
    "courier-nokeywords": (CourierServer, {"keywords": False}),
}


@pytest.fixture(scope="session", params=list(SERVERS))
def imap_server(request) -> Iterator[CyrusServer | CourierServer]:
    kind, arguments = SERVERS[request.param]
    server = kind(**arguments)
    try:
        server.start()
    except ServerUnavailable as exc:
        server.remove()  # its temporary directory
        if os.environ.get("CI"):
            raise  # CI runs scripts/extract-imap-servers.sh first: absent is a failure
        pytest.skip(f"{request.param}: {exc}")
    yield server
    server.remove()


class ServerClient(LayoutClient):
    """The tests' IMAP client on these servers: folders named as the settings name them
    ("Derivar/DRNP"), mapped with the namespace the server announces."""

    layout = ("", "/")

    def login(self, username, password):
        answer = super().login(username, password)
        self.layout = personal_namespace(self)
        return answer

    def _name(self, folder):
        return server_folder(folder, *self.layout) if isinstance(folder, str) else folder


@dataclass
class ServerDeployment(Deployment):
    def imap(self, mailbox: str = "consultas") -> ServerClient:
        client = ServerClient("127.0.0.1", port=self.dovecot.imap_port, ssl=False, timeout=60)
        client.normalise_times = False
        client.login(self.address(mailbox), PASSWORD)
        return client


@pytest.fixture
def server_deployment(tmp_path, imap_server, smtp_sink) -> ServerDeployment:
    """A deployment of buzon whose two mailboxes are users of the server under test."""
    plain = make_deployment(tmp_path, imap_server, smtp_sink)
    deployment = ServerDeployment(**{f.name: getattr(plain, f.name) for f in fields(plain)})
    for mailbox in ("consultas", "sugerencias"):
        imap_server.add_user(deployment.address(mailbox), PASSWORD)
    return deployment
