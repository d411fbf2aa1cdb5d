"""Backlog triage: N mails waiting in a real Dovecot, `buzon run --once` over them with
suggested drafts and again without, beside the server floor for the same required work.

    python benchmarks/backlog.py [--mails 5000]

The floor is what the server alone needs for what buzon must make it do: one FETCH of
the mails, one UID STORE per keyword set, one MOVE per folder, and MULTIAPPEND of the
copies buzon wrote (drafts and ticket cards, taken from buzon's own run). Prints both
rates, the floor, their ratio and the peak RSS of buzon with its child processes. Not a
test: run it by hand or with `make bench`.
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
from dataclasses import dataclass
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


def written_copies(port: int, user: str) -> dict[str, list[tuple[bytes, bytes]]]:
    """The copies buzon appended in its run, by folder: (raw mail, flag) each."""
    settings = ImapSettings(host="127.0.0.1", port=port, security="none", username=user,
                            password_env="UNUSED")
    copies: dict[str, list[tuple[bytes, bytes]]] = {}
    with MailboxClient("copies", settings, PASSWORD) as client:
        for _flags, _sep, folder in client.client.list_folders():
            if folder == "INBOX":
                continue
            client.client.select_folder(folder, readonly=True)
            uids = client.client.search(["OR", "HEADER", "Message-ID", "<ficha.",
                                         "HEADER", "Message-ID", "<draft."])
            for data in (client.client.fetch(uids, ["BODY.PEEK[]"]).values() if uids else ()):
                raw = data[b"BODY[]"]
                flag = b"\\Seen" if b"<ficha." in raw[:4000] else b"\\Draft"
                copies.setdefault(folder, []).append((raw, flag))
    return copies


def server_floor(port: int, user: str, folders: dict[str, list[int]],
                 keyword_sets: dict[tuple[str, ...], list[int]],
                 copies: dict[str, list[tuple[bytes, bytes]]]) -> float:
    """The server alone doing buzon's required work on the same mails: FETCH, one UID
    STORE per keyword set, one MOVE per folder, MULTIAPPEND of the copies."""
    settings = ImapSettings(host="127.0.0.1", port=port, security="none", username=user,
                            password_env="UNUSED")
    with MailboxClient("floor", settings, PASSWORD) as client:
        for folder in list(folders) + list(copies):
            if not client.client.folder_exists(folder):
                client.client.create_folder(folder)
        started = time.perf_counter()
        client.select("INBOX")
        uids = client.uids_after(0)
        client.client.fetch(uids, ["INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE",
                                   "BODY.PEEK[]"])
        client.add_keywords_each([(uid, list(keywords)) for keywords, group in
                                  keyword_sets.items() for uid in group])
        for folder, group in folders.items():
            client.move(group, folder)
        for folder, items in copies.items():
            client.append_each(folder, items)
        return time.perf_counter() - started


def required_work(port: int, user: str, mails: int
                  ) -> tuple[dict[str, list[int]], dict[tuple[str, ...], list[int]]]:
    """Where buzon filed the mails and the keywords it stored, as UID positions 1..N of
    the floor's INBOX (the same mails in the same order)."""
    settings = ImapSettings(host="127.0.0.1", port=port, security="none", username=user,
                            password_env="UNUSED")
    folders: dict[str, list[int]] = {}
    keyword_sets: dict[tuple[str, ...], list[int]] = {}
    with MailboxClient("work", settings, PASSWORD) as client:
        for _flags, _sep, folder in client.client.list_folders():
            client.client.select_folder(folder, readonly=True)
            uids = client.client.search(["HEADER", "Message-ID", "<bench-"])
            for data in (client.client.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS "
                                                              "(MESSAGE-ID)]"]).values()
                         if uids else ()):
                header = next(v for k, v in data.items() if k.startswith(b"BODY["))
                position = int(header.split(b"<bench-")[1].split(b"@")[0]) + 1
                if position > mails:
                    continue
                if folder != "INBOX":
                    folders.setdefault(folder, []).append(position)
                kept = tuple(sorted(f.decode() for f in data[b"FLAGS"]
                                    if f not in (b"\\Seen", b"\\Recent")))
                if kept:
                    keyword_sets.setdefault(kept, []).append(position)
    return folders, keyword_sets


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def current_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process and its children (a worker counts). RSS counts a page
    shared by a forked child in both processes; PSS splits it between them."""
    rss = pss = 0
    for one in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
            for line in Path(f"/proc/{one}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return rss, pss


def peak_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def base_config(work: Path, dovecot: DovecotServer, sink: SmtpSink, user: str) -> dict:
    """One consultas mailbox (the account `user`) on the benchmark's Dovecot, its relay
    and a database of its own."""
    return {
        "database": f"sqlite:///{work / 'buzon.db'}",
        "mailboxes": {"consultas": {"address": "consultas@osce.test", "imap": {
            "host": "127.0.0.1", "port": dovecot.imap_port, "security": "none",
            "username": user, "password_env": "BENCH_PASSWORD"}}},
        "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "none"},
    }


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process, the children it has reaped, and those alive."""
    total = 0.0
    for one in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # utime, stime, and for the process itself its reaped children's cutime, cstime
        total += sum(int(f) for f in fields[11:15 if one == pid else 13])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One `buzon run --once`: its time, memory, and the CPU each part spent meanwhile."""

    seconds: float
    peak_rss_kib: int
    peak_pss_kib: int
    cpu_buzon: float = 0.0  # the daemon and its judge
    cpu_dovecot: float = 0.0
    cpu_relay: float = 0.0  # the aiosmtpd relay, a thread of this benchmark's process

    def cpu_line(self) -> str:
        used = self.cpu_buzon + self.cpu_dovecot + self.cpu_relay
        return (f"buzon {self.cpu_buzon:.1f} s, Dovecot {self.cpu_dovecot:.1f} s, the relay "
                f"{self.cpu_relay:.1f} s: {used:.1f} s of the {self.seconds * CORES:.1f} s "
                f"that {CORES} cores had")


CORES = os.cpu_count() or 1


def run_once(config_path: Path, env: dict[str, str], dovecot: DovecotServer) -> Run:
    """`buzon run --once` in a process of its own: its seconds, the peak RSS and PSS of
    buzon with its child processes, and the CPU that buzon, Dovecot and the relay spent.
    BENCH_PYFLAGS="-m cProfile -o FILE" (or memray's) profiles the run."""
    python = [sys.executable, *os.environ.get("BENCH_PYFLAGS", "").split()]
    master = int((dovecot.directory / "run" / "master.pid").read_text())
    dovecot_before, relay_before = tree_cpu_seconds(master), time.process_time()
    started = time.perf_counter()
    run = subprocess.Popen([*python, "-m", "daemon", "--config", str(config_path), "run",
                            "--once"], env=env)
    peak_rss = peak_pss = 0
    while True:  # sampled every 50 ms (reading PSS walks the page tables)
        rss, pss = current_kib(run.pid)
        peak_rss = max(peak_rss, peak_rss_kib(run.pid), rss)
        peak_pss = max(peak_pss, pss)
        time.sleep(0.05)
        _pid, status, usage = os.wait4(run.pid, os.WNOHANG)
        if _pid:
            break
    seconds = time.perf_counter() - started
    run.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, for its rusage
    if run.returncode != 0:
        raise SystemExit(f"buzon exited {run.returncode}")
    time.sleep(0.2)  # Dovecot reaps the imap processes of buzon's connections
    # This process's own CPU is the relay's (its main thread only samples, above).
    return Run(seconds, peak_rss, peak_pss, cpu_buzon=usage.ru_utime + usage.ru_stime,
               cpu_dovecot=tree_cpu_seconds(master) - dovecot_before,
               cpu_relay=time.process_time() - relay_before)


def measured_run(work: Path, dovecot: DovecotServer, sink: SmtpSink, user: str,
                 model: Path, drafts: bool, fetch_batch: int | None,
                 judge_process: bool = True) -> Run:
    """`buzon run --once` over the backlog in `user`'s INBOX."""
    work.mkdir(parents=True, exist_ok=True)
    config = {
        **base_config(work, dovecot, sink, user),
        "routing": [{"name": "rnp", "folder": "RNP", "subject_patterns": [r"\bRNP\b"]},
                    {"name": "seace", "folder": "SEACE", "subject_patterns": ["SEACE"]}],
        # Every mail acknowledged: the backlog comes from one domain within the hour, past
        # the default domain and hourly caps (those bound a flood, not this measure).
        "automatic_mail": {"ack_cap_per_sender_per_day": 5,
                           "ack_cap_per_domain_per_day": 100_000,
                           "ack_cap_per_hour": 100_000},
        "classifier": {"model_dir": str(model), "train_if_missing": False},
    }
    if not drafts:
        config["answers"] = {"enabled": False}
    config["watcher"] = {"judge_process": judge_process}
    if fetch_batch:
        config["watcher"]["fetch_batch"] = fetch_batch
    config_path = work / "rules.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, BENCH_PASSWORD=PASSWORD, BUZON_LOG_LEVEL="WARNING")
    return run_once(config_path, env, dovecot)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--fetch-batch", type=int, default=None,
                        help="watcher.fetch_batch (default: the daemon's own)")
    parser.add_argument("--judge-inline", action="store_true",
                        help="watcher.judge_process: false (judge in the daemon's process)")
    args = parser.parse_args()
    mails = sample_mails(args.mails)
    work = Path(tempfile.mkdtemp(prefix="buzon-bench-"))
    dovecot = DovecotServer(password=PASSWORD).start()
    sink = SmtpSink().start()
    try:
        for user in ("floor@osce.test", "drafts@osce.test", "plain@osce.test"):
            seed(dovecot.imap_port, user, mails)
        model = work / "model"
        ensure_model(model, None, ["SEACE", "RNP", "Legal"])  # trained untimed
        drafts_run = measured_run(work / "drafts", dovecot, sink, "drafts@osce.test", model,
                                  True, args.fetch_batch, not args.judge_inline)
        acknowledged = len(sink.messages())
        sink.clear()
        plain_run = measured_run(work / "plain", dovecot, sink, "plain@osce.test", model,
                                 False, args.fetch_batch, not args.judge_inline)
        acknowledged_plain = len(sink.messages())
        folders, keyword_sets = required_work(dovecot.imap_port, "drafts@osce.test",
                                              args.mails)
        copies = written_copies(dovecot.imap_port, "drafts@osce.test")
        floor = server_floor(dovecot.imap_port, "floor@osce.test", folders, keyword_sets,
                             copies)
    finally:
        sink.stop()
        dovecot.remove()
    n = args.mails
    with_drafts, without = drafts_run.seconds, plain_run.seconds
    peak_drafts, peak_plain = drafts_run.peak_rss_kib, plain_run.peak_rss_kib
    pss_drafts, pss_plain = drafts_run.peak_pss_kib, plain_run.peak_pss_kib
    drafts = sum(1 for items in copies.values() for _raw, flag in items if flag == b"\\Draft")
    cards = sum(len(items) for items in copies.values()) - drafts
    print(f"mails: {n}; acknowledgements received: {acknowledged} with drafts, "
          f"{acknowledged_plain} without")
    print(f"buzon with drafts:    {with_drafts:.2f} s = {n / with_drafts:.0f} mails/s")
    print(f"buzon without drafts: {without:.2f} s = {n / without:.0f} mails/s")
    print(f"server floor for the same work (FETCH, {len(keyword_sets)} keyword sets by UID "
          f"STORE, MOVE to {len(folders)} folders, MULTIAPPEND of {drafts} drafts and "
          f"{cards} cards): {floor:.2f} s = {n / floor:.0f} mails/s")
    print(f"ratio buzon with drafts / floor: {with_drafts / floor:.1f}x")
    print(f"peak RSS including workers: {max(peak_drafts, peak_plain) / 1024:.0f} MiB "
          f"(with drafts {peak_drafts / 1024:.0f}, without {peak_plain / 1024:.0f}); "
          f"peak PSS, shared pages counted once: {max(pss_drafts, pss_plain) / 1024:.0f} MiB "
          f"(with drafts {pss_drafts / 1024:.0f}, without {pss_plain / 1024:.0f})")
    print(f"CPU with drafts: {drafts_run.cpu_line()}")
    print(f"CPU without drafts: {plain_run.cpu_line()}")
    return 0 if acknowledged == acknowledged_plain == n else 1


if __name__ == "__main__":
    sys.exit(main())
