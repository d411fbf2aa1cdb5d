"""Large mails: a batch of big mails waiting in a real Dovecot, one `buzon run --once`
over them, and the peak RSS of buzon's own process.

    python benchmarks/big_mails.py [--shape SHAPE] [--mails 8] [--mb 50]

SHAPE is one of the kinds of large mail citizens send (`attachment`: a text part and a
PDF; `text`: one huge text/plain part; `html`: text and an HTML part with pictures
inlined as data: URIs; `single`: the whole mail one application/pdf part; `related`:
HTML with unnamed inline pictures; `header`: a short text under a huge header; `mix`: all
of them and small mails in between).
Prints the peak RSS, the time and whether every mail got its ticket. Not a test: run it
by hand (the memory target is checked here, not in the test run).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import yaml
from imapclient import IMAPClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backlog import base_config, run_once  # noqa: E402

from classifiers.learning import ensure_model  # noqa: E402
from daemon.mail.sandbox import DovecotServer, SmtpSink  # noqa: E402

PASSWORD = "bench-password"
SHAPES = ("attachment", "text", "html", "single", "related", "header")
QUESTION = "Buenos días, adjunto mi oferta. ¿Cómo la registro en el SEACE?\n"


def _noise(size: int, seed: int) -> bytes:
    """Incompressible bytes (a PDF or a photo is): nothing on the way can shrink them."""
    return random.Random(seed).randbytes(size)


def big_mail(shape: str, number: int, size: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Ciudadano {number} <ciudadano{number}@correo{number}.test>"
    message["To"] = "consultas@osce.test"
    message["Subject"] = f"Oferta {number} ({shape})"
    message["Message-ID"] = f"<big-{shape}-{number}@correo.test>"
    if shape == "attachment":
        message.set_content(QUESTION)
        message.add_attachment(_noise(size, number), maintype="application", subtype="pdf",
                               filename=f"oferta-{number}.pdf")
    elif shape == "text":
        line = "Detalle del ítem: cantidad, precio unitario y plazo de entrega.\n"
        message.set_content(QUESTION + line * (size // len(line)))
    elif shape == "html":
        picture = base64.b64encode(_noise(size * 3 // 4, number)).decode()
        message.set_content(QUESTION)
        message.add_alternative(f"<p>{QUESTION}</p><img src=\"data:image/png;base64,"
                                f"{picture}\">", subtype="html")
    elif shape == "single":
        message.set_content(_noise(size, number), maintype="application", subtype="pdf")
    elif shape == "header":
        message.set_content(QUESTION)
        padding = b"".join(b"X-Relleno-%d: %s\n" % (line, b"x" * 80)
                           for line in range(size // 100))
        return padding + bytes(message)
    elif shape == "related":
        message.set_content(QUESTION)
        message.add_alternative(f"<p>{QUESTION}</p><img src=\"cid:foto{number}\">",
                                subtype="html")
        html = message.get_payload()[1]
        html.add_related(_noise(size, number), maintype="image", subtype="png",
                         cid=f"<foto{number}>")
    else:
        raise ValueError(shape)
    return bytes(message)


def small_mail(number: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Vecino {number} <vecino{number}@correo{number}.test>"
    message["To"] = "consultas@osce.test"
    message["Subject"] = f"Consulta breve {number}"
    message["Message-ID"] = f"<small-{number}@correo.test>"
    message.set_content(QUESTION)
    return bytes(message)


def mails_for(shape: str, count: int, size: int) -> list[bytes]:
    if shape != "mix":
        return [big_mail(shape, number, size) for number in range(count)]
    mails = []
    for number in range(count):
        mails.append(big_mail(SHAPES[number % len(SHAPES)], number, size))
        mails += [small_mail(100 * number + k) for k in range(20)]
    return mails


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=(*SHAPES, "mix"), default="attachment")
    parser.add_argument("--mails", type=int, default=8, help="how many big mails")
    parser.add_argument("--mb", type=float, default=50.0, help="size of each big mail, MB")
    parser.add_argument("--fetch-bytes", type=int, default=None,
                        help="watcher.fetch_bytes (default: the daemon's own)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="buzon-big-"))
    dovecot = DovecotServer(password=PASSWORD).start()
    sink = SmtpSink().start()
    try:
        mails = mails_for(args.shape, args.mails, int(args.mb * 1_000_000))
        count, total = len(mails), sum(len(raw) for raw in mails)
        arrival = datetime.now(UTC) - timedelta(minutes=30)
        with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as client:
            client.login("consultas@osce.test", PASSWORD)
            for raw in mails:
                client.append("INBOX", raw, (), arrival)
        del mails  # the benchmark's own copies are not buzon's memory, but free them
        # Trained once, untimed, and kept for the next runs (the daemon only reads it).
        model = Path(tempfile.gettempdir()) / "buzon-bench-model"
        ensure_model(model, None, ["SEACE", "RNP", "Legal"])
        config = {**base_config(work, dovecot, sink),
                  "classifier": {"model_dir": str(model), "train_if_missing": False}}
        if args.fetch_bytes:
            config["watcher"] = {"fetch_bytes": args.fetch_bytes}
        config_path = work / "rules.yaml"
        config_path.write_text(yaml.safe_dump(config))
        env = dict(os.environ, BENCH_PASSWORD=PASSWORD, BUZON_LOG_LEVEL="WARNING")
        elapsed, peak_kib = run_once(config_path, env)
        tickets = subprocess.run(
            [sys.executable, "-m", "daemon", "--config", str(config_path), "tickets",
             "--json"], env=env, capture_output=True, text=True, check=True).stdout
        ticketed = len([json.loads(line) for line in tickets.splitlines()])
        acknowledged = len(sink.messages())
        with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as client:
            client.login("consultas@osce.test", PASSWORD)
            quarantined = (client.select_folder("Cuarentena")[b"EXISTS"]
                           if client.folder_exists("Cuarentena") else 0)
    finally:
        sink.stop()
        dovecot.remove()
    print(f"shape {args.shape}: {count} mails, {total / 2**20:.0f} MiB on the server")
    print(f"buzon run --once: {elapsed:.1f} s; tickets {ticketed}, acknowledgements "
          f"{acknowledged}, quarantined {quarantined}")
    print(f"peak RSS of buzon: {peak_kib / 1024:.0f} MiB")
    every_mail = ticketed + quarantined == count and acknowledged == ticketed
    return 0 if every_mail and peak_kib < 300 * 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
