"""The classifier's hashed n-grams (classifiers.compact.gram_hashes), built from cached
per-word hashes, against the straightforward way: scikit-learn's own analyzers give the
n-grams, and scikit-learn's murmurhash3 hashes each one. The counts of the hashes are
what the model reads, so the two must hold the same hashes as many times each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.utils import murmurhash3_32

from classifiers import compact
from classifiers.compact import gram_hashes

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
RANGES = [("word", 1, 2), ("char_wb", 3, 5), ("word", 1, 1), ("word", 2, 3),
          ("char_wb", 2, 3), ("char_wb", 1, 1)]
ODD_TEXTS = [
    "", " ", "\n\t ", "a", "a b c", "ab", "abc", "é", "¿Cómo renuevo mi inscripción? Año 2026",
    "ÁÉÍÓÚ ñÑ Ü ü ç", "x" * 5000, "y" * 32, "z" * 33, "\x00", "a\x00b", "hola\x00 mundo\x00",
    "tab\tand\nnew line  double   spaces\r\n", "a¨b ¨", "ﬁn ﬂujo", "emoji 🙂🙂 🙂", "İstanbul ß",
    "ελληνικά κείμενα", "em\u2003space\u00a0nbsp", "sep\x1carators\x1d\x1e\x1f", "RNP " * 300,
    "Consulta-sobre_el RNP: ¿cuándo? (2026) #12 e-mail x@y.test",
]


def reference(text: str, analyzer: str, low: int, high: int) -> np.ndarray:
    grams = HashingVectorizer(analyzer=analyzer, ngram_range=(low, high),
                              strip_accents="unicode", lowercase=True).build_analyzer()(text)
    return np.array([murmurhash3_32(gram, seed=0, positive=False) for gram in grams],
                    dtype=np.int64)


def assert_same_hashes(text: str) -> None:
    for analyzer, low, high in RANGES:
        got = gram_hashes(text, analyzer, low, high)
        assert np.array_equal(np.sort(got), np.sort(reference(text, analyzer, low, high))), (
            text[:80], analyzer, low, high)


def corpus_texts() -> list[str]:
    return [f"{row['subject']}\n{row['body']}" for path in sorted(CORPUS.glob("*.jsonl"))
            for row in map(json.loads, path.read_text(encoding="utf-8").splitlines())]


def test_the_hashes_of_every_corpus_text_are_the_straightforward_ones():
    texts = corpus_texts()
    assert len(texts) > 1000
    gram_hashes.cache_clear()
    for text in texts:
        for analyzer, low, high in RANGES[:2]:  # the model's own branches
            assert np.array_equal(np.sort(gram_hashes(text, analyzer, low, high)),
                                  np.sort(reference(text, analyzer, low, high))), text[:80]


@pytest.mark.parametrize("text", ODD_TEXTS, ids=range(len(ODD_TEXTS)))
def test_the_hashes_of_odd_text_are_the_straightforward_ones(text):
    assert_same_hashes(text)
    gram_hashes.cache_clear()  # again from the per-word cache alone
    assert_same_hashes(text)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=400))
def test_the_hashes_of_any_text_are_the_straightforward_ones(text):
    assert_same_hashes(text)


def test_the_word_cache_stays_within_its_bound(monkeypatch):
    monkeypatch.setattr(compact, "_WORD_HASHES_LIMIT", 8)
    compact._WORD_HASHES.clear()
    text = " ".join(f"palabra{n}" for n in range(50)) + " " + "w" * 40
    for _ in range(2):
        assert_same_hashes(text)
        assert 0 < len(compact._WORD_HASHES) <= 8
        gram_hashes.cache_clear()
    assert gram_hashes.cache_info().currsize == 0
    assert not any(len(word) > 32 for word, _low, _high in compact._WORD_HASHES)
