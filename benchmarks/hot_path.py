"""The Python CPU per mail of the intake hot path, stage by stage: parsing the raw mail,
the classifier's features (hashed n-grams and tf-idf rows of both branches) and
rendering the acknowledgement and the ticket card.

    python benchmarks/hot_path.py [--repeat 3]

Mails: the corpus's subjects and bodies made into mails as benchmarks/backlog.py makes
them, and separately the hostile mails the bad-input tests use. Each figure is the best
of `--repeat` passes (the first pass is printed too: it warms what is cached across
mails). Not a test: run it by hand.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from backlog import sample_mails  # noqa: E402
from edge_cases import cpython_corpus, generated, mailparser_corpus  # noqa: E402

from classifiers.compact import Branch, _tfidf_row, gram_hashes  # noqa: E402
from daemon.config import DEFAULT_TEMPLATES_DIR  # noqa: E402
from daemon.mail.compose import build_environment, render_mail  # noqa: E402
from daemon.mail.parsing import parse_message  # noqa: E402

# The shipped model's branches (classifiers.model); idf values do not change the work.
BRANCHES = [Branch("word", (1, 2), 2**17, np.ones(2**17), 0),
            Branch("char_wb", (3, 5), 2**18, np.ones(2**18), 2**17)]
NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
CORPUS_MAILS = 1109  # one mail per corpus row


def passes(work: Callable[[], int], repeat: int) -> tuple[float, float]:
    """(first pass, best pass) in ms per item; `work` returns how many items it did."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        count = work()
        times.append((time.perf_counter() - started) * 1000 / max(count, 1))
    return times[0], min(times)


def parse_all(mails: list[bytes]) -> Callable[[], int]:
    def work() -> int:
        for raw in mails:
            parse_message(raw)
        return len(mails)
    return work


def features_all(texts: list[str]) -> Callable[[], int]:
    def work() -> int:
        gram_hashes.cache_clear()  # as intake does after each batch: every text is new
        for text in texts:
            for branch in BRANCHES:
                _tfidf_row(branch, text)
        return len(texts)
    return work


def render_all(inbounds: list) -> Callable[[], int]:
    env = build_environment(DEFAULT_TEMPLATES_DIR)

    def work() -> int:
        for number, inbound in enumerate(inbounds):
            ticket_id = f"C-2026-{number:06d}"
            render_mail(env, "acuse_consulta", {
                "ticket_id": ticket_id, "asunto": inbound.subject[:120],
                "nombre": inbound.from_name[:60], "recibido": NOW,
                "recepcion_oficial": NOW, "plazo": NOW, "fuera_de_horario": False,
                "hora_corte": "16:30"},
                sender=("OECE - Atención al usuario", "consultas@osce.test"),
                recipient=inbound.from_address, message_id=f"<ack.{ticket_id}@b.test>",
                now=NOW, in_reply_to=inbound.message_id, references=inbound.references)
            render_mail(env, "ficha", {
                "ticket": {"id": ticket_id, "kind": "consulta", "subject": inbound.subject,
                           "citizen_address": inbound.from_address},
                "recibido": NOW, "recepcion_oficial": NOW, "plazo": NOW, "carpeta": "RNP"},
                sender=("OECE - Atención al usuario", "consultas@osce.test"),
                recipient="consultas@osce.test", message_id=f"<ficha.{ticket_id}@b.test>",
                now=NOW, in_reply_to=inbound.message_id, references=inbound.references)
        return len(inbounds)
    return work


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    corpus = sample_mails(CORPUS_MAILS)
    hostile = [raw for _name, raw in cpython_corpus() + mailparser_corpus() + list(generated())]
    inbounds = [parse_message(raw) for raw in corpus]
    texts = [inbound.question for inbound in inbounds]
    rows = [
        (f"parse, {len(corpus)} corpus mails", parse_all(corpus)),
        (f"parse, {len(hostile)} hostile mails", parse_all(hostile)),
        ("classifier features, both branches", features_all(texts)),
        ("render acknowledgement + card", render_all(inbounds)),
    ]
    print(f"{'ms per mail':<40} {'first':>8} {'best':>8}")
    for label, work in rows:
        first, best = passes(work, args.repeat)
        print(f"{label:<40} {first:8.3f} {best:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
