"""Learning from the assistants: examples from the mailbox, retraining, and promotion of
a new model only when it scores no lower on the fixed held-out split."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from classifiers.compact import export, save_compact, usable
from classifiers.corpus import Example, held_out_split, shipped_examples
from classifiers.model import ModelRefused, evaluate, load, save, train
from classifiers.outcomes import OUT_OF_SCOPE

log = logging.getLogger("classifiers.learning")


def all_examples(mailbox: list[Example], categories: list[str]) -> list[Example]:
    """The shipped examples, and the mailbox's own examples of the categories in use
    and of off-topic mail (an assistant's move to the off-topic folder)."""
    wanted = {*categories, *OUT_OF_SCOPE}
    return shipped_examples() + [e for e in mailbox if e.label in wanted]


def retrain(directory: Path, examples: list[Example], force: bool = False) -> dict:
    """Train a candidate; promote it over the current model unless it scores lower on
    the held-out split (the current model is scored on the very same examples)."""
    pipeline, report = train(examples)
    new_score = report.held_out["macro_f1_abstentions_as_errors"]
    current_score = None
    try:
        current, meta = load(directory)
        _train_index, held_index = held_out_split(examples)
        scores = evaluate(current, float(meta["threshold"]), [examples[i] for i in held_index],
                          float(meta.get("off_topic_threshold", 1.0)))
        current_score = scores["macro_f1_abstentions_as_errors"]
    except (FileNotFoundError, ModelRefused, KeyError) as exc:
        log.info("no usable current model (%s): the new one is promoted", exc)
    promoted = force or current_score is None or new_score >= current_score
    entry = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "promoted": promoted,
        "model": report.chosen, "examples": len(examples),
        "held_out_macro_f1_new": round(new_score, 4),
        "held_out_macro_f1_current": None if current_score is None else round(current_score, 4),
        "abstention_rate_new": round(report.held_out["abstention_rate"], 4),
        "off_topic_recall_new": _rounded(report.held_out["off_topic_recall"]),
        "in_scope_accuracy_new": round(report.held_out["in_scope_accuracy"], 4),
        "threshold": report.threshold, "off_topic_threshold": report.off_topic_threshold,
        "training_seconds": round(report.seconds, 1),
    }
    if promoted:
        save(pipeline, report, directory)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "promotions.jsonl", "a") as history:
        history.write(json.dumps(entry) + "\n")
    log.info("retraining: %s", json.dumps(entry))
    return entry


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def ensure_model(directory: Path, mailbox: Callable[[], list[Example]] | None,
                 categories: list[str]) -> None:
    """Train a first model when there is none, or when the saved one must be refused;
    `mailbox` gives the mailbox's own examples, read only when training is needed."""
    try:
        pipeline, _meta = load(directory)
        if not usable(directory) and (compact := export(pipeline)) is not None:
            save_compact(compact, directory)  # a model saved before buzon kept its arrays
        return
    except FileNotFoundError:
        log.warning("no model in %s: training one from the corpus", directory)
    except ModelRefused as exc:
        log.warning("%s; retraining now", exc)
    retrain(directory, all_examples(mailbox() if mailbox else [], categories), force=True)
