"""Backlog triage: N mails waiting in a real Dovecot, `buzon run --once` over them,
beside the raw floor of the same server (one bulk FETCH plus one bulk UID MOVE).

    python benchmarks/backlog.py [--mails 5000]

Prints mails per second end to end (acknowledgements included), the floor, their ratio
and buzon's peak RSS. Not a test: run it by hand or with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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

from classifiers.learning import ensure_model  # noqa: E402
from daemon.config import ImapSettings  # noqa: E402
from daemon.mail.imap import MailboxClient  # noqa: E402
from daemon.mail.sandbox import DovecotServer, SmtpSink  # noqa: E402

PASSWORD = "bench-password"
CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"


def sample_mails(count: int) -> list[bytes]:
    """Realistic citizen mail: the corpus's subjects and bodies, cycled, each with its own
    sender and Message-ID."""
    rows = [json.loads(line) for path in sorted(CORPUS.glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(7).shuffle(rows)
    mails = []
    for number in range(count):
        row = rows[number % len(rows)]
        message = EmailMessage()
        message["From"] = f"Ciudadano {number} <ciudadano{number}@correo.test>"
        message["To"] = "consultas@osce.test"
        message["Subject"] = row["subject"] or "consulta"
        message["Message-ID"] = f"<bench-{number}@correo.test>"
        message.set_content(row["body"])
        mails.append(bytes(message))
    return mails


def seed(port: int, user: str, mails: list[bytes]) -> None:
    # A backlog of the last hour: mail arrives this way after a weekend of downtime too,
    # but then every ticket would already be overdue and escalated, a different test.
    start = datetime.now(UTC) - timedelta(hours=1)
    with IMAPClient("127.0.0.1", port=port, ssl=False) as client:
        client.login(user, PASSWORD)
        for index, raw in enumerate(mails):
            client.append("INBOX", raw, (), start + timedelta(milliseconds=500 * index))


def raw_floor(port: int, user: str) -> float:
    with IMAPClient("127.0.0.1", port=port, ssl=False) as client:
        client.login(user, PASSWORD)
        client.create_folder("Destino")
        started = time.perf_counter()
        client.select_folder("INBOX")
        uids = client.search()
        client.fetch(uids, ["INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE", "BODY.PEEK[]"])
        client.move(uids, "Destino")
        return time.perf_counter() - started


def keyword_floor(port: int, user: str) -> float:
    """The floor plus the keywords buzon stores on a backlog before the MOVE: its fixed
    deadline bucket on every mail, one UID STORE per keyword set (no keyword per ticket)."""
    settings = ImapSettings(host="127.0.0.1", port=port, security="none", username=user,
                            password_env="UNUSED")
    with MailboxClient("floor", settings, PASSWORD) as client:
        client.client.create_folder("Destino")
        started = time.perf_counter()
        client.select("INBOX")
        uids = client.uids_after(0)
        client.client.fetch(uids, ["INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE",
                                   "BODY.PEEK[]"])
        client.add_keywords_each([(uid, ["\\Flagged", "Por_vencer"]) for uid in uids])
        client.move(uids, "Destino")
        return time.perf_counter() - started


def drafts_floor(port: int, owner: str, user: str) -> tuple[int, float]:
    """The server alone appending the very drafts buzon wrote (pipelined, as buzon does):
    how many, and the seconds it took."""
    settings = ImapSettings(host="127.0.0.1", port=port, security="none", username=owner,
                            password_env="UNUSED")
    with MailboxClient("drafts", settings, PASSWORD) as client:
        folder = client.client.find_special_folder(b"\\Drafts") or "Drafts"
        if not client.client.folder_exists(folder):
            return 0, 0.0
        client.client.select_folder(folder, readonly=True)
        uids = client.client.search()
        drafts = [data[b"BODY[]"] for data in
                  client.client.fetch(uids, ["BODY.PEEK[]"]).values()] if uids else []
    settings = settings.model_copy(update={"username": user})
    with MailboxClient("floor", settings, PASSWORD) as client:
        client.client.create_folder("Borradores")
        started = time.perf_counter()
        client.append_each("Borradores", [(raw, b"\\Draft") for raw in drafts])
        return len(drafts), time.perf_counter() - started


def peak_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def base_config(work: Path, dovecot: DovecotServer, sink: SmtpSink) -> dict:
    """One consultas mailbox on the benchmark's Dovecot, its relay and its database."""
    return {
        "database": f"sqlite:///{work / 'buzon.db'}",
        "mailboxes": {"consultas": {"address": "consultas@osce.test", "imap": {
            "host": "127.0.0.1", "port": dovecot.imap_port, "security": "none",
            "username": "consultas@osce.test", "password_env": "BENCH_PASSWORD"}}},
        "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "none"},
    }


def run_once(config_path: Path, env: dict[str, str]) -> tuple[float, int]:
    """`buzon run --once` in a process of its own: (seconds, its peak RSS in KiB).
    BENCH_PYFLAGS="-m cProfile -o FILE" (or memray's) profiles the run."""
    python = [sys.executable, *os.environ.get("BENCH_PYFLAGS", "").split()]
    started = time.perf_counter()
    run = subprocess.Popen([*python, "-m", "daemon", "--config", str(config_path), "run",
                            "--once"], env=env)
    peak_kib = 0
    while run.poll() is None:  # the peak of buzon's own process (VmHWM), not a child's
        peak_kib = max(peak_kib, peak_rss_kib(run.pid))
        time.sleep(0.02)
    if run.returncode != 0:
        raise SystemExit(f"buzon exited {run.returncode}")
    return time.perf_counter() - started, peak_kib


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--without-drafts", action="store_true",
                        help="answers.enabled: false (no suggested replies into Drafts)")
    parser.add_argument("--fetch-batch", type=int, default=None,
                        help="watcher.fetch_batch (default: the daemon's own)")
    args = parser.parse_args()
    mails = sample_mails(args.mails)
    work = Path(tempfile.mkdtemp(prefix="buzon-bench-"))
    dovecot = DovecotServer(password=PASSWORD).start()
    sink = SmtpSink().start()
    try:
        seed(dovecot.imap_port, "floor@osce.test", mails)
        seed(dovecot.imap_port, "keywords@osce.test", mails)
        seed(dovecot.imap_port, "consultas@osce.test", mails)
        floor = raw_floor(dovecot.imap_port, "floor@osce.test")
        with_keywords = keyword_floor(dovecot.imap_port, "keywords@osce.test")
        ensure_model(work / "model", None, ["SEACE", "RNP", "Legal"])  # trained untimed
        config = {
            **base_config(work, dovecot, sink),
            "routing": [{"name": "rnp", "folder": "RNP", "subject_patterns": [r"\bRNP\b"]},
                        {"name": "seace", "folder": "SEACE", "subject_patterns": ["SEACE"]}],
            # Every mail acknowledged: the 5,000 come from one domain within the hour, past
            # the default domain and hourly caps (those bound a flood, not this measure).
            "automatic_mail": {"ack_cap_per_sender_per_day": 5,
                               "ack_cap_per_domain_per_day": 100_000,
                               "ack_cap_per_hour": 100_000},
            "classifier": {"model_dir": str(work / "model"), "train_if_missing": False},
        }
        if args.without_drafts:
            config["answers"] = {"enabled": False}
        if args.fetch_batch:
            config["watcher"] = {"fetch_batch": args.fetch_batch}
        config_path = work / "rules.yaml"
        config_path.write_text(yaml.safe_dump(config))
        env = dict(os.environ, BENCH_PASSWORD=PASSWORD, BUZON_LOG_LEVEL="WARNING")
        elapsed, peak_kib = run_once(config_path, env)
        acknowledged = len(sink.messages())
        drafts, drafts_seconds = drafts_floor(dovecot.imap_port, "consultas@osce.test",
                                              "drafts@osce.test")
    finally:
        sink.stop()
        dovecot.remove()
    rate = args.mails / elapsed
    print(f"mails: {args.mails}, acknowledgements received by the SMTP server: {acknowledged}")
    print(f"buzon run --once: {elapsed:.2f} s = {rate:.0f} mails/s end to end")
    print(f"raw floor (one bulk FETCH + one bulk UID MOVE): {floor:.2f} s "
          f"= {args.mails / floor:.0f} mails/s")
    print(f"ratio buzon / floor: {elapsed / floor:.1f}x")
    print(f"server floor with the keywords every mail gets (FETCH + one UID STORE per mail, "
          f"pipelined + MOVE): {with_keywords:.2f} s = {with_keywords / floor:.1f}x the raw floor")
    if drafts:
        print(f"server floor for appending the {drafts} suggested drafts buzon wrote "
              f"(pipelined APPEND): {drafts_seconds:.2f} s")
    print(f"peak RSS of buzon: {peak_kib / 1024:.0f} MiB")
    return 0 if acknowledged == args.mails else 1


if __name__ == "__main__":
    sys.exit(main())
