"""Log lines of an idle daemon: `buzon run` on two empty mailboxes of a real Dovecot for a
few minutes, its stderr counted and scaled to an hour and a day.

    python benchmarks/idle_log.py [--minutes 10] [--checkout PATH]

`--checkout` runs another checkout's code (an older commit, to compare). The watchers'
settings are the defaults (IDLE re-issued every 30 s, the sweep every minute). The lines
of the first minute (start-up) are counted apart from the idle ones, and the lines of the
stop are not counted. Not a test: run it by hand.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.mail.sandbox import DovecotServer, SmtpSink  # noqa: E402

PASSWORD = "bench-password"
REPO = Path(__file__).resolve().parent.parent
# "2026-12-03 09:15:02-05:00 INFO name: ..." or, before the zoned stamp, "... 09:15:02,123 ..."
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\S* (\w+) ([\w.]+):")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--checkout", type=Path, default=REPO)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="buzon-idle-"))
    dovecot, sink = DovecotServer(password=PASSWORD).start(), SmtpSink().start()
    try:
        env = dict(os.environ, PYTHONPATH=str(args.checkout))
        mailboxes = {}
        for name in ("consultas", "sugerencias"):
            address = f"{name}@idle.test"
            env[f"IDLE_{name.upper()}"] = PASSWORD
            mailboxes[name] = {"address": address, "imap": {
                "host": "127.0.0.1", "port": dovecot.imap_port, "security": "none",
                "username": address, "password_env": f"IDLE_{name.upper()}"}}
        config = {"timezone": "America/Lima", "database": f"sqlite:///{work / 'buzon.db'}",
                  "mailboxes": mailboxes,
                  "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "none"},
                  "people": {"coordinators": ["coordinador@idle.test"]},
                  "classifier": {"enabled": False}}
        (work / "rules.yaml").write_text(yaml.safe_dump(config))
        log = work / "stderr.log"
        with log.open("w") as handle:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "daemon", "--config", str(work / "rules.yaml"), "run"],
                env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=handle)
            started = time.monotonic()
            time.sleep(args.minutes * 60)
            handle.flush()
            # Counted before the stop: "buzon stopped" is no idle line.
            lines = log.read_text(errors="replace").splitlines()
            elapsed = time.monotonic() - started
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
        stamps = [m for m in map(LINE.match, lines) if m]
        first = stamps[0].group(1) if stamps else ""
        start_minute = [m for m in stamps if m.group(1)[:16] == first[:16]]
        idle = len(lines) - len(start_minute)
        idle_minutes = elapsed / 60 - 1
        per_hour = idle / idle_minutes * 60 if idle_minutes > 0 else 0
        print(f"checkout {args.checkout}: {len(lines)} lines in {elapsed / 60:.1f} min "
              f"({len(start_minute)} in the first minute); idle: {idle} lines in "
              f"{idle_minutes:.1f} min = {per_hour:.0f} an hour, {per_hour * 24:.0f} a day")
        by_logger = collections.Counter(m.group(3) for m in stamps[len(start_minute):])
        for name, count in by_logger.most_common():
            print(f"  {count:6d}  {name}")
        return 0
    finally:
        dovecot.remove()
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
