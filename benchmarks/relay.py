"""Acknowledgements per second through the relay: buzon's SMTP pool (persistent
connections on one long-lived event loop, RFC 2920 pipelining where the relay offers
it), the same pool sending one command at a time, and the path it replaced (a new event
loop and new connections for every batch of 200).

    python benchmarks/relay.py [--relay HOST:PORT] [--latency-ms N] [--mails 2000]
                               [--connections 4] [--rounds 2]

Without --relay, a local aiosmtpd sink is started in a process of its own (so it does
not share this process's GIL). With --relay, any SMTP server on a loopback port that
takes mail without a login (Exim or Postfix set up for it); not part of CI. With
--latency-ms, the relay is reached through a proxy that holds each packet that long each
way (benchmarks/latency_proxy.py), as a relay across a network would.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.config import SmtpSettings  # noqa: E402
from daemon.mail import smtp  # noqa: E402
from daemon.mail.sandbox import free_port  # noqa: E402
from daemon.store.outbox import SEND_BATCH  # noqa: E402

BODY = ("Estimado/a ciudadano/a:\n\nHemos recibido su consulta y le responderemos dentro "
        "del plazo de atención. Conserve el número de su ticket para cualquier consulta "
        "posterior.\n\nAtentamente,\nMesa de consultas\n") * 4


def acknowledgement(number: int) -> tuple[str, list[str], bytes]:
    message = EmailMessage()
    message["From"] = "OECE - Atención al usuario <consultas@osce.test>"
    message["To"] = f"ciudadano{number}@correo.test"
    message["Subject"] = f"[C-2026-{number:06d}] Recibimos su consulta"
    message["Message-ID"] = f"<ack.bench{number}@buzon.osce.test>"
    message["Auto-Submitted"] = "auto-replied"
    message.set_content(BODY)
    return "consultas@osce.test", [f"ciudadano{number}@correo.test"], bytes(message)


async def _one_loop_lane(settings: SmtpSettings, mails) -> None:
    client = await smtp._open(settings, None)
    try:
        for sender, recipients, raw in mails:
            await client.sendmail(sender, recipients, raw)
    finally:
        await smtp._quit(client)


async def _one_loop_batch(settings: SmtpSettings, mails) -> None:
    lanes = min(settings.connections, len(mails))
    await asyncio.gather(*(_one_loop_lane(settings, mails[lane::lanes])
                           for lane in range(lanes)))


def per_batch_loops(settings: SmtpSettings, mails) -> None:
    """What buzon did before: asyncio.run, new connections, for every batch."""
    for start in range(0, len(mails), SEND_BATCH):
        asyncio.run(_one_loop_batch(settings, mails[start:start + SEND_BATCH]))


def pooled(settings: SmtpSettings, mails, pipelining: bool = True) -> None:
    pool = smtp.SmtpPool(settings, None)
    pool.pipelining = pipelining
    try:
        for start in range(0, len(mails), SEND_BATCH):
            results = pool.send(mails[start:start + SEND_BATCH])
            assert all(r is not None and r.ok for r in results), results
    finally:
        pool.close()


def offers_pipelining(settings: SmtpSettings) -> bool:
    async def ask() -> bool:
        client = await smtp._open(settings, None)
        try:
            return client.supports_extension("pipelining")
        finally:
            await smtp._quit(client)
    return asyncio.run(ask())


def latency_proxy(target: str, delay_ms: float) -> tuple[subprocess.Popen, int]:
    port = free_port()
    child = subprocess.Popen([sys.executable, str(Path(__file__).with_name("latency_proxy.py")),
                              str(port), target, str(delay_ms)], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "ready"
    return child, port


def local_sink() -> tuple[subprocess.Popen, int]:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nsys.path.insert(0, sys.argv[2])\n"
         "from daemon.mail.sandbox import SmtpSink\n"
         "SmtpSink(port=int(sys.argv[1])).start()\nprint('ready', flush=True)\n"
         "time.sleep(10**6)", str(port), str(Path(__file__).resolve().parent.parent)],
        stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--relay", help="HOST:PORT of a relay on loopback (default: a "
                                        "local aiosmtpd sink)")
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="reach the relay through a proxy adding this delay each way")
    args = parser.parse_args()
    child = proxy = None
    if args.relay:
        host, _, port = args.relay.rpartition(":")
        where = f"relay {args.relay}"
    else:
        child, port = local_sink()
        host, where = "127.0.0.1", "local aiosmtpd sink"
    if args.latency_ms:
        proxy, port = latency_proxy(f"{host}:{port}", args.latency_ms)
        host, where = "127.0.0.1", f"{where} {args.latency_ms:g} ms away each way"
    settings = SmtpSettings(host=host, port=int(port), security="none",
                            connections=args.connections)
    mails = [acknowledgement(number) for number in range(args.mails)]
    try:
        rates: dict[str, float] = {}
        paths = (("one event loop and new connections per batch", per_batch_loops),
                 ("persistent pool, one command at a time",
                  lambda s, m: pooled(s, m, pipelining=False)),
                 ("persistent pool, pipelined where offered", pooled))
        for _round in range(args.rounds):  # interleaved, the best of each kept
            for name, send in paths:
                began = time.perf_counter()
                send(settings, mails)
                rates[name] = max(rates.get(name, 0.0),
                                  args.mails / (time.perf_counter() - began))
        for name, rate in rates.items():
            print(f"{where}, {args.connections} connections, {args.mails} mails in batches of "
                  f"{SEND_BATCH}: {name}: {rate:.0f} acknowledgements/s")
        old, one_by_one, pipelined = rates.values()
        print(f"the relay offers PIPELINING: {'yes' if offers_pipelining(settings) else 'no'}; "
              f"pool / per-batch: {one_by_one / old:.2f}x; "
              f"pipelined / one at a time: {pipelined / one_by_one:.2f}x")
    finally:
        for process in (child, proxy):
            if process is not None:
                process.terminate()
                process.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
