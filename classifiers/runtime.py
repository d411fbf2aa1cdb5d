"""The model as the daemon uses it: loaded once, asked per mail, reloaded on promotion."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from classifiers.compact import load_compact, refusal
from classifiers.outcomes import judge

log = logging.getLogger("classifiers.runtime")


class ModelClassifier:
    """Predicts a category folder with a confidence; picks up a newly promoted model."""

    def __init__(self, directory: Path, off_topic_threshold: float | None = None):
        self.directory = directory
        self._off_topic_override = off_topic_threshold
        self._lock = threading.Lock()
        self._stamp: float | None = None
        self.pipeline = None
        self.meta: dict = {}
        self.reload_if_changed()

    def _current_stamp(self) -> float | None:
        meta = self.directory / "model.json"
        return meta.stat().st_mtime if meta.exists() else None

    def reload_if_changed(self) -> bool:
        """Load the model if model.json changed since the last look; True when it did.
        Its arrays (classifiers.compact) when they are there: no scikit-learn in the
        daemon. Otherwise the scikit-learn pipeline, imported on first use. A model built
        by another scikit-learn or numpy is refused from model.json alone (without
        importing scikit-learn) and looked at again only once model.json changes."""
        stamp = self._current_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        compact = load_compact(self.directory)
        if compact is not None:
            pipeline, meta = compact, json.loads((self.directory / "model.json").read_text())
        else:
            pipeline, meta, refused = self._load_pipeline()
            if refused:
                log.error("model not loaded: %s", refused)
                self._stamp = stamp  # told once per model.json, not at every batch
                return False
        with self._lock:
            self.pipeline, self.meta, self._stamp = pipeline, meta, stamp
        log.info("model loaded from %s (%s%s, trained %s, held-out macro-F1 %.3f)",
                 self.directory, meta.get("chosen"), ", as arrays" if compact else "",
                 meta.get("trained_at"),
                 meta.get("held_out", {}).get("macro_f1_abstentions_as_errors", 0.0))
        return True

    def _load_pipeline(self) -> tuple[object, dict, str | None]:
        """The scikit-learn pipeline (for a model without arrays), or why not."""
        try:
            meta = json.loads((self.directory / "model.json").read_text())
        except (ValueError, OSError) as exc:
            return None, {}, f"{self.directory / 'model.json'}: {exc}"
        refused = refusal(meta, self.directory)
        if refused:
            return None, meta, refused
        from classifiers.model import ModelRefused, load  # imports scikit-learn

        try:
            pipeline, meta = load(self.directory)
        except (ModelRefused, FileNotFoundError) as exc:
            return None, meta, str(exc)
        return pipeline, meta, None

    @property
    def ready(self) -> bool:
        return self.pipeline is not None

    @property
    def threshold(self) -> float:
        return float(self.meta.get("threshold", 0.5))

    @property
    def off_topic_threshold(self) -> float:
        """Out of scope when Otros and Spam together reach this (1.0 for a model
        trained before it had the two: nothing reaches it), unless configured."""
        if self._off_topic_override is not None:
            return self._off_topic_override
        return float(self.meta.get("off_topic_threshold", 1.0))

    def predict_texts(self, texts: list[str]) -> list[tuple[str, float]]:
        """(category, its probability), or (Otros or Spam, the two's summed probability)
        per text (classifiers.outcomes)."""
        with self._lock:
            pipeline = self.pipeline
        if not texts:
            return []
        if hasattr(pipeline, "branches"):  # the arrays
            probabilities, classes = pipeline.predict_proba(texts), pipeline.classes
        else:
            probabilities, classes = predict_proba(pipeline, texts), pipeline.classes_
        return judge(classes, probabilities, self.off_topic_threshold)

    def predict_text(self, text: str) -> tuple[str, float]:
        return self.predict_texts([text])[0]

    def predict(self, inbound) -> tuple[str, float]:
        return self.predict_text(inbound.question)


def predict_proba(pipeline, texts: list[str]):
    """pipeline.predict_proba(texts), without the per-call input checks.

    The checks cost more than the model for a single mail (about 1 ms of 2.5); the
    texts come from our own extraction, so they are known to be a list of str. Falls
    back to the pipeline for any other shape than features → one calibrated model.
    """
    import sklearn
    from scipy.sparse import hstack

    features, model = pipeline.named_steps.get("features"), pipeline.named_steps.get("model")
    calibrated = getattr(model, "calibrated_classifiers_", None)
    if features is None or calibrated is None or len(calibrated) != 1:
        return pipeline.predict_proba(texts)
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        parts = []
        for _name, branch in features.transformer_list:
            matrix = texts
            for _step, transformer in branch.steps:
                matrix = transformer.transform(matrix)
            parts.append(matrix)
        return calibrated[0].predict_proba(hstack(parts, format="csr"))


class BatchPredictions:
    """A batch's predictions, made in one call elsewhere (daemon.flows.judging: one call
    per batch, as scikit-learn's overhead is per call), looked up by inbound mail; a mail
    not in the batch is predicted on its own."""

    def __init__(self, model: ModelClassifier, found: list[tuple[object, tuple[str, float]]]):
        self._by_mail = {id(inbound): result for inbound, result in found}
        self._model = model

    def predict(self, inbound) -> tuple[str, float]:
        found = self._by_mail.get(id(inbound))
        return found if found is not None else self._model.predict(inbound)
