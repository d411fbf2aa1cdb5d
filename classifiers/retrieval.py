"""Suggested answers: the closest standard answers (templates/respuestas/*.md) and past
answers to a consulta, by cosine similarity of hashed word and character n-grams with
tf-idf weights (the same text features as the classifier; no model from the internet,
no scikit-learn in the daemon: numpy and mmh3). Pure: the caller supplies the sources."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from classifiers.compact import gram_hashes
from classifiers.text import judged_text

N_FEATURES = 2**20
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.S)


@dataclass(frozen=True)
class Source:
    key: str  # the file's name without .md, or "ticket:C-2026-000123"
    title: str
    category: str
    questions: tuple[str, ...]
    answer: str
    references: tuple[str, ...] = ()
    checked: str = ""  # when a person last checked it
    verify: str = ""  # what a reviewer must verify before sending
    kind: str = "standard"  # standard or answered


def read_standard_answer(path: Path) -> Source:
    """One knowledge file: YAML front matter (titulo, categoria, preguntas, referencias,
    revisado, verificar) and the answer in plain Spanish below it."""
    match = _FRONT_MATTER.match(path.read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{path.name}: no front matter between '---' lines")
    meta = yaml.safe_load(match.group(1)) or {}
    missing = [key for key in ("titulo", "categoria", "preguntas") if not meta.get(key)]
    if missing:
        raise ValueError(f"{path.name}: missing {', '.join(missing)}")
    return Source(key=path.stem, title=str(meta["titulo"]), category=str(meta["categoria"]),
                  questions=tuple(str(q) for q in meta["preguntas"]),
                  answer=match.group(2).strip(),
                  references=tuple(str(r) for r in meta.get("referencias") or ()),
                  checked=str(meta.get("revisado") or ""),
                  verify=" ".join(str(meta.get("verificar") or "").split()))


def load_standard_answers(directory: Path) -> list[Source]:
    return [read_standard_answer(path) for path in sorted(directory.glob("*.md"))]


def _feature_arrays(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(columns, sublinear term frequencies) of the hashed word (1-2) and character (3-5)
    n-grams: the classifier's own n-grams, whose hashes it has usually just computed."""
    hashes = np.concatenate([gram_hashes(text, "word", 1, 2),
                             gram_hashes(text, "char_wb", 3, 5)])
    columns, counts = np.unique(np.abs(hashes) % N_FEATURES, return_counts=True)
    return columns.astype(np.int64), 1.0 + np.log(counts)


def _features(text: str) -> dict[int, float]:
    columns, frequencies = _feature_arrays(text)
    return dict(zip(columns.tolist(), frequencies.tolist(), strict=True))


@dataclass
class Index:
    """Every question of every source as a document; a source scores its best question."""

    sources: list[Source] = field(default_factory=list)
    _idf: dict[int, float] = field(default_factory=dict)
    _owner: list[int] = field(default_factory=list)  # document -> source
    _columns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _idf_array: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _documents: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    _values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _owner_array: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def build(cls, sources: list[Source]) -> Index:
        index = cls(sources=list(sources))
        documents: list[dict[int, float]] = []
        for number, source in enumerate(index.sources):
            # Each question on its own, and all of them together with the title (which
            # catches a consulta that mixes the wordings): 63 % top-1 against 59 %.
            texts = list(source.questions)
            if source.kind == "standard":
                texts.append(" ".join((source.title, *source.questions)))
            for text in texts:
                documents.append(_features(judged_text("", text)))
                index._owner.append(number)
        frequency: dict[int, int] = defaultdict(int)
        for document in documents:
            for column in document:
                frequency[column] += 1
        total = len(documents)
        index._idf = {column: math.log((1 + total) / (1 + seen)) + 1.0
                      for column, seen in frequency.items()}
        postings: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for number, document in enumerate(documents):
            weights = {c: v * index._idf[c] for c, v in document.items()}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            for column, weight in weights.items():
                postings[column].append((number, weight / norm))
        # As one column-sorted posting list (CSC-like): a query finds its columns with
        # one searchsorted, gathers their postings with one fancy index, and adds them up
        # with one bincount; a source keeps its best question via np.maximum.at.
        columns = np.array(sorted(postings), dtype=np.int64)
        lengths = np.array([len(postings[c]) for c in columns.tolist()], dtype=np.int64)
        index._columns = columns
        index._idf_array = np.array([index._idf[c] for c in columns.tolist()])
        index._starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        index._lengths = lengths
        index._documents = np.array([d for c in columns.tolist() for d, _ in postings[c]],
                                    dtype=np.int32)
        index._values = np.array([w for c in columns.tolist() for _, w in postings[c]])
        index._owner_array = np.array(index._owner, dtype=np.int64)
        return index

    def search(self, text: str, limit: int = 3) -> list[tuple[Source, float]]:
        """The closest sources to a consulta's text, best first, with their cosine."""
        if not len(self._columns):
            return []
        query_columns, query_counts = _feature_arrays(text)
        where = np.searchsorted(self._columns, query_columns)
        where[where == len(self._columns)] = 0
        known = self._columns[where] == query_columns
        where = where[known]
        weights = query_counts[known] * self._idf_array[where]
        norm = math.sqrt(float(weights @ weights))
        if not norm:
            return []
        lengths = self._lengths[where]
        # The positions of every posting of the query's columns, without a Python loop.
        offsets = np.repeat(self._starts[where] - np.cumsum(lengths) + lengths, lengths)
        positions = offsets + np.arange(int(lengths.sum()))
        scores = np.bincount(self._documents[positions],
                             weights=self._values[positions] * np.repeat(weights, lengths),
                             minlength=len(self._owner)) / norm
        best = np.zeros(len(self.sources))
        np.maximum.at(best, self._owner_array, scores)
        found = np.flatnonzero(best)
        ranked = found[np.lexsort((found, -best[found]))][:limit]
        return [(self.sources[number], round(float(best[number]), 4)) for number in ranked]
