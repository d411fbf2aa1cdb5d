"""`buzon classify`, `buzon train` and `buzon evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

from classifiers.corpus import held_out_split
from classifiers.learning import all_examples, retrain
from classifiers.model import ABSTAIN, ModelRefused, evaluate, load
from daemon.decide.pipeline import Arrival, Decision, classify
from daemon.flows.harvest import mailbox_examples
from daemon.mail.parsing import parse_message
from daemon.runtime import Runtime
from daemon.service.parts import load_classifier


def dispatch(args, settings, engine, secrets: dict[str, str]) -> int:
    rt = Runtime.build(settings, secrets, engine)
    if args.command == "classify":
        return _classify(rt, args.files, args.json)
    if args.command == "train":
        return _train(rt, args.from_mailbox)
    return _evaluate(rt, args.plot)


def _classify(rt: Runtime, files: list[Path], as_json: bool) -> int:
    load_classifier(rt, train_if_missing=True)
    context = rt.pipeline_context(lookups=None)
    first_consulta = next((name for name in rt.settings.mailboxes
                           if rt.settings.mailbox_kind(name) == "consulta"), "consultas")
    status = 0
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            print(f"buzon: {path}: {exc.strerror}", flush=True)
            status = 1
            continue
        inbound = parse_message(raw)
        arrival = Arrival(mailbox=first_consulta, kind="consulta", internaldate=None,
                          sha256="")
        decision = classify(inbound, arrival, Decision(), context)
        row = {"file": str(path), "folder": decision.folder,
               "confidence": round(decision.confidence or 0.0, 4),
               "source": decision.classification_source}
        if as_json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(f"{path}: {row['folder']} ({row['source']}, {row['confidence']:.2f})")
    return status


def _train(rt: Runtime, mailbox: str | None) -> int:
    if mailbox:
        from daemon.flows.harvest import harvest
        from daemon.service.run import open_mailbox

        if mailbox not in rt.settings.mailboxes:
            print(f"buzon: no mailbox named {mailbox!r} in the config")
            return 2
        client = open_mailbox(rt, mailbox)
        try:
            added = harvest(rt, mailbox, client)
        finally:
            client.close()
        print(f"harvested {added} new labelled mails from {mailbox}")
    examples = all_examples(mailbox_examples(rt.engine), rt.settings.folders.categories)
    entry = retrain(rt.settings.classifier.model_dir, examples)
    print(json.dumps(entry, indent=2))
    return 0


def _evaluate(rt: Runtime, plot: Path | None) -> int:
    directory = rt.settings.classifier.model_dir
    try:
        pipeline, meta = load(directory)
    except (FileNotFoundError, ModelRefused) as exc:
        print(f"buzon: {exc}")
        return 1
    examples = all_examples(mailbox_examples(rt.engine), rt.settings.folders.categories)
    _train_index, held_index = held_out_split(examples)
    held = [examples[i] for i in held_index]
    settings = rt.settings.classifier
    threshold = settings.confidence_threshold or float(meta["threshold"])
    off_topic_threshold = settings.off_topic_threshold or float(
        meta.get("off_topic_threshold", 1.0))
    scores = evaluate(pipeline, threshold, held, off_topic_threshold)
    print(f"model: {meta['chosen']} trained {meta['trained_at']} "
          f"(scikit-learn {meta['sklearn_version']}), threshold {threshold:.2f}, "
          f"off-topic threshold {off_topic_threshold:.2f}")
    print(f"held-out examples (never trained on): {scores['examples']} "
          f"({scores['off_topic_examples']} off-topic)")
    outcomes = ", ".join(label for label in scores["labels"] if label != ABSTAIN)
    print(f"macro-F1 over the {len(scores['labels']) - 1} outcomes ({outcomes}), "
          f"abstentions counted as errors: {scores['macro_f1_abstentions_as_errors']:.3f}")
    if scores["off_topic_recall"] is not None:
        print(f"off-topic recall: {scores['off_topic_recall']:.3f}")
    print(f"in-scope accuracy (abstentions counted as errors): "
          f"{scores['in_scope_accuracy']:.3f}")
    print(f"in-scope mail taken for spam (never acknowledged): {scores['in_scope_as_spam']}")
    print(f"abstention rate: {scores['abstention_rate']:.1%}")
    print(f"{'outcome':<8} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>8}")
    for label, row in scores["per_class"].items():
        print(f"{label:<8} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['f1']:>6.3f} "
              f"{row['support']:>8}")
    labels = [label if label != ABSTAIN else "abstain" for label in scores["labels"]]
    print("confusion (rows: truth, columns: predicted):")
    print("         " + " ".join(f"{label:>8}" for label in labels))
    for label, row in zip(labels[:-1], scores["confusion"], strict=False):
        print(f"{label:<8} " + " ".join(f"{count:>8}" for count in row))
    if plot:
        from classifiers.plots import draw_evaluation

        draw_evaluation(pipeline, held, scores, off_topic_threshold, plot)
        print(f"plot written to {plot}")
    return 0
