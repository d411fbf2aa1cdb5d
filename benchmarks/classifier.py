"""Classifier figures: training time, prediction time per mail, held-out scores.

    python benchmarks/classifier.py

Trains from the shipped examples into a temporary folder (the full `buzon train`: three
candidates compared by grouped cross-validation, thresholds chosen, held-out scored,
final fit), then times predictions on the held-out mails one by one (a lone mail
arriving through IDLE) and as one batch (a backlog, as the daemon does it). For
comparison, the model buzon shipped before it knew off-topic mail (three classes, trained
on data/corpus alone) is scored on the same held-out in-scope mails.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classifiers.corpus import held_out_split, load_corpus, shipped_examples  # noqa: E402
from classifiers.learning import retrain  # noqa: E402
from classifiers.model import evaluate, train  # noqa: E402
from classifiers.outcomes import OUT_OF_SCOPE  # noqa: E402
from classifiers.runtime import ModelClassifier  # noqa: E402


def main() -> int:
    directory = Path(tempfile.mkdtemp(prefix="buzon-model-"))
    examples = shipped_examples()
    started = time.perf_counter()
    retrain(directory, examples, force=True)
    training = time.perf_counter() - started
    model = ModelClassifier(directory)
    _train, held = held_out_split(examples)
    texts = [examples[i].text for i in held]
    model.predict_texts(texts[:5])  # warm up
    started = time.perf_counter()
    for text in texts:
        model.predict_text(text)
    one_by_one = (time.perf_counter() - started) / len(texts) * 1000
    started = time.perf_counter()
    model.predict_texts(texts)
    batched = (time.perf_counter() - started) / len(texts) * 1000
    meta = json.loads((directory / "model.json").read_text())
    held_out = meta["held_out"]
    print(f"examples: {len(examples)} mails; held out (never trained on): {len(held)}, "
          f"{held_out['off_topic_examples']} of them off-topic")
    print(f"training (compare 3 models by CV, choose thresholds, fit, score): {training:.1f} s")
    print("cross-validated macro-F1: " + ", ".join(
        f"{name} {score:.3f}" for name, score in meta["comparison_macro_f1"].items()))
    print(f"chosen: {meta['chosen']}, threshold {meta['threshold']:.2f}, "
          f"off-topic threshold {meta['off_topic_threshold']:.2f}")
    print(f"held-out 4-outcome macro-F1 (abstentions as errors): "
          f"{held_out['macro_f1_abstentions_as_errors']:.3f}, "
          f"abstention {held_out['abstention_rate']:.1%}")
    print(f"held-out off-topic recall: {held_out['off_topic_recall']:.3f}; in-scope accuracy: "
          f"{held_out['in_scope_accuracy']:.3f}; in-scope mail taken for spam: "
          f"{held_out['in_scope_as_spam']}")
    in_scope = [examples[i] for i in held if examples[i].label not in OUT_OF_SCOPE]
    before, report = train(load_corpus())
    scores = evaluate(before, report.threshold, in_scope)
    print(f"the 3-class model trained on data/corpus alone, on the same {len(in_scope)} "
          f"held-out in-scope mails: in-scope accuracy {scores['in_scope_accuracy']:.3f}")
    print(f"prediction: {one_by_one:.2f} ms per mail one by one, "
          f"{batched:.3f} ms per mail in a batch of {len(texts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
