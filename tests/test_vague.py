"""The short-mail rule measured on the vague mail and the corpus it was chosen on."""

from __future__ import annotations

import json
from pathlib import Path

from classifiers.corpus import load_corpus
from classifiers.text import judged_text
from classifiers.vague import meaningful_words, too_vague

VAGOS = Path(__file__).resolve().parent.parent / "data" / "offtopic" / "vagos.jsonl"


def test_greetings_requests_and_repeats_are_not_meaningful():
    assert meaningful_words("Hola, necesito AYUDA urgente por favor llámenme") == frozenset()
    assert meaningful_words("Consulta\nconsulta RNP rnp") == {"rnp"}
    assert not too_vague("¿Cuánto cuesta la inscripción en el RNP como ejecutor de obras?")


def test_the_rule_catches_vague_mail_and_spares_short_clear_questions():
    rows = [json.loads(line) for line in VAGOS.read_text(encoding="utf-8").splitlines()]
    vague = [r for r in rows if r["kind"] == "vago"]
    clear = [r for r in rows if r["kind"] == "corto_claro"]
    caught = [r for r in vague if too_vague(judged_text(r["subject"], r["body"]))]
    spared = [r for r in clear if not too_vague(judged_text(r["subject"], r["body"]))]
    assert len(caught) >= 36 and len(vague) == 69
    assert len(spared) == len(clear) == 18
    corpus = load_corpus()
    assert sum(too_vague(example.text) for example in corpus) <= 1
