"""From the model's class probabilities to what happens to a mail (pure, numpy only:
the daemon uses it without scikit-learn).

The model has five classes: the three categories, Otros (mail for someone else) and
Spam (advertising and phishing). A mail is out of scope when the two out-of-scope
classes together hold at least `off_topic_threshold` of the probability: off-topic
mail is seldom like one category, but its probability is spread thin over the three,
so their sum says more than the largest one. Otherwise the likeliest category, with
its own probability (which the abstention threshold is compared with).
"""

from __future__ import annotations

import numpy as np

OFF_TOPIC = "Otros"
SPAM = "Spam"
OUT_OF_SCOPE = (OFF_TOPIC, SPAM)
ABSTAIN = "__abstain__"


def outcome(label: str) -> str:
    """The four outcomes the mailbox sees: a category, or off-topic (Otros) for both
    out-of-scope classes."""
    return OFF_TOPIC if label in OUT_OF_SCOPE else label


def judge(classes, probabilities: np.ndarray,
          off_topic_threshold: float) -> list[tuple[str, float]]:
    """Per row: (Otros or Spam, the two's summed probability) for an out-of-scope mail,
    else (the likeliest category, its probability)."""
    classes = [str(c) for c in classes]
    outside = [i for i, c in enumerate(classes) if c in OUT_OF_SCOPE]
    inside = [i for i, c in enumerate(classes) if c not in OUT_OF_SCOPE]
    results = []
    for row in probabilities:
        mass = float(row[outside].sum()) if outside else 0.0
        if outside and mass >= off_topic_threshold:
            likeliest = max(outside, key=lambda i: row[i])
            results.append((classes[likeliest], mass))
        else:
            best = max(inside, key=lambda i: row[i])
            results.append((classes[best], float(row[best])))
    return results


def with_abstention(judged: list[tuple[str, float]], threshold: float) -> list[str]:
    """The labels, a category below `threshold` left to the coordinator (ABSTAIN)."""
    return [label if label in OUT_OF_SCOPE or confidence >= threshold else ABSTAIN
            for label, confidence in judged]
