"""From the model's probabilities to a mail's outcome, and the sources a draft may use."""

from __future__ import annotations

import numpy as np

from classifiers.outcomes import ABSTAIN, judge, outcome, with_abstention
from classifiers.retrieval import Source
from daemon.config import FolderSettings
from daemon.flows.knowledge import fitting

CLASSES = ["Legal", "Otros", "RNP", "SEACE", "Spam"]


def test_off_topic_is_the_sum_of_the_two_out_of_scope_classes():
    rows = np.array([
        [0.30, 0.20, 0.25, 0.05, 0.20],  # no class above 0.30, but 0.40 off-topic
        [0.10, 0.05, 0.70, 0.05, 0.10],  # RNP
        [0.05, 0.10, 0.05, 0.05, 0.75],  # advertising or phishing
    ])
    assert judge(CLASSES, rows, 0.35) == [("Otros", 0.40), ("RNP", 0.70), ("Spam", 0.85)]
    # A higher off-topic threshold: the first mail is the likeliest category's.
    assert judge(CLASSES, rows, 0.45)[0] == ("Legal", 0.30)


def test_a_category_below_the_threshold_waits_and_off_topic_never_does():
    judged = [("Otros", 0.36), ("RNP", 0.40), ("SEACE", 0.90)]
    assert with_abstention(judged, 0.47) == ["Otros", ABSTAIN, "SEACE"]
    assert [outcome(label) for label in ("Spam", "Otros", "Legal")] == ["Otros", "Otros",
                                                                         "Legal"]


def test_a_three_class_model_never_says_off_topic():
    rows = np.array([[0.34, 0.33, 0.33]])
    assert judge(["Legal", "RNP", "SEACE"], rows, 0.0) == [("Legal", 0.34)]


def source(key: str, category: str) -> Source:
    return Source(key=key, title=key, category=category, questions=("q",), answer="a")


def test_drafts_follow_the_triage():
    folders = FolderSettings()
    found = [(source("otros-reniec-dni", "Otros"), 0.5), (source("rnp-renovacion", "RNP"), 0.4),
             (source("ticket:C-1", "Otros temas"), 0.3), (source("seace-clave", "SEACE"), 0.2)]
    keys = [[s.key for s, _ in fitting(found, folder, folders)]
            for folder in ("Otros temas", "RNP", "Por clasificar")]
    assert keys == [["otros-reniec-dni", "ticket:C-1"], ["rnp-renovacion", "seace-clave"],
                    ["otros-reniec-dni", "rnp-renovacion", "ticket:C-1"]]
