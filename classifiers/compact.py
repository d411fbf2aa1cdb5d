"""The trained model as plain arrays, for the daemon: prediction with numpy and mmh3
alone. Importing scikit-learn costs a process over 100 MB (it pulls in scipy.stats);
the daemon only needs the arithmetic of the pipeline it was given:

    hashed word and character n-grams -> sublinear tf * idf -> l2 rows
    -> linear decision (X @ coef.T + intercept) -> per-class sigmoid calibration.

`export` reads a fitted scikit-learn pipeline (at training time); `predict_proba` must
give the pipeline's own probabilities, which tests/test_classifier.py checks on the
whole corpus. A pipeline of another shape is not exported: the daemon then falls back
to scikit-learn.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import mmh3
import numpy as np

COMPACT_FILE = "model.compact.npz"
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern
# mmh3.hash(gram) is scikit-learn's feature hash: murmurhash3 of the UTF-8, seed 0, signed.
_WHITE_SPACES = re.compile(r"\s\s+")


@dataclass(frozen=True)
class Branch:
    analyzer: str  # word or char_wb
    ngram_range: tuple[int, int]
    n_features: int
    idf: np.ndarray
    offset: int  # where its columns start in the union


@dataclass(frozen=True)
class CompactModel:
    classes: list[str]
    branches: list[Branch]
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray  # (classes,)
    calibration: np.ndarray  # (classes, 2): the sigmoid's a and b

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        scores = np.tile(self.intercept, (len(texts), 1))
        for row, text in enumerate(texts):
            for branch in self.branches:
                columns, values = _tfidf_row(branch, text)
                if len(columns):
                    scores[row] += self.coef[:, branch.offset + columns] @ values
        calibrated = 1.0 / (1.0 + np.exp(self.calibration[:, 0] * scores
                                          + self.calibration[:, 1]))
        total = calibrated.sum(axis=1, keepdims=True)
        uniform = np.full_like(calibrated, 1 / len(self.classes))
        proba = np.divide(calibrated, total, out=uniform, where=total != 0)
        proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba


@lru_cache(maxsize=2)  # the two branches fold the same text, one after the other
def fold_accents(text: str) -> str:
    """Lower case without combining marks, as scikit-learn's strip_accents_unicode."""
    text = text.lower()
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKD", text)
    # A text holds few distinct marks: each is found once and removed in C.
    for mark in [c for c in set(text) if unicodedata.combining(c)]:
        text = text.replace(mark, "")
    return text


def _word_hashes(text: str, low: int, high: int) -> np.ndarray:
    """The hashes of a text's word n-grams: its tokens, then each run of 2 tokens..."""
    tokens = _TOKEN.findall(text)
    hashes = list(map(mmh3.hash, tokens)) if low == 1 else []
    for n in range(max(low, 2), high + 1):  # runs of n: the tokens zipped with n-1 shifts
        runs = zip(*(tokens[i:] for i in range(n)), strict=False)  # ends with the shortest
        hashes += map(mmh3.hash, map(" ".join, runs))
    return np.array(hashes, dtype=np.int64)


def _char_wb_word(word: str, low: int, high: int) -> list[str]:
    """The char_wb n-grams of one word, padded with a space each side."""
    grams = []
    word = f" {word} "
    for n in range(low, high + 1):
        offset = 0
        grams.append(word[offset:offset + n])
        while offset + n < len(word):
            offset += 1
            grams.append(word[offset:offset + n])
        if offset == 0:  # a word shorter than n is counted once
            break
    return grams


# The hashes of one word's char_wb n-grams (int64 bytes) by (word, low, high): words
# repeat across mails, so most of a text's hashes are looked up, not computed. Bounded:
# words of at most 32 characters (longer ones are rare and computed each time), at most
# 16,384 of them, cleared when full. An entry takes at most about 1 KB with its key
# (93 hashes of a 32-character word): full of 32-emoji words it measured 17.7 MB; the
# corpus's 8,500 distinct words take 3 MB. Kept across batches: gram_hashes.cache_clear
# (the per-text cache, unbounded in size) leaves it.
_WORD_HASHES: dict[tuple[str, int, int], bytes] = {}
_WORD_HASHES_LIMIT = 16_384
_CACHED_WORD_LENGTH = 32


def _char_wb_hashes(text: str, low: int, high: int) -> np.ndarray:
    """The hashes of a text's char_wb n-grams: its words' cached hashes, concatenated
    (the same multiset as hashing each n-gram of the text)."""
    cache, parts = _WORD_HASHES, []
    for word in _WHITE_SPACES.sub(" ", text).split():
        key = (word, low, high)
        hashes = cache.get(key)
        if hashes is None:
            hashes = np.array(list(map(mmh3.hash, _char_wb_word(word, low, high))),
                              dtype=np.int64).tobytes()
            if len(word) <= _CACHED_WORD_LENGTH:
                if len(cache) >= _WORD_HASHES_LIMIT:
                    cache.clear()
                cache[key] = hashes
        parts.append(hashes)
    return np.frombuffer(b"".join(parts), dtype=np.int64)


@lru_cache(maxsize=4096)
def gram_hashes(text: str, analyzer: str, low: int, high: int) -> np.ndarray:
    """The signed murmurhash3 of each n-gram of a text, as scikit-learn's hashing does.
    Cached: the classifier and the suggested answers look at the same consulta's text,
    and the n-grams are most of the cost. (Read only: the array is shared.)"""
    folded = fold_accents(text)
    return (_word_hashes(folded, low, high) if analyzer == "word"
            else _char_wb_hashes(folded, low, high))


def _tfidf_row(branch: Branch, text: str) -> tuple[np.ndarray, np.ndarray]:
    hashes = gram_hashes(text, branch.analyzer, *branch.ngram_range)
    if not len(hashes):
        return np.empty(0, dtype=np.int64), np.empty(0)
    columns, counts = np.unique(np.abs(hashes) % branch.n_features, return_counts=True)
    values = (np.log(counts) + 1.0) * branch.idf[columns]
    return columns, values / np.sqrt(values @ values)


# Export (needs scikit-learn, at training time) ---------------------------------------

def export(pipeline) -> CompactModel | None:
    """The arrays of a features -> calibrated linear model pipeline; None for another
    shape (ComplementNB, a binary model, other preprocessing)."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    features, model = pipeline.named_steps.get("features"), pipeline.named_steps.get("model")
    calibrated = getattr(model, "calibrated_classifiers_", None)
    if features is None or not calibrated or len(calibrated) != 1:
        return None
    (fitted,) = calibrated
    estimator = fitted.estimator
    classes = [str(c) for c in fitted.classes]
    if (fitted.method != "sigmoid" or len(classes) < 3 or not hasattr(estimator, "coef_")
            or not hasattr(estimator, "decision_function")
            or list(map(str, estimator.classes_)) != classes):
        return None
    branches, offset = [], 0
    for _name, branch in features.transformer_list:
        steps = [step for _n, step in branch.steps]
        if len(steps) != 2 or not isinstance(steps[0], HashingVectorizer) \
                or not isinstance(steps[1], TfidfTransformer):
            return None
        hasher, tfidf = steps
        if (hasher.analyzer not in ("word", "char_wb") or hasher.strip_accents != "unicode"
                or not hasher.lowercase or hasher.alternate_sign or hasher.norm is not None
                or hasher.token_pattern != r"(?u)\b\w\w+\b" or hasher.stop_words
                or hasher.preprocessor or hasher.tokenizer or not tfidf.sublinear_tf
                or tfidf.norm != "l2" or not tfidf.use_idf):
            return None
        branches.append(Branch(hasher.analyzer, tuple(hasher.ngram_range),
                               hasher.n_features, np.asarray(tfidf.idf_, dtype=np.float64),
                               offset))
        offset += hasher.n_features
    calibration = np.array([[c.a_, c.b_] for c in fitted.calibrators], dtype=np.float64)
    return CompactModel(classes, branches, np.asarray(estimator.coef_, dtype=np.float64),
                        np.asarray(estimator.intercept_, dtype=np.float64), calibration)


def save_compact(model: CompactModel, directory: Path) -> Path:
    path = directory / COMPACT_FILE
    temporary = directory / f".{COMPACT_FILE}.tmp.npz"
    layout = [{"analyzer": b.analyzer, "ngram_range": list(b.ngram_range),
               "n_features": b.n_features, "offset": b.offset} for b in model.branches]
    np.savez(temporary, classes=np.array(json.dumps(model.classes)),
             layout=np.array(json.dumps(layout)), coef=model.coef, intercept=model.intercept,
             calibration=model.calibration,
             **{f"idf_{i}": b.idf for i, b in enumerate(model.branches)})
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


def installed_versions() -> dict[str, str]:
    """The versions a saved model must have been built with to be used here. Read from
    the installed packages' metadata: scikit-learn itself need not be imported."""
    from importlib.metadata import version

    return {"scikit-learn": version("scikit-learn"), "numpy": np.__version__}


# Where model.json records each version (sklearn_version predates numpy's).
_RECORDED = {"scikit-learn": "sklearn_version", "numpy": "numpy_version"}


def refusal(meta: dict, directory: Path) -> str | None:
    """Why a saved model must not be used here: built by another scikit-learn or numpy
    (or without the version recorded). None when it was built with these."""
    for package, built_here in installed_versions().items():
        built = meta.get(_RECORDED[package])
        if built != built_here:
            return (f"the model in {directory} was saved by {package} {built} "
                    f"and this is {built_here}: it must be retrained (buzon train)")
    return None


def usable(directory: Path) -> bool:
    """A saved model the daemon can use without scikit-learn: its arrays were written
    with (after) the model itself, by the scikit-learn and numpy installed here."""
    meta, skops, path = (directory / "model.json", directory / "model.skops",
                         directory / COMPACT_FILE)
    if not (meta.exists() and skops.exists() and path.exists()):
        return False
    if path.stat().st_mtime < skops.stat().st_mtime:
        return False  # left from an earlier model
    try:
        return refusal(json.loads(meta.read_text()), directory) is None
    except ValueError:
        return False


def load_compact(directory: Path) -> CompactModel | None:
    path = directory / COMPACT_FILE
    if not usable(directory):
        return None
    with np.load(path, allow_pickle=False) as data:
        layout = json.loads(str(data["layout"]))
        branches = [Branch(b["analyzer"], tuple(b["ngram_range"]), b["n_features"],
                           data[f"idf_{i}"], b["offset"]) for i, b in enumerate(layout)]
        return CompactModel(json.loads(str(data["classes"])), branches, data["coef"],
                            data["intercept"], data["calibration"])
