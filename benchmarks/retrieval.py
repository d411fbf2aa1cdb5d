"""Suggested answers on a held-out set: data/retrieval_eval.jsonl holds citizens'
questions, written apart from the knowledge files, each with the standard answer that
answers it. The index holds only templates/respuestas/*.md: it never saw these questions.
As in the daemon, a consulta filed in a category never gets an orientation answer (one
that sends the citizen to another agency), and off-topic mail gets nothing else.

    python benchmarks/retrieval.py
    python benchmarks/retrieval.py --questions data/retrieval_dev.jsonl --thresholds
    python benchmarks/retrieval.py --orientation

--orientation asks instead with the held-out off-topic mails (data/offtopic/, the
classifier's held-out split) of the kinds an orientation answer is for: RENIEC, SUNAT,
ONP, unpaid invoices, complaints, transparency requests, job applications.

Prints top-1 and top-3 accuracy, how often a draft would be written at the configured
similarity (answers.min_similarity) and how often that draft is the right answer, and
the time per mail of finding the sources and writing the draft. --thresholds adds both
rates at other similarities. data/retrieval_dev.jsonl is the set to tune on (the fusion
weights and answers.min_similarity were chosen there); the held-out set is for checking.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classifiers.retrieval import Index, load_standard_answers  # noqa: E402
from classifiers.text import judged_text  # noqa: E402
from daemon.config import AnswerSettings, FolderSettings  # noqa: E402
from daemon.flows.knowledge import SEARCHED, fitting  # noqa: E402
from daemon.mail.parsing import Inbound  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# The off-topic kinds (data/offtopic/NOTES.md) and the orientation answer each is for.
ORIENTATION = {
    "reniec": "otros-reniec-dni", "sunat": "otros-sunat-clave-sol-ruc-comprobantes",
    "onp": "otros-onp-pensiones", "pago_entidad": "otros-pago-proveedores-entidad",
    "reclamo_personal": "otros-libro-reclamaciones",
    "transparencia": "otros-transparencia-acceso-informacion",
    "cv": "otros-convocatorias-cas-practicas", "practicas": "otros-convocatorias-cas-practicas",
}


def orientation_questions() -> list[dict]:
    """The held-out off-topic mails of the kinds above, as {question, answer}."""
    from classifiers.corpus import held_out_split, shipped_examples

    rows = [json.loads(line) for path in sorted((ROOT / "data" / "offtopic").glob("otros*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    examples = shipped_examples()
    _train, held = held_out_split(examples)
    held_groups = {examples[i].group for i in held}
    return [{"question": f"{row['subject']}\n{row['body']}", "answer": ORIENTATION[row["kind"]]}
            for row in rows if row["kind"] in ORIENTATION and row["group"] in held_groups]


def main(argv: list[str] | None = None) -> int:
    from daemon.config import DEFAULT_TEMPLATES_DIR
    from daemon.flows.knowledge import draft_for
    from daemon.mail.compose import build_environment

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=ROOT / "data" / "retrieval_eval.jsonl",
                        help="JSON lines of {question, answer} (default: the held-out set)")
    parser.add_argument("--orientation", action="store_true",
                        help="held-out off-topic mail, filed as off-topic, instead")
    parser.add_argument("--thresholds", action="store_true",
                        help="also the draft rate and the right drafts at other similarities")
    args = parser.parse_args(argv)
    threshold = AnswerSettings().min_similarity
    folders = FolderSettings()
    if args.orientation:
        rows, folder, name = orientation_questions(), folders.off_topic, "held-out off-topic"
    else:
        rows = [json.loads(line) for line in args.questions
                .read_text(encoding="utf-8").splitlines() if line.strip()]
        folder, name = folders.categories[0], args.questions.name
    started = time.perf_counter()
    index = Index.build(load_standard_answers(ROOT / "templates" / "respuestas"))
    built = time.perf_counter() - started

    class Settings:  # just what draft_for reads
        answers = AnswerSettings()
        mailboxes = {"consultas": type("Box", (), {"display_name": "OECE",
                                                   "address": "consultas@osce.test"})}

        @staticmethod
        def own_message_id_domain():
            return "buzon.osce.test"

    rt = type("Rt", (), {"settings": Settings, "templates": build_environment(
        DEFAULT_TEMPLATES_DIR)})
    top1 = top3 = drafted = drafted_right = 0
    timings, best = [], []
    # The daemon compiles the draft's template once, at its first draft: so does this.
    draft_for(rt, {"id": "C-2026-000000", "mailbox": "consultas", "citizen_name": "Ciudadano",
                   "citizen_address": "c@correo.test", "subject": "Consulta", "category": ""},
              Inbound(subject="", text="", from_name="", from_address="c@correo.test",
                      message_id="<warm@c.test>"),
              [(index.sources[0], 1.0)], datetime.now(UTC))
    for number, row in enumerate(rows):
        inbound = Inbound(subject="", text=row["question"], from_name="Ciudadano",
                          from_address="c@correo.test", message_id=f"<q{number}@c.test>")
        ticket = {"id": f"C-2026-{number:06d}", "mailbox": "consultas",
                  "citizen_name": "Ciudadano", "citizen_address": "c@correo.test",
                  "subject": "Consulta", "category": ""}
        began = time.perf_counter()
        found = fitting(index.search(judged_text("", row["question"]), SEARCHED), folder,
                        folders)
        draft = draft_for(rt, ticket, inbound, found, datetime.now(UTC))
        timings.append(time.perf_counter() - began)
        keys = [source.key for source, _ in found]
        best.append((found[0][1] if found else 0.0, keys[:1] == [row["answer"]]))
        top1 += keys[:1] == [row["answer"]]
        top3 += row["answer"] in keys
        if draft is not None:
            drafted += 1
            drafted_right += keys[0] == row["answer"]
    count = len(rows)
    timings.sort()
    print(f"questions: {count} ({name}, filed in {folder}), standard answers indexed: "
          f"{len(index.sources)} "
          f"(index built in {built * 1000:.0f} ms)")
    print(f"top-1 accuracy: {top1 / count:.1%}   top-3 accuracy: {top3 / count:.1%}")
    print(f"drafts at min_similarity {threshold}: {drafted / count:.1%} of consultas; "
          f"the draft's source is the right one in {drafted_right / max(drafted, 1):.1%}")
    print(f"per mail (sources + draft): median {statistics.median(timings) * 1000:.2f} ms, "
          f"95th percentile {timings[int(0.95 * (count - 1))] * 1000:.2f} ms, "
          f"max {timings[-1] * 1000:.2f} ms")
    if args.thresholds:
        print("min_similarity  drafts  right drafts")
        for step in range(4, 17):
            cut = step * 0.025
            kept = [right for score, right in best if score >= cut]
            print(f"{cut:14.3f}  {len(kept) / count:6.1%}  {sum(kept) / max(len(kept), 1):12.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
