"""First start: `buzon run` on a fresh state directory (no database, no model), then a
restart on the state the first start left, each timed from the process's start to the
log line that says the mailboxes are watched, with the peak RSS of the daemon and its
children (`/usr/bin/time -v`).

    python benchmarks/first_start.py [--keep-running SECONDS]

A consulta is in the inbox before the first start: it must end in a category folder or
in the review folder, acknowledged once, whether or not a model exists yet. After the
line, the first start is left running until that consulta is acknowledged (at most
`--wait` seconds, 300 by default), so that a model trained beside the daemon counts in
the peak RSS.
Target: watching within 5 s of start.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import yaml
from imapclient import IMAPClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.mail.sandbox import DovecotServer, SmtpSink  # noqa: E402

PASSWORD = "first-start-password"
WATCHING = "buzon running"
TARGET_SECONDS = 5.0


def consulta() -> bytes:
    message = EmailMessage()
    message["From"] = "Ana Quispe <ana.quispe@correo.test>"
    message["To"] = "consultas@osce.test"
    message["Subject"] = "No puedo registrar mi oferta"
    message["Message-ID"] = "<first-start-1@correo.test>"
    message.set_content("Buenos días, el sistema no me deja registrar la oferta del "
                        "procedimiento de selección, ¿qué hago?")
    return bytes(message)


def start_once(config: Path, env: dict, settled, wait: float) -> dict:
    """One `buzon run` under /usr/bin/time -v: seconds to the watching line, peak RSS.
    It stays up until `settled()` holds (at most `wait` seconds)."""
    report = Path(tempfile.mktemp(prefix="buzon-time-", suffix=".txt"))
    started = time.monotonic()
    daemon = subprocess.Popen(
        ["/usr/bin/time", "-v", "-o", str(report), sys.executable, "-m", "daemon",
         "--config", str(config), "run"],
        env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    watching = threading.Event()
    seconds: list[float] = []

    def read() -> None:
        for line in daemon.stderr:
            lines.append(line)
            if WATCHING in line and not watching.is_set():
                seconds.append(time.monotonic() - started)
                watching.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not watching.wait(300):
            raise SystemExit("the daemon never said it was watching:\n" + "".join(lines))
        # Up while a model is trained beside it and the waiting consulta is handled.
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not settled():
            time.sleep(0.2)
        settled_after = time.monotonic() - started
        time.sleep(2)
    finally:
        # SIGTERM to buzon itself (time's child), so time reports once buzon stopped.
        children = subprocess.run(["pgrep", "-P", str(daemon.pid)], capture_output=True,
                                  text=True).stdout.split()
        daemon_peak = max((peak_rss_kib(int(pid)) for pid in children), default=0)
        for pid in children:
            os.kill(int(pid), signal.SIGTERM)
        daemon.wait(timeout=120)
        reader.join(timeout=5)
    text = report.read_text()
    report.unlink()
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    trained = any("first model in place" in line for line in lines)
    return {"seconds": seconds[0], "settled": settled_after, "peak_mib": peak / 1024,
            "daemon_mib": daemon_peak / 1024,
            "log": lines, "trained": trained}


def peak_rss_kib(pid: int) -> int:
    """The peak RSS of one process (VmHWM), its children not counted."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def where_is(client: IMAPClient, message_id: str, folders: list[str]) -> str | None:
    for folder in folders:
        if not client.folder_exists(folder):
            continue
        client.select_folder(folder, readonly=True)
        if client.search(["HEADER", "Message-ID", message_id]):
            return folder
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wait", type=float, default=300.0,
                        help="seconds the first start stays up, at most, for the consulta")
    parser.add_argument("--verbose", action="store_true", help="print the daemon's log")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="buzon-first-start-"))
    dovecot = DovecotServer(password=PASSWORD).start()
    sink = SmtpSink().start()
    model_dir = work / "state" / "model"
    config = {
        "database": f"sqlite:///{work / 'state' / 'buzon.db'}",
        "mailboxes": {name: {"address": f"{name}@osce.test", "imap": {
            "host": "127.0.0.1", "port": dovecot.imap_port, "security": "none",
            "username": f"{name}@osce.test", "password_env": "FIRST_START_PASSWORD"}}
            for name in ("consultas", "sugerencias")},
        "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "none"},
        "people": {"coordinators": ["coordinador@osce.test"]},
        "classifier": {"model_dir": str(model_dir)},
    }
    (work / "state").mkdir()
    config_path = work / "rules.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, FIRST_START_PASSWORD=PASSWORD, BUZON_LOG_LEVEL="INFO")
    try:
        with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as client:
            client.login("consultas@osce.test", PASSWORD)
            client.append("INBOX", consulta(), (), datetime.now(UTC) - timedelta(minutes=5))
        def acknowledged() -> bool:
            return any(m.message["In-Reply-To"] == "<first-start-1@correo.test>"
                       for m in sink.messages())

        first = start_once(config_path, env, acknowledged, args.wait)
        restart = start_once(config_path, env, lambda: True, 0)
        with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as client:
            client.login("consultas@osce.test", PASSWORD)
            folder = where_is(client, "<first-start-1@correo.test>",
                              ["INBOX", "SEACE", "RNP", "Legal", "Por clasificar",
                               "Cuarentena"])
        acks = [m for m in sink.messages()
                if m.message["In-Reply-To"] == "<first-start-1@correo.test>"]
    finally:
        sink.stop()
        dovecot.remove()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    print(f"first start (no database, no model): watching after {first['seconds']:.1f} s; "
          f"peak RSS {first['peak_mib']:.0f} MiB (the daemon or any one child), the daemon "
          f"{first['daemon_mib']:.0f} MiB; first model trained beside it: "
          f"{'yes' if first['trained'] else 'no'}")
    print(f"restart (the state the first start left): watching after "
          f"{restart['seconds']:.1f} s; peak RSS {restart['peak_mib']:.0f} MiB, the daemon "
          f"{restart['daemon_mib']:.0f} MiB")
    print(f"the consulta waiting in the inbox: filed in {folder}, "
          f"{len(acks)} acknowledgement(s), {first['settled']:.0f} s after the first start")
    if args.verbose:
        for name, run in (("first start", first), ("restart", restart)):
            print(f"--- {name}'s log", "".join(run["log"]), sep="\n")
    ok = first["seconds"] <= TARGET_SECONDS and folder not in (None, "INBOX", "Cuarentena") \
        and len(acks) == 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
