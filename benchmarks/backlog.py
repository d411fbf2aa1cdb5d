"""Backlog triage: N mails waiting in a real Dovecot, `buzon run --once` over them,
beside the raw floor of the same server (one bulk FETCH plus one bulk UID MOVE).

    python benchmarks/backlog.py [--mails 5000]

Prints mails per second end to end (acknowledgements included), the floor, their ratio
and buzon's peak RSS. Not a test: run it by hand or with `make bench`.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
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

from daemon.sandbox import DovecotServer, SmtpSink  # noqa: E402

PASSWORD = "bench-password"
SUBJECTS = ["No puedo ingresar al SEACE", "Renovación RNP", "Consulta sobre penalidad",
            "consulta", "Duda sobre garantías", "Problema con mi oferta electrónica"]


def sample_mail(number: int, rng: random.Random) -> bytes:
    message = EmailMessage()
    message["From"] = f"Ciudadano {number} <ciudadano{number}@correo.test>"
    message["To"] = "consultas@osce.test"
    message["Subject"] = f"{rng.choice(SUBJECTS)} ({number})"
    message["Message-ID"] = f"<bench-{number}@correo.test>"
    message.set_content("Buenos días:\n\n" + " ".join(
        rng.choice(["Quisiera saber", "cómo renuevo", "mi inscripción", "en el registro",
                    "del proveedor", "porque el sistema", "me muestra un error", "al enviar",
                    "la oferta", "según la ley"]) for _ in range(60)) + "\n\nGracias.\n")
    return bytes(message)


def seed(port: int, user: str, mails: list[bytes]) -> None:
    start = datetime.now(UTC) - timedelta(days=3)
    with IMAPClient("127.0.0.1", port=port, ssl=False) as client:
        client.login(user, PASSWORD)
        for index, raw in enumerate(mails):
            client.append("INBOX", raw, (), start + timedelta(seconds=index))


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=5000)
    args = parser.parse_args()
    rng = random.Random(7)
    mails = [sample_mail(number, rng) for number in range(args.mails)]
    work = Path(tempfile.mkdtemp(prefix="buzon-bench-"))
    dovecot = DovecotServer(password=PASSWORD).start()
    sink = SmtpSink().start()
    try:
        seed(dovecot.imap_port, "floor@osce.test", mails)
        seed(dovecot.imap_port, "consultas@osce.test", mails)
        floor = raw_floor(dovecot.imap_port, "floor@osce.test")
        config = {
            "database": f"sqlite:///{work / 'buzon.db'}",
            "mailboxes": {"consultas": {"address": "consultas@osce.test", "imap": {
                "host": "127.0.0.1", "port": dovecot.imap_port, "security": "none",
                "username": "consultas@osce.test", "password_env": "BENCH_PASSWORD"}}},
            "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "none"},
            "routing": [{"name": "rnp", "folder": "RNP", "subject_patterns": [r"\bRNP\b"]},
                        {"name": "seace", "folder": "SEACE", "subject_patterns": ["SEACE"]}],
            "automatic_mail": {"ack_cap_per_sender_per_day": 5},
        }
        config_path = work / "rules.yaml"
        config_path.write_text(yaml.safe_dump(config))
        env = dict(os.environ, BENCH_PASSWORD=PASSWORD, BUZON_LOG_LEVEL="WARNING")
        started = time.perf_counter()
        # BENCH_PYFLAGS="-m cProfile -o FILE" profiles the run.
        python = [sys.executable, *os.environ.get("BENCH_PYFLAGS", "").split()]
        subprocess.run([*python, "-m", "daemon", "--config", str(config_path), "run", "--once"],
                       env=env, check=True)
        elapsed = time.perf_counter() - started
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        acknowledged = len(sink.messages())
    finally:
        sink.stop()
        dovecot.remove()
    rate = args.mails / elapsed
    print(f"mails: {args.mails}, acknowledgements received by the SMTP server: {acknowledged}")
    print(f"buzon run --once: {elapsed:.2f} s = {rate:.0f} mails/s end to end")
    print(f"raw floor (one bulk FETCH + one bulk UID MOVE): {floor:.2f} s "
          f"= {args.mails / floor:.0f} mails/s")
    print(f"ratio buzon / floor: {elapsed / floor:.1f}x")
    print(f"peak RSS of buzon: {peak_kib / 1024:.0f} MiB")
    return 0 if acknowledged == args.mails else 1


if __name__ == "__main__":
    sys.exit(main())
