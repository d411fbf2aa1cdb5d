"""The crash window of sending: the real daemon on a 300-mail backlog, SIGKILLed six
times while its acknowledgements are leaving, then let finish. Every citizen gets one
acknowledgement (one Message-ID); a kill resends at most the mails in flight, one per
open connection (the sent journal records the rest as the relay accepts them)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

from conftest import citizen_consulta, deliver_many

MAILS = 300
KILLS = 6
CONNECTIONS = 4
STEP = 15  # acknowledgements seen leaving in a run before it is killed


def delivered(d, sender: str) -> int:
    """Mails the relay took from the mailbox so far (cheap: nothing parsed)."""
    return sum(1 for mail in d.sink.messages() if mail.envelope_from == sender)


def start(d) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(d.config_path),
                             "run"], env=d.env, cwd=d.tmp, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def kill_while_sending(d, sender: str) -> int:
    """Start the daemon, SIGKILL it once STEP more mails have reached the relay; returns
    how many had when it was killed."""
    before = delivered(d, sender)
    daemon = start(d)
    try:
        deadline = time.monotonic() + 90
        while delivered(d, sender) < before + STEP:
            assert daemon.poll() is None, "the daemon stopped by itself"
            assert time.monotonic() < deadline, "no acknowledgement left in 90 s"
            time.sleep(0.002)
        daemon.send_signal(signal.SIGKILL)
    finally:
        daemon.kill()
        daemon.wait(timeout=30)
    return delivered(d, sender)


def test_six_kills_while_acknowledgements_leave_repeat_at_most_one_per_connection(deployment):
    d = deployment
    d.write_config(smtp={**d.config["smtp"], "connections": CONNECTIONS},
                   answers={"enabled": False},
                   automatic_mail={"ack_cap_per_hour": 10 * MAILS,
                                   "ack_cap_per_domain_per_day": 10 * MAILS},
                   watcher={"idle_check_seconds": 5, "poll_seconds": 5})
    deliver_many(d, [citizen_consulta(n, f"<crash-window-{n}@correo.test>", f"correo{n % 7}.test")
                     for n in range(MAILS)], datetime.now(UTC))
    sender = d.address("consultas")
    at_kills = [kill_while_sending(d, sender) for _ in range(KILLS)]
    assert at_kills[-1] < MAILS, "the backlog was sent before the sixth kill"
    d.buzon("run", "--once", timeout=300)

    acks = d.acknowledgements()
    ids = Counter(mail.message["Message-ID"] for mail in acks)
    per_citizen: dict[str, set[str]] = {}
    for mail in acks:
        [citizen] = mail.recipients
        per_citizen.setdefault(citizen, set()).add(mail.message["Message-ID"])
    repeated = len(acks) - len(ids)
    print(f"{MAILS} mails, {KILLS} SIGKILLs while sending (relay had {at_kills}), "
          f"{len(acks)} acknowledgement deliveries, {repeated} repeated")
    assert len(per_citizen) == MAILS
    assert all(len(distinct) == 1 for distinct in per_citizen.values())
    assert repeated <= KILLS * CONNECTIONS
    assert d.folder_uids("INBOX") == []
