"""Classifier figures: training time, prediction time per mail, held-out scores.

    python benchmarks/classifier.py

Trains from the shipped corpus into a temporary folder (the full `buzon train`: three
candidates compared by grouped cross-validation, threshold chosen, held-out scored,
final fit), then times predictions on the held-out mails one by one (a lone mail
arriving through IDLE) and as one batch (a backlog, as the daemon does it).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classifiers.corpus import held_out_split, load_corpus  # noqa: E402
from classifiers.learning import retrain  # noqa: E402
from classifiers.runtime import ModelClassifier  # noqa: E402


def main() -> int:
    directory = Path(tempfile.mkdtemp(prefix="buzon-model-"))
    examples = load_corpus()
    started = time.perf_counter()
    entry = retrain(directory, examples, force=True)
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
    print(f"corpus: {len(examples)} mails; held out (never trained on): {len(held)}")
    print(f"training (compare 3 models by CV, choose threshold, fit, score): {training:.1f} s")
    print("cross-validated macro-F1: " + ", ".join(
        f"{name} {score:.3f}" for name, score in meta["comparison_macro_f1"].items()))
    print(f"chosen: {meta['chosen']}, threshold {meta['threshold']:.2f}")
    print(f"held-out macro-F1 (abstentions as errors): {entry['held_out_macro_f1_new']:.3f}, "
          f"abstention {entry['abstention_rate_new']:.1%}")
    print(f"prediction: {one_by_one:.2f} ms per mail one by one, "
          f"{batched:.3f} ms per mail in a batch of {len(texts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
