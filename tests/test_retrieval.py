"""The vectorised search of the suggested answers' index gives what the plain cosine of
its definition gives (classifiers.retrieval)."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from classifiers.retrieval import Index, _features, load_standard_answers
from classifiers.text import judged_text

ROOT = Path(__file__).resolve().parent.parent


def reference_search(sources, text: str, limit: int = 3):
    """Tf-idf cosine written out the long way: every document, every shared column."""
    documents, owners = [], []
    for number, source in enumerate(sources):
        texts = list(source.questions)
        if source.kind == "standard":
            texts.append(" ".join((source.title, *source.questions)))
        for one in texts:
            documents.append(_features(judged_text("", one)))
            owners.append(number)
    seen = Counter(column for document in documents for column in document)
    idf = {c: math.log((1 + len(documents)) / (1 + n)) + 1.0 for c, n in seen.items()}

    def unit(vector):
        weights = {c: v * idf[c] for c, v in vector.items() if c in idf}
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return {c: w / norm for c, w in weights.items()} if norm else {}

    query = unit(_features(text))
    best: dict[int, float] = {}
    for document, owner in zip(documents, owners, strict=True):
        d = unit(document)
        score = sum(w * d.get(c, 0.0) for c, w in query.items())
        if score > 0:
            best[owner] = max(best.get(owner, 0.0), score)
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [(sources[n].key, score) for n, score in ranked]


SOURCES = load_standard_answers(ROOT / "templates" / "respuestas")
QUESTIONS = [json.loads(line)["question"] for line in
             (ROOT / "data" / "retrieval_eval.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()][:25]


@pytest.mark.parametrize("question", QUESTIONS)
def test_the_index_ranks_as_the_cosine_says(question):
    index = Index.build(SOURCES)
    found = [(source.key, score) for source, score in index.search(question)]
    expected = reference_search(SOURCES, question)
    assert [key for key, _ in found] == [key for key, _ in expected]
    assert [score for _, score in found] == pytest.approx([s for _, s in expected], abs=1e-4)


def test_an_empty_index_and_an_unknown_text_find_nothing():
    assert Index.build([]).search("¿Cómo me inscribo en el RNP?") == []
    assert Index.build(SOURCES).search("") == []
