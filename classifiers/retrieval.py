"""Suggested answers: the closest standard answers (templates/respuestas/*.md) and past
answers to a consulta, by cosine similarity of hashed word and character n-grams with
tf-idf weights (the same text features as the classifier; no model from the internet,
no scikit-learn in the daemon: numpy and mmh3), against each source's whole text and
against its example questions. Pure: the caller supplies the sources."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from classifiers.compact import gram_hashes
from classifiers.text import judged_text

N_FEATURES = 2**20
# How the two views of a source are fused (Index.scores). Chosen on data/retrieval_dev.jsonl
# (questions written for tuning, apart from the held-out benchmark): the whole text alone
# puts the right answer first in 88 % of them, the best example question alone in 79 %,
# the two at 4:1 in 90 %. BM25 over word n-grams, fused as well, added under a point.
WHOLE_WEIGHT, QUESTION_WEIGHT = 1.0, 0.25
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


def whole_text(source: Source) -> str:
    """A source as one document: its title, its questions and its answer. The answer's
    own words (RUC, carta fianza, cuaderno de obra...) match a consulta that words its
    question unlike any example question."""
    return " ".join((source.title, *source.questions, source.answer))


@dataclass
class _Postings:
    """Tf-idf rows of some documents (l2-normalised, idf over these documents), stored as
    one column-sorted posting list (CSC-like): a query finds its columns with one
    searchsorted, gathers their postings with one fancy index, and adds them up with one
    bincount."""

    count: int = 0
    columns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    idf: np.ndarray = field(default_factory=lambda: np.zeros(0))
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    documents: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def build(cls, texts: list[str]) -> _Postings:
        rows = [_feature_arrays(judged_text("", text)) for text in texts]
        total = len(rows)
        if not total:
            return cls()
        # Every (document, column) pair at once: a document holds each column once, so a
        # column's document frequency is also the length of its posting list.
        owners = np.repeat(np.arange(total, dtype=np.int32), [len(c) for c, _ in rows])
        columns, which, seen = np.unique(np.concatenate([c for c, _ in rows]),
                                         return_inverse=True, return_counts=True)
        idf = np.log((1 + total) / (1 + seen)) + 1.0
        weights = np.concatenate([f for _, f in rows]) * idf[which]
        norms = np.sqrt(np.bincount(owners, weights=weights * weights, minlength=total))
        weights /= np.where(norms > 0, norms, 1.0)[owners]
        order = np.lexsort((owners, which))  # by column, then by document
        return cls(count=total, columns=columns.astype(np.int64), idf=idf,
                   starts=np.concatenate(([0], np.cumsum(seen)[:-1])).astype(np.int64),
                   lengths=seen.astype(np.int64), documents=owners[order],
                   values=weights[order])

    def cosines(self, query_columns: np.ndarray, query_counts: np.ndarray) -> np.ndarray:
        """The cosine of a query (its columns and sublinear counts) with every document."""
        if not len(self.columns):
            return np.zeros(self.count)
        where = np.searchsorted(self.columns, query_columns)
        where[where == len(self.columns)] = 0
        known = self.columns[where] == query_columns
        where = where[known]
        weights = query_counts[known] * self.idf[where]
        norm = math.sqrt(float(weights @ weights))
        if not norm:
            return np.zeros(self.count)
        lengths = self.lengths[where]
        # The positions of every posting of the query's columns, without a Python loop.
        offsets = np.repeat(self.starts[where] - np.cumsum(lengths) + lengths, lengths)
        positions = offsets + np.arange(int(lengths.sum()))
        return np.bincount(self.documents[positions],
                           weights=self.values[positions] * np.repeat(weights, lengths),
                           minlength=self.count) / norm


@dataclass
class Index:
    """Two views of every source, fused: its whole text as one document, and each of its
    example questions as a document of its own (a source keeps its best question). The
    score is their weighted mean, a similarity between 0 and 1."""

    sources: list[Source] = field(default_factory=list)
    _whole: _Postings = field(default_factory=_Postings)
    _questions: _Postings = field(default_factory=_Postings)
    _first: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def build(cls, sources: list[Source]) -> Index:
        sources = list(sources)
        if any(not source.questions for source in sources):
            raise ValueError("every source needs at least one question")
        counts = [len(source.questions) for source in sources]
        return cls(sources=sources, _whole=_Postings.build([whole_text(s) for s in sources]),
                   _questions=_Postings.build([q for s in sources for q in s.questions]),
                   _first=np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64))

    def scores(self, text: str) -> np.ndarray:
        """Every source's similarity to a consulta's text, in the order of `sources`."""
        if not self.sources:
            return np.zeros(0)
        query = _feature_arrays(text)
        # A source's questions are consecutive documents: its best one in one reduceat.
        best_question = np.maximum.reduceat(self._questions.cosines(*query), self._first)
        return ((WHOLE_WEIGHT * self._whole.cosines(*query) + QUESTION_WEIGHT * best_question)
                / (WHOLE_WEIGHT + QUESTION_WEIGHT))

    def search(self, text: str, limit: int = 3) -> list[tuple[Source, float]]:
        """The closest sources to a consulta's text, best first, with their similarity."""
        best = self.scores(text)
        found = np.flatnonzero(best)
        ranked = found[np.lexsort((found, -best[found]))][:limit]
        return [(self.sources[number], round(float(best[number]), 4)) for number in ranked]
