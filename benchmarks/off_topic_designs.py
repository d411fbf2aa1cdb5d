"""Off-topic mail: a learned class or a detector before the model? Both designs compared
by grouped cross-validation on the training part of the shipped examples (the held-out
part is not touched):

    python benchmarks/off_topic_designs.py

- "learned classes": one model with five classes (SEACE, RNP, Legal, Otros, Spam); a mail
  is off-topic when Otros and Spam together reach the off-topic threshold (what buzon
  does, classifiers/outcomes.py);
- "detector first": a binary in-scope/off-topic model, then the three-class model for
  the mail it lets through.

Both use the same features and calibrated LinearSVC (C=0.5). For each design the
thresholds are chosen on its own out-of-fold probabilities (the same for both designs,
so the comparison is fair, if a little optimistic for both). Prints the 4-outcome macro-F1
(abstentions as errors), the off-topic recall and the in-scope accuracy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classifiers.corpus import held_out_split, merged_groups, shipped_examples  # noqa: E402
from classifiers.model import candidates, choose_thresholds  # noqa: E402
from classifiers.outcomes import (  # noqa: E402
    OFF_TOPIC,
    OUT_OF_SCOPE,
    judge,
    outcome,
    with_abstention,
)


def figures(truth: list[str], predicted: list[str]) -> tuple[float, float, float]:
    from classifiers.model import macro_f1_with_abstentions

    pairs = [(outcome(t), outcome(p)) for t, p in zip(truth, predicted, strict=True)]
    off = [p for t, p in pairs if t == OFF_TOPIC]
    inside = [t == p for t, p in pairs if t != OFF_TOPIC]
    return (macro_f1_with_abstentions(truth, predicted), off.count(OFF_TOPIC) / len(off),
            float(np.mean(inside)))


def main() -> int:
    examples = shipped_examples()
    train_index, _held = held_out_split(examples)
    part = [examples[i] for i in train_index]
    texts = np.array([e.text for e in part], dtype=object)
    labels = np.array([e.label for e in part])
    off_topic = np.isin(labels, OUT_OF_SCOPE)
    groups = merged_groups(part)
    folds = list(StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=7).split(
        texts, labels, groups))
    five_classes = sorted(set(labels))
    five = np.zeros((len(part), len(five_classes)))
    # Detector first: P(off-topic) from a binary model, and the 3 categories' own model.
    detector = np.zeros(len(part))
    three_classes = sorted(set(labels[~off_topic]))
    three = np.zeros((len(part), len(three_classes)))
    for number, (fit, test) in enumerate(folds, 1):
        model = candidates()["linear_svc"].fit(list(texts[fit]), labels[fit])
        five[test] = model.predict_proba(list(texts[test]))
        binary = candidates()["linear_svc"].fit(
            list(texts[fit]), np.where(off_topic[fit], "fuera", "dentro"))
        detector[test] = binary.predict_proba(list(texts[test]))[:, 1]  # classes: dentro, fuera
        inside = fit[~off_topic[fit]]
        categories = candidates()["linear_svc"].fit(list(texts[inside]), labels[inside])
        three[test] = categories.predict_proba(list(texts[test]))
        print(f"fold {number}/5 done", flush=True)
    truth = list(labels)
    threshold, off_threshold = choose_thresholds(five_classes, five, truth)
    learned = with_abstention(judge(five_classes, five, off_threshold), threshold)
    # The detector as a two-class "Otros" column beside the three categories' probabilities
    # scaled by 1 - P(off-topic): the same decision rule then applies to both designs.
    stacked = np.column_stack([three * (1 - detector[:, None]), detector])
    stacked_classes = three_classes + [OFF_TOPIC]
    d_threshold, d_off_threshold = choose_thresholds(stacked_classes, stacked,
                                                     [outcome(t) for t in truth])
    first = with_abstention(judge(stacked_classes, stacked, d_off_threshold), d_threshold)
    print(f"training part: {len(part)} mails ({int(off_topic.sum())} off-topic), 5 grouped folds")
    print(f"{'design':<16} {'macro-F1 (4)':>12} {'off-topic recall':>17} {'in-scope acc':>13}"
          f"  thresholds")
    for name, predicted, chosen in (("learned classes", learned, (threshold, off_threshold)),
                                    ("detector first", first, (d_threshold, d_off_threshold))):
        f1, recall, accuracy = figures(truth, predicted)
        print(f"{name:<16} {f1:>12.3f} {recall:>17.3f} {accuracy:>13.3f}  "
              f"category {chosen[0]:.2f}, off-topic {chosen[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
