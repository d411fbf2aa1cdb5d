"""The evaluation picture: confusion matrix and calibration curve (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen on a server
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402


def draw_evaluation(pipeline, examples, scores: dict, path: Path) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    labels = [label if label != "__abstain__" else "abstención" for label in scores["labels"]]
    matrix = np.array(scores["confusion"])[:-1]
    left.imshow(matrix, cmap="Blues")
    left.set_xticks(range(len(labels)), labels)
    left.set_yticks(range(len(labels) - 1), labels[:-1])
    left.set_xlabel("carpeta predicha")
    left.set_ylabel("carpeta correcta")
    left.set_title("Matriz de confusión (datos reservados)")
    for (row, column), count in np.ndenumerate(matrix):
        left.text(column, row, str(count), ha="center", va="center")
    probabilities = pipeline.predict_proba([e.text for e in examples])
    truth = np.array([e.label for e in examples])
    best = probabilities.argmax(axis=1)
    correct = (np.array(pipeline.classes_)[best] == truth).astype(int)
    fraction, mean_confidence = calibration_curve(correct, probabilities.max(axis=1), n_bins=8,
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
