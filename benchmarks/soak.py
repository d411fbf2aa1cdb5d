"""Soak: mail keeps arriving in a real Dovecot while the daemon is SIGKILLed at random
moments, Dovecot is restarted twice and the SMTP relay is taken away for a minute.

    python benchmarks/soak.py [--mails 2000] [--kills 20]

At the end it checks and prints: every mail has exactly one ticket, every citizen got
exactly one acknowledgement (a copy resent after a kill between the relay's 250 and the
outbox mark keeps its Message-ID, and is counted apart), the inbox and the outbox are
empty, and only the mail that should be is in quarantine. Exit 0 when all hold.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import yaml
from imapclient import IMAPClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.mail.sandbox import DovecotServer, SmtpSink  # noqa: E402

PASSWORD = "soak-password"
BROKEN_EVERY = 100  # one mail in a hundred has no sender: it belongs in quarantine


def mail(number: int) -> bytes:
    if number % BROKEN_EVERY == 99:
        return (f"To: consultas@osce.test\r\nSubject: sin remitente {number}\r\n"
                f"Message-ID: <soak-{number}@correo.test>\r\n\r\nHola\r\n").encode()
    message = EmailMessage()
    message["From"] = f"Ciudadano {number} <ciudadano{number}@correo.test>"
    message["To"] = "consultas@osce.test"
    message["Subject"] = random.Random(number).choice(
        ["Consulta sobre el RNP", "Problema en el SEACE", "Duda sobre la ley", "Consulta"])
    message["Message-ID"] = f"<soak-{number}@correo.test>"
    message.set_content(f"Consulta número {number}. ¿Cómo renuevo mi inscripción?")
    return bytes(message)


class Relay:
    """The SMTP relay, which can be taken away and brought back on the same port."""

    def __init__(self):
        self.sink = SmtpSink().start()
        self.port = self.sink.port
        self.kept: list = []

    def away(self) -> None:
        self.kept += self.sink.messages()
        self.sink.stop()

    def back(self) -> None:
        self.sink = SmtpSink(port=self.port).start()

    def messages(self) -> list:
        return self.kept + self.sink.messages()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0, help="mails per second")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="buzon-soak-"))
    dovecot = DovecotServer(password=PASSWORD).start()
    relay = Relay()
    database = work / "buzon.db"
    config = {
        "database": f"sqlite:///{database}",
        "mailboxes": {"consultas": {"address": "consultas@osce.test", "imap": {
            "host": "127.0.0.1", "port": dovecot.imap_port, "security": "none",
            "username": "consultas@osce.test", "password_env": "SOAK_PASSWORD",
            "timeout_seconds": 10}}},
        "smtp": {"host": "127.0.0.1", "port": relay.port, "security": "none",
                 "retry_initial_seconds": 2, "retry_max_seconds": 10},
        "routing": [{"name": "rnp", "folder": "RNP", "subject_patterns": [r"\bRNP\b"]},
                    {"name": "seace", "folder": "SEACE", "subject_patterns": ["SEACE"]}],
        "classifier": {"enabled": False},
        "watcher": {"idle_check_seconds": 5, "backoff_initial_seconds": 0.5,
                    "backoff_max_seconds": 4},
        # Every soak citizen writes from one domain within the hour: the flood caps
        # (meant for a real inbox) would rightly hold back their acknowledgements.
        "automatic_mail": {"ack_cap_per_hour": 10 * args.mails,
                           "ack_cap_per_domain_per_day": 10 * args.mails},
    }
    config_path = work / "rules.yaml"
    config_path.write_text(yaml.safe_dump(config))
    # The daemon under test is this checkout's, whatever the venv's editable install says.
    checkout = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, SOAK_PASSWORD=PASSWORD,
               PYTHONPATH=os.pathsep.join(filter(None, [checkout,
                                                        os.environ.get("PYTHONPATH")])))
    log = (work / "daemon.log").open("a")

    def start_daemon() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(config_path),
                                 "run"], env=env, stdout=log, stderr=subprocess.STDOUT)

    feeding_for = args.mails / args.rate
    events: list[str] = []
    daemon = start_daemon()
    started = time.monotonic()

    def feed() -> None:
        arrival = datetime.now(UTC) - timedelta(hours=1)
        number = 0
        while number < args.mails:
            try:
                with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as client:
                    client.login("consultas@osce.test", PASSWORD)
                    while number < args.mails:
                        client.append("INBOX", mail(number), (),
                                      arrival + timedelta(milliseconds=100 * number))
                        number += 1
                        time.sleep(1 / args.rate)
            except Exception:  # noqa: BLE001 - Dovecot restarting: append again
                time.sleep(0.5)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    kill_times = sorted(random.uniform(2, feeding_for + 20) for _ in range(args.kills))
    disruptions = [(feeding_for * 0.3, "dovecot restart"), (feeding_for * 0.45, "relay away"),
                   (feeding_for * 0.45 + 60, "relay back"), (feeding_for * 0.7,
                                                             "dovecot restart")]
    plan = sorted([(t, "kill") for t in kill_times] + disruptions)
    kills = 0
    for at, what in plan:
        time.sleep(max(0.0, at - (time.monotonic() - started)))
        if what == "kill":
            os.kill(daemon.pid, signal.SIGKILL)
            daemon.wait()
            kills += 1
            daemon = start_daemon()
        elif what == "dovecot restart":
            dovecot.restart()
        elif what == "relay away":
            relay.away()
        else:
            relay.back()
        events.append(f"{time.monotonic() - started:6.1f} s {what}")
    feeder.join()
    fed_at = time.monotonic() - started

    def settled() -> bool:
        with sqlite3.connect(database) as db:
            pending = db.execute("SELECT count(*) FROM outbox WHERE status = 'pending'"
                                 ).fetchone()[0]
        with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as client:
            client.login("consultas@osce.test", PASSWORD)
            client.select_folder("INBOX", readonly=True)
            return pending == 0 and not client.search()

    deadline = time.monotonic() + 600
    while not settled() and time.monotonic() < deadline:
        time.sleep(2)
    settled_at = time.monotonic() - started
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=60)
    return report(args, database, dovecot, relay, kills, events, fed_at, settled_at, work)


def report(args, database: Path, dovecot, relay, kills, events, fed_at, settled_at,
           work) -> int:
    with sqlite3.connect(database) as db:
        records = db.execute("SELECT message_id, outcome, ticket_id FROM mail "
                             "WHERE folder = 'INBOX'").fetchall()
        pending = db.execute("SELECT count(*) FROM outbox WHERE status = 'pending'"
                             ).fetchone()[0]
        failed = db.execute("SELECT count(*) FROM outbox WHERE status = 'failed'").fetchone()[0]
        tickets = db.execute("SELECT count(*) FROM ticket").fetchone()[0]
    with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as client:
        client.login("consultas@osce.test", PASSWORD)
        client.select_folder("INBOX", readonly=True)
        inbox_left = len(client.search())
        client.select_folder("Cuarentena", readonly=True)
        quarantine_uids = client.search()
        quarantined = {data[b"ENVELOPE"].message_id.decode() for data in client.fetch(
            quarantine_uids, ["ENVELOPE"]).values()} if quarantine_uids else set()
    expected_broken = {f"<soak-{n}@correo.test>" for n in range(args.mails)
                       if n % BROKEN_EVERY == 99}
    expected_tickets = args.mails - len(expected_broken)
    tickets_per_mail = defaultdict(set)
    for message_id, _outcome, ticket_id in records:
        if ticket_id:
            tickets_per_mail[message_id].add(ticket_id)
    acks = [m for m in relay.messages() if m.message["Message-ID"].startswith("<ack.")]
    ack_ids = defaultdict(set)
    for ack in acks:
        ack_ids[ack.message["In-Reply-To"]].add(ack.message["Message-ID"])
    deliveries = Counter(ack.message["Message-ID"] for ack in acks)
    resent = sum(count - 1 for count in deliveries.values())
    checks = {
        "every mail has exactly one ticket":
            tickets == expected_tickets and len(tickets_per_mail) == expected_tickets
            and all(len(ids) == 1 for ids in tickets_per_mail.values()),
        "every citizen got exactly one acknowledgement":
            len(ack_ids) == expected_tickets and all(len(ids) == 1 for ids in ack_ids.values()),
        "INBOX is empty": inbox_left == 0,
        "the outbox is empty": pending == 0 and failed == 0,
        "quarantine holds exactly the mail without a sender": quarantined == expected_broken,
    }
    print(f"mails: {args.mails} fed at {args.rate:g}/s in {fed_at:.0f} s; settled "
          f"{settled_at - fed_at:.0f} s after the last one")
    print(f"disruptions: {kills} SIGKILLs of the daemon, 2 Dovecot restarts, the relay away "
          "for 60 s")
    print(f"tickets: {tickets}; acknowledgements: {len(ack_ids)} citizens, {len(acks)} "
          f"deliveries ({resent} resent copies with the same Message-ID after a kill); "
          f"quarantined: {len(quarantined)} of {len(expected_broken)} expected")
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if os.environ.get("SOAK_EVENTS"):
        print("\n".join(events))
    print(f"(work directory: {work})")
    relay.sink.stop()
    dovecot.remove()
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
