"""The scikit-learn model: candidate pipelines, selection by cross-validation, the
abstention threshold, and persistence in skops format with the versions recorded."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sklearn
import skops.io
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.svm import LinearSVC

from classifiers.compact import COMPACT_FILE, export, refusal, save_compact
from classifiers.corpus import Example, held_out_split, merged_groups
from classifiers.outcomes import (
    ABSTAIN,
    OFF_TOPIC,
    OUT_OF_SCOPE,
    SPAM,
    judge,
    outcome,
    with_abstention,
)

__all__ = ["ABSTAIN", "ModelRefused", "evaluate", "load", "save", "train"]

log = logging.getLogger("classifiers.model")

MAX_ABSTENTION = 0.10


def _hashed_tfidf(**options) -> Pipeline:
    # Hashing keeps no vocabulary, so the saved model stays small and loads fast.
    return make_pipeline(
        HashingVectorizer(strip_accents="unicode", lowercase=True, alternate_sign=False,
                          norm=None, **options),
        TfidfTransformer(sublinear_tf=True),
    )


def features() -> FeatureUnion:
    """Word and character n-grams, accents folded (citizens type 'inscripcion' too)."""
    return FeatureUnion([
        ("words", _hashed_tfidf(ngram_range=(1, 2), n_features=2**17)),
        ("chars", _hashed_tfidf(analyzer="char_wb", ngram_range=(3, 5), n_features=2**18)),
    ])


def _calibrated(model) -> CalibratedClassifierCV:
    # One model fitted on all the data, calibrated on out-of-fold scores (ensemble=False).
    return CalibratedClassifierCV(model, cv=5, method="sigmoid", ensemble=False)


def candidates() -> dict[str, Pipeline]:
    """The models compared; each ends calibrated so its probabilities mean something."""
    return {
        "linear_svc": Pipeline([("features", features()),
                                ("model", _calibrated(LinearSVC(C=0.5)))]),
        "logistic_regression": Pipeline([("features", features()), ("model", _calibrated(
            LogisticRegression(C=10, solver="newton-cg", tol=1e-3)))]),
        "complement_nb": Pipeline([("features", features()),
                                   ("model", _calibrated(ComplementNB(alpha=0.3)))]),
    }


def macro_f1_with_abstentions(truth: list[str], predicted: list[str]) -> float:
    """Macro-F1 over the outcomes (the categories, and off-topic for both out-of-scope
    classes), an abstention counting as a wrong answer."""
    truth, predicted = [outcome(t) for t in truth], [outcome(p) for p in predicted]
    labels = sorted(set(truth))
    return float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0))


def apply_thresholds(classes, probabilities: np.ndarray, threshold: float,
                     off_topic_threshold: float) -> list[str]:
    return with_abstention(judge(classes, probabilities, off_topic_threshold), threshold)


OFF_TOPIC_THRESHOLDS = np.round(np.arange(0.20, 0.81, 0.05), 2)


def choose_thresholds(classes, probabilities: np.ndarray, truth: list[str],
                      max_abstention: float = MAX_ABSTENTION * 0.7) -> tuple[float, float]:
    """(abstention threshold, off-topic threshold): the pair that scores best while
    abstaining on at most `max_abstention` (a margin under the 10% allowed, since new
    mail is less tidy than the corpus). A model without out-of-scope classes gets an
    off-topic threshold of 1.0, which nothing reaches."""
    has_off_topic = any(str(c) in OUT_OF_SCOPE for c in classes)
    best, best_score = (0.0, 1.0), -1.0
    for off_topic_threshold in (OFF_TOPIC_THRESHOLDS if has_off_topic else [1.0]):
        judged = judge(classes, probabilities, float(off_topic_threshold))
        for threshold in np.round(np.arange(0.34, 0.96, 0.01), 2):
            predicted = with_abstention(judged, threshold)
            abstained = predicted.count(ABSTAIN) / len(predicted)
            if abstained > max_abstention:
                break
            score = macro_f1_with_abstentions(truth, predicted)
            if score >= best_score:
                best, best_score = (float(threshold), float(off_topic_threshold)), score
    return best


@dataclass
class TrainingReport:
    chosen: str
    comparison: dict[str, float]
    threshold: float
    off_topic_threshold: float = 1.0
    held_out: dict = field(default_factory=dict)
    seconds: float = 0.0


def compare(examples: list[Example],
            train_index: np.ndarray) -> dict[str, tuple[float, np.ndarray]]:
    """Grouped cross-validation on the training part: macro-F1, out-of-fold probabilities."""
    texts = [examples[i].text for i in train_index]
    labels = [examples[i].label for i in train_index]
    groups = merged_groups([examples[i] for i in train_index])
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=7)
    results = {}
    for name, pipeline in candidates().items():
        probabilities = cross_val_predict(pipeline, texts, labels, groups=groups, cv=folds,
                                          method="predict_proba", n_jobs=1)
        classes = sorted(set(labels))
        predicted = [classes[i] for i in probabilities.argmax(axis=1)]
        results[name] = (macro_f1_with_abstentions(labels, predicted), probabilities)
    return results


def evaluate(pipeline: Pipeline, threshold: float, examples: list[Example],
             off_topic_threshold: float = 1.0) -> dict:
    """Held-out figures over the four outcomes (SEACE, RNP, Legal, off-topic), an
    abstention counting as an error: macro-F1, off-topic recall, in-scope accuracy."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    texts = [e.text for e in examples]
    labels = [e.label for e in examples]
    classes = [str(c) for c in pipeline.classes_]
    predicted = apply_thresholds(classes, pipeline.predict_proba(texts), threshold,
                                 off_topic_threshold)
    truth, said = [outcome(t) for t in labels], [outcome(p) for p in predicted]
    outcomes = list(dict.fromkeys(outcome(c) for c in classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, said, labels=outcomes, zero_division=0)
    pairs = list(zip(truth, said, strict=True))
    off_topic = [s for t, s in pairs if t == OFF_TOPIC]
    in_scope = [(t, s) for t, s in pairs if t != OFF_TOPIC]
    return {
        "examples": len(examples),
        "macro_f1_abstentions_as_errors": macro_f1_with_abstentions(labels, predicted),
        "abstention_rate": said.count(ABSTAIN) / len(said),
        "accuracy_when_answering": float(np.mean(
            [s == t for t, s in pairs if s != ABSTAIN] or [0.0])),
        "off_topic_examples": len(off_topic),
        "off_topic_recall": (off_topic.count(OFF_TOPIC) / len(off_topic)) if off_topic
        else None,
        "in_scope_accuracy": float(np.mean([t == s for t, s in in_scope] or [0.0])),
        # In-scope mail taken for spam gets no acknowledgement: the costliest error.
        "in_scope_as_spam": sum(1 for label, p in zip(labels, predicted, strict=True)
                                if label not in OUT_OF_SCOPE and p == SPAM),
        "per_class": {c: {"precision": float(p), "recall": float(r), "f1": float(f),
                          "support": int(n)}
                      for c, p, r, f, n in zip(outcomes, precision, recall, f1, support,
                                               strict=True)},
        "labels": outcomes + [ABSTAIN],
        "confusion": confusion_matrix(truth, said, labels=outcomes + [ABSTAIN]).tolist(),
    }


def train(examples: list[Example]) -> tuple[Pipeline, TrainingReport]:
    """Compare the candidates, keep the best, fit it on the training part and score it
    on the held-out part. The held-out mails are never trained on, not even by the
    model put to use, so `buzon evaluate` and promotions compare honest figures."""
    started = time.perf_counter()
    train_index, held_out_index = held_out_split(examples)
    results = compare(examples, train_index)
    chosen = max(results, key=lambda name: results[name][0])
    labels = [examples[i].label for i in train_index]
    classes = sorted(set(labels))
    threshold, off_topic_threshold = choose_thresholds(classes, results[chosen][1], labels)
    pipeline = candidates()[chosen]
    pipeline.fit([examples[i].text for i in train_index], labels)
    held_out = evaluate(pipeline, threshold, [examples[i] for i in held_out_index],
                        off_topic_threshold)
    report = TrainingReport(chosen, {n: r[0] for n, r in results.items()}, threshold,
                            off_topic_threshold, held_out, time.perf_counter() - started)
    return pipeline, report


# Persistence -------------------------------------------------------------------------

class ModelRefused(Exception):
    """A saved model that must not be loaded (other scikit-learn version, unknown types)."""


def _trusted_prefixes() -> tuple[str, ...]:
    return ("sklearn.", "numpy.", "scipy.sparse.", "builtins.", "collections.")


def save(pipeline: Pipeline, report: TrainingReport, directory: Path) -> Path:
    """Write model.skops and model.json atomically, both readable by buzon's user only."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "skops_version": skops.__version__,
        "classes": list(pipeline.classes_),
        "chosen": report.chosen,
        "comparison_macro_f1": report.comparison,
        "threshold": report.threshold,
        "off_topic_threshold": report.off_topic_threshold,
        "held_out": report.held_out,
        "training_seconds": report.seconds,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write_private(directory / "model.skops", lambda path: skops.io.dump(pipeline, path))
    compact = export(pipeline)  # the same model as arrays, for a daemon without sklearn
    if compact is not None:
        save_compact(compact, directory)
    elif (directory / COMPACT_FILE).exists():
        (directory / COMPACT_FILE).unlink()  # an older model's arrays must not be used
    # model.json last: its change is what tells a running daemon to reload.
    _write_private(directory / "model.json",
                   lambda path: path.write_text(json.dumps(meta, indent=2)))
    return directory / "model.skops"


def _write_private(path: Path, write) -> None:
    temporary = path.parent / f".{path.name}.tmp"
    write(temporary)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def load(directory: Path) -> tuple[Pipeline, dict]:
    meta_path, model_path = directory / "model.json", directory / "model.skops"
    if not meta_path.exists() or not model_path.exists():
        raise FileNotFoundError(f"no model in {directory}")
    meta = json.loads(meta_path.read_text())
    refused = refusal(meta, directory)
    if refused:
        raise ModelRefused(refused)
    untrusted = skops.io.get_untrusted_types(file=model_path)
    unexpected = [t for t in untrusted if not t.startswith(_trusted_prefixes())]
    if unexpected:
        raise ModelRefused(f"the model in {directory} holds unexpected types: {unexpected}")
    pipeline = skops.io.load(model_path, trusted=untrusted)
    return pipeline, meta
