"""The labelled examples: the shipped corpus (data/corpus/*.jsonl), the off-topic and
messy in-scope mail (data/offtopic/), and harvested mail."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer

from classifiers.outcomes import OFF_TOPIC, SPAM
from classifiers.text import judged_text

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CORPUS_DIR = DATA_DIR / "corpus"
OFF_TOPIC_DIR = DATA_DIR / "offtopic"
SPAM_KINDS = frozenset({"phishing", "publicidad"})
NEAR_DUPLICATE_SIMILARITY = 0.8
HELD_OUT_FRACTION = 0.2
SPLIT_SEED = 20260


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    group: str
    source: str = "corpus"


def _rows(paths) -> list[dict]:
    return [json.loads(line) for path in sorted(paths)
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _example(row: dict, label: str) -> Example:
    return Example(judged_text(row["subject"], row["body"]), label, row["group"])


def load_corpus(directory: Path = CORPUS_DIR) -> list[Example]:
    """The well-formed SEACE, RNP and Legal consultas."""
    return [_example(row, row["label"]) for row in _rows(directory.glob("*.jsonl"))]


def load_off_topic(directory: Path = OFF_TOPIC_DIR) -> list[Example]:
    """Off-topic mail (labelled Otros, or Spam for advertising and phishing) and messy
    in-scope mail. The vague mail (vagos.jsonl) is not trained on: the short-mail rule
    (classifiers.vague) keeps it from the model."""
    off_topic = [_example(row, SPAM if row["kind"] in SPAM_KINDS else OFF_TOPIC)
                 for row in _rows(directory.glob("otros*.jsonl"))]
    in_scope = [_example(row, row["label"])
                for row in _rows(directory.glob("inscope_messy*.jsonl"))]
    return off_topic + in_scope


def shipped_examples() -> list[Example]:
    """Everything buzon ships to train on."""
    return load_corpus() + load_off_topic()


def merged_groups(examples: list[Example]) -> np.ndarray:
    """Group ids in which near-duplicate texts share a group, whatever they were given."""
    given = {group: index for index, group in enumerate(dict.fromkeys(e.group for e in examples))}
    codes = np.array([given[e.group] for e in examples])
    vectors = TfidfVectorizer(strip_accents="unicode", sublinear_tf=True).fit_transform(
        [e.text for e in examples])
    similar = (vectors @ vectors.T) >= NEAR_DUPLICATE_SIMILARITY
    # Tie every example to the first example of its given group as well.
    first = {}
    representative = np.array([first.setdefault(code, i) for i, code in enumerate(codes)])
    size = len(examples)
    same_group = csr_matrix((np.ones(size, dtype=bool), (np.arange(size), representative)),
                            shape=(size, size))
    _count, labels = connected_components(similar + same_group, directed=False)
    return labels


def _held_out_group(group: str) -> bool:
    digest = hashlib.sha256(f"{SPLIT_SEED}:{group}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 1000 < HELD_OUT_FRACTION * 1000


def held_out_split(examples: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    """The fixed split: (train indices, held-out indices).

    A group's side is decided by a hash of its id, so an example keeps its side when
    new examples arrive; near-duplicates of different groups are merged first, and a
    merged group is held out if any of its groups is, so none straddles the split.
    """
    merged = merged_groups(examples)
    held_components = {m for m, e in zip(merged, examples, strict=True) if _held_out_group(e.group)}
    held = np.array([m in held_components for m in merged])
    return np.flatnonzero(~held), np.flatnonzero(held)
