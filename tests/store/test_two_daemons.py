"""Two `buzon run` processes on one PostgreSQL: each mailbox is worked by one of them at
a time; SIGKILL the active one and the standby takes over, losing nothing and
acknowledging nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from conftest import citizen_consulta, wait_for

LIMA = ZoneInfo("America/Lima")
TAKEOVER_BOUND = 30  # seconds: the promise for a standby taking over


def consulta(number: int) -> bytes:
    return citizen_consulta(number, f"<two-daemons-{number}@correo.test>",
                            date="Thu, 26 Nov 2026 10:00:00 -0500")


def start(d, log: Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "daemon", "--config", str(d.config_path), "run"],
        env=d.env, cwd=d.tmp, stdout=handle, stderr=subprocess.STDOUT, text=True)


def acknowledged(d) -> dict[str, int]:
    """Acknowledgements per citizen's Message-ID (a resent one has the same Message-ID)."""
    counts: dict[str, set[str]] = {}
    for mail in d.acknowledgements():
        counts.setdefault(mail.message["In-Reply-To"], set()).add(mail.message["Message-ID"])
    return {key: len(ids) for key, ids in counts.items()}


def test_a_standby_takes_over_from_a_killed_daemon(pg_deployment):
    d = pg_deployment
    d.write_config(watcher={"idle_check_seconds": 5, "poll_seconds": 5,
                            "backoff_initial_seconds": 0.2, "backoff_max_seconds": 2,
                            "lease_retry_seconds": 2})
    logs = {name: d.tmp / f"{name}.log" for name in ("first", "second")}
    first = start(d, logs["first"])
    second = None
    try:
        assert wait_for(lambda: "buzon running" in logs["first"].read_text(), 60)
        assert wait_for(lambda: d.folder_exists("RNP"), 60)  # the first works consultas@
        second = start(d, logs["second"])
        assert wait_for(lambda: "standing by" in logs["second"].read_text(), 60)
        for number in range(10):
            d.deliver(consulta(number), datetime(2026, 11, 26, 10, number, tzinfo=LIMA))
        assert wait_for(lambda: len(acknowledged(d)) == 10, 60)
        assert "taken over" not in logs["second"].read_text()

        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = time.monotonic()
        for number in range(10, 20):
            d.deliver(consulta(number), datetime(2026, 11, 26, 11, number, tzinfo=LIMA))
        assert wait_for(lambda: "taken over" in logs["second"].read_text(), TAKEOVER_BOUND)
        assert wait_for(lambda: len(acknowledged(d)) == 20, 60)
        print(f"takeover and 10 mails handled {time.monotonic() - killed_at:.1f} s after "
              "the SIGKILL")
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
    counts = acknowledged(d)
    assert sorted(counts) == sorted(f"<two-daemons-{n}@correo.test>" for n in range(20))
    assert set(counts.values()) == {1}
    rows = d.buzon("tickets", "--json").stdout.splitlines()
    assert len(rows) == 20
    assert d.folder_uids("INBOX") == []
    assert len(d.folder_uids("RNP")) == 20
