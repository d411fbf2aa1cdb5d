"""Watcher faults: a stalled watcher raises the heartbeat alert once; a UIDVALIDITY
change re-syncs without acknowledging anything twice; a connection dropped silently, a
server's BYE and a failed login are survived. Real Dovecot and SMTP."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import fixture_bytes, wait_for

from daemon.config import load_settings
from daemon.store.db import make_engine
from daemon.store.leases import mailbox_lease

WHEN = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def run(d, after: timedelta = timedelta()):
    return d.buzon("run", "--once", "--now", (datetime.now(UTC) + after).isoformat())


def test_a_stalled_watcher_raises_the_alert_once(deployment):
    d = deployment
    run(d)  # both mailboxes beat now
    settings = load_settings(d.config_path)
    # Another buzon process holds consultas@ but has stopped beating (hung, or paused).
    hung = mailbox_lease(make_engine(settings.database), settings, "consultas")
    assert hung.acquire()
    try:
        quiet = run(d, timedelta(minutes=5))
        assert "consultas is being worked by another buzon process" in quiet.stderr
        assert d.mails("vigilancia_detenida") == []  # 5 minutes is within 15
        late = run(d, timedelta(minutes=30))
        assert "ERROR" in late.stderr and "has not reported since" in late.stderr
        [alert] = d.mails("vigilancia_detenida", "coordinador@osce.test")
        assert "consultas" in alert.message["Subject"]
        assert "sugerencias" not in alert.message["Subject"]  # this run worked it
        again = run(d, timedelta(minutes=45))
        assert "has not reported since" not in again.stderr
        assert len(d.mails("vigilancia_detenida")) == 1
    finally:
        hung.release()
    run(d)  # the mailbox is worked again: a later stall would be a new one
    assert len(d.mails("vigilancia_detenida")) == 1


def uidvalidity(d, mailbox: str) -> int:
    with d.imap(mailbox) as client:
        return client.select_folder("INBOX")[b"UIDVALIDITY"]


def test_a_uidvalidity_change_resyncs_without_a_second_acknowledgement(deployment):
    d = deployment
    # Suggestions stay in the inbox once handled: a rebuilt inbox shows them again.
    first = fixture_bytes("sugerencia_simple.eml")
    d.deliver(first, WHEN, mailbox="sugerencias")
    d.deliver(first.replace(b"Message-ID: <", b"Message-ID: <otra."), WHEN, mailbox="sugerencias")
    run(d)
    assert len(d.acknowledgements()) == 2
    before = uidvalidity(d, "sugerencias")
    # The server loses its UID list (a restore, a migration): new UIDVALIDITY, new UIDs.
    d.dovecot.kick_everyone()
    maildir = d.dovecot.directory / "mail" / d.address("sugerencias")
    for path in maildir.iterdir():
        if path.name.startswith(("dovecot-uidlist", "dovecot.index")):
            path.unlink()
    assert uidvalidity(d, "sugerencias") != before
    d.deliver(first.replace(b"Message-ID: <", b"Message-ID: <nueva."), WHEN,
              mailbox="sugerencias")
    run(d)
    acknowledged = d.acknowledgements()
    assert len(acknowledged) == 3
    assert len({m.message["In-Reply-To"] for m in acknowledged}) == 3
    assert len(d.buzon("tickets").stdout.splitlines()) == 3


# The daemon itself, under connection faults ------------------------------------------

def start_daemon(d, log: Path, env: dict | None = None, **watcher) -> subprocess.Popen:
    d.write_config(watcher={"idle_check_seconds": 2, "poll_seconds": 2,
                            "backoff_initial_seconds": 0.2, "backoff_max_seconds": 2,
                            **watcher})
    return subprocess.Popen(
        [sys.executable, "-m", "daemon", "--config", str(d.config_path), "run"],
        env=env or d.env, cwd=d.tmp, stdout=log.open("w"), stderr=subprocess.STDOUT,
        text=True)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)  # its threads' stacks, into its log
        time.sleep(1)
        process.kill()
        raise



class SilentProxy:
    """A TCP relay to Dovecot that can go silent: the connections it carries stop
    passing bytes without being closed, as when a NAT or firewall forgets them."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.silenced: list[socket.socket] = []
        self.carried: list[tuple[socket.socket, socket.socket]] = []
        self.mute = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self.carried.append((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        carried_before_mute = not self.mute.is_set()
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if self.mute.is_set() and carried_before_mute:
                continue  # swallowed: the old connection is dead but never closed
            try:
                sink.sendall(data)
            except OSError:
                return

    def silence_current_connections(self) -> None:
        self.mute.set()

    def close(self) -> None:
        self.listener.close()
        for pair in self.carried:
            for end in pair:
                end.close()


def test_a_silently_dropped_connection_is_noticed_and_the_watcher_reconnects(deployment):
    d = deployment
    proxy = SilentProxy(d.dovecot.imap_port)
    boxes = {name: {**box, "imap": {**box["imap"], "port": proxy.port, "timeout_seconds": 3}}
             for name, box in d.config["mailboxes"].items()}
    d.write_config(mailboxes=boxes)
    log = d.tmp / "daemon.log"
    daemon = start_daemon(d, log)
    try:
        assert wait_for(lambda: "buzon running" in log.read_text() and d.folder_exists("RNP"))
        time.sleep(1)  # the watchers are in IDLE
        proxy.silence_current_connections()
        d.deliver(fixture_bytes("plain_consulta_rnp.eml"), WHEN)
        assert wait_for(lambda: len(d.acknowledgements()) == 1, 60)
    finally:
        stop(daemon)
        proxy.close()
    text = log.read_text()
    assert "reconnecting" in text and ("timed out" in text or "Timeout" in text), text[-3000:]


def test_a_server_bye_reconnects_and_nothing_is_missed(deployment):
    d = deployment
    log = d.tmp / "daemon.log"
    daemon = start_daemon(d, log)
    try:
        assert wait_for(lambda: "buzon running" in log.read_text() and d.folder_exists("RNP"))
        time.sleep(1)
        d.dovecot.kick_everyone()  # Dovecot says "* BYE" to every connection
        d.deliver(fixture_bytes("plain_consulta_rnp.eml"), WHEN)
        assert wait_for(lambda: len(d.acknowledgements()) == 1, 60)
    finally:
        stop(daemon)
    assert "reconnecting" in log.read_text()


def test_a_failed_login_backs_off_instead_of_spinning(deployment):
    d = deployment
    log = d.tmp / "daemon.log"
    env = d.env
    env[d.config["mailboxes"]["consultas"]["imap"]["password_env"]] = "not-the-password"
    daemon = start_daemon(d, log, env=env)
    try:
        assert wait_for(lambda: len(reconnect_pauses(log)) >= 5, 60)
    finally:
        stop(daemon)
    pauses = reconnect_pauses(log)
    # Each pause is 50-100 % of a delay that doubles from 0.2 s up to 2 s.
    assert pauses[0] <= 0.2 and pauses[4] >= 1.0, pauses
    assert "AUTHENTICATIONFAILED" in log.read_text() or "LoginError" in log.read_text()


def reconnect_pauses(log: Path) -> list[float]:
    return [float(p) for p in re.findall(r"mailbox consultas: .*reconnecting in ([0-9.]+) s",
                                         log.read_text())]


def test_an_idle_watcher_does_not_spin(deployment):
    """Between mails the watcher waits in IDLE: a quiet minute is a handful of passes."""
    d = deployment
    log = d.tmp / "daemon.log"
    daemon = start_daemon(d, log, idle_check_seconds=30)
    try:
        assert wait_for(lambda: "buzon running" in log.read_text() and d.folder_exists("RNP"))
        time.sleep(5)
        d.deliver(fixture_bytes("plain_consulta_rnp.eml"), WHEN)
        assert wait_for(lambda: len(d.acknowledgements()) == 1)
        time.sleep(5)
    finally:
        stop(daemon)
    connections = log.read_text().count("mailbox consultas: connected")
    # One for the watcher, one for the outbox flush of the one mail; a spinning watcher
    # would have opened hundreds.
    assert connections <= 4, connections
