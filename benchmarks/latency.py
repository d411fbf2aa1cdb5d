"""IDLE latency: the daemon watches a real Dovecot through IMAP IDLE while mail arrives
at a steady rate; the time from each APPEND to the citizen's acknowledgement reaching
the SMTP server (the mail filed and acknowledged: both happen in the same flush).

    python benchmarks/latency.py [--mails 200] [--rate 20]

Prints p50, p95 and the maximum, and the daemon's peak RSS. Target: p95 under 1 s.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import yaml
from imapclient import IMAPClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.mail.sandbox import DovecotServer, SmtpSink  # noqa: E402

PASSWORD = "latency-password"


def mail(number: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Ciudadano {number} <ciudadano{number}@correo.test>"
    message["To"] = "consultas@osce.test"
    message["Subject"] = "Consulta sobre el RNP" if number % 2 else "Problema en el SEACE"
    message["Message-ID"] = f"<latency-{number}@correo.test>"
    message.set_content(f"Consulta número {number}: ¿cómo renuevo mi inscripción?")
    return bytes(message)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--model", action="store_true",
                        help="classify with the trained model instead of routing rules")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="buzon-latency-"))
    dovecot = DovecotServer(password=PASSWORD).start()
    sink = SmtpSink().start()
    config = {
        "database": f"sqlite:///{work / 'buzon.db'}",
        "mailboxes": {"consultas": {"address": "consultas@osce.test", "imap": {
            "host": "127.0.0.1", "port": dovecot.imap_port, "security": "none",
            "username": "consultas@osce.test", "password_env": "LATENCY_PASSWORD"}}},
        "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "none"},
        "routing": [{"name": "rnp", "folder": "RNP", "subject_patterns": [r"\bRNP\b"]},
                    {"name": "seace", "folder": "SEACE", "subject_patterns": ["SEACE"]}],
        "classifier": ({"model_dir": str(work / "model")} if args.model
                       else {"enabled": False}),
    }
    config_path = work / "rules.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, LATENCY_PASSWORD=PASSWORD, BUZON_LOG_LEVEL="WARNING")
    daemon = subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(config_path),
                               "run"], env=env)
    try:
        with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as client:
            client.login("consultas@osce.test", PASSWORD)
            # With --model, the first model is trained beside the daemon at start, and
            # consultas wait for it: measured from the moment it is in place.
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not (
                    client.folder_exists("RNP")
                    and (not args.model or (work / "model" / "model.json").exists())):
                time.sleep(0.2)
            time.sleep(2)  # the watcher has gone into IDLE
            appended: dict[str, float] = {}
            arrival = datetime.now(UTC) - timedelta(minutes=5)
            started = time.monotonic()
            for number in range(args.mails):
                time.sleep(max(0.0, started + number / args.rate - time.monotonic()))
                client.append("INBOX", mail(number), (), arrival)
                appended[f"<latency-{number}@correo.test>"] = time.monotonic()
        deadline = time.monotonic() + 60
        while len(sink.messages()) < args.mails and time.monotonic() < deadline:
            time.sleep(0.05)
        rss = peak_rss_kib(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        sink.stop()
        dovecot.remove()
    by_mail = {m.message["In-Reply-To"]: m.received_at - appended[m.message["In-Reply-To"]]
               for m in sink.messages() if m.message["In-Reply-To"] in appended}
    latencies = sorted(by_mail.values())
    slow = [f"{mail_id} {seconds:.1f} s" for mail_id, seconds in by_mail.items() if seconds > 5]
    if slow:
        print("slower than 5 s:", ", ".join(slow))
    if len(latencies) < args.mails:
        print(f"only {len(latencies)} of {args.mails} acknowledged within a minute")
        return 1
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * len(latencies)) - 1]
    print(f"{args.mails} mails at {args.rate:g}/s through IDLE: APPEND to acknowledgement "
          f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    print(f"daemon peak RSS: {rss / 1024:.0f} MiB")
    return 0 if p95 < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
