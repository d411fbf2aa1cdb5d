"""The evaluation picture: the confusion matrix over the four outcomes, and the
calibration curve (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen on a server
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402

from classifiers.outcomes import ABSTAIN, OFF_TOPIC, judge, outcome  # noqa: E402

SHOWN = {OFF_TOPIC: "Otros temas", ABSTAIN: "Por clasificar"}


def draw_evaluation(pipeline, examples, scores: dict, off_topic_threshold: float,
                    path: Path) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    outcomes = [label for label in scores["labels"] if label != ABSTAIN]
    names = [SHOWN.get(label, label) for label in outcomes]
    counts = np.array(scores["confusion"])
    matrix, abstained = counts[:len(outcomes), :len(outcomes)], counts[:len(outcomes), -1]
    left.imshow(matrix, cmap="Blues")
    left.set_xticks(range(len(names)), names)
    left.set_yticks(range(len(names)),
                    [f"{name}\n({count} por clasificar)" if count else name
                     for name, count in zip(names, abstained, strict=True)])
    left.set_xlabel("resultado de buzon")
    left.set_ylabel("resultado correcto")
    left.set_title(f"Matriz de confusión {len(names)}×{len(names)} (datos reservados)")
    for (row, column), count in np.ndenumerate(matrix):
        left.text(column, row, str(count), ha="center", va="center",
                  color="white" if count > matrix.max() / 2 else "black")
    judged = judge(pipeline.classes_, pipeline.predict_proba([e.text for e in examples]),
                   off_topic_threshold)
    correct = np.array([outcome(label) == outcome(e.label)
                        for (label, _c), e in zip(judged, examples, strict=True)], dtype=int)
    confidence = np.array([c for _label, c in judged])
    fraction, mean_confidence = calibration_curve(correct, confidence, n_bins=8,
                                                  strategy="quantile")
    right.plot([0, 1], [0, 1], linestyle="--", color="grey", label="calibración perfecta")
    right.plot(mean_confidence, fraction, marker="o", label="modelo")
    right.set_xlabel("confianza del modelo")
    right.set_ylabel("proporción de aciertos")
    right.set_title("Curva de calibración")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
