"""Replies that are not new work (pure): a citizen's "Gracias" or "Ok, recibido" after
the answer. Short courtesy text with no question; anything that asks, adds or disagrees
is new work."""

from __future__ import annotations

import re
import unicodedata

# Measured on the reply fixtures and the corpus: thanks run to a dozen words; the
# shortest real follow-up questions carry a question mark or a question word.
MAX_WORDS = 20

_COURTESY = re.compile(
    r"\b(gracias|agradezco|agradecid[oa]s?|agradecemos|muy amable|ok|okay|oki|recibido|"
    r"recibida|entendido|entendida|perfecto|listo|conforme|de acuerdo|excelente|"
    r"thanks?|thank you|received|got it|great|noted)\b")
# What makes it new work: a question, a request, a complaint, more information.
_NEW_WORK = re.compile(
    r"[?¿]|\b(pero|sin embargo|consulta|pregunta|duda|necesito|quisiera|quiero|"
    r"podrian|podria|pueden|puede|como|cuando|donde|cual|por que|que pasa|"
    r"adjunto|olvide|ademas|adicionalmente|no (me|lo|la|se|funciona|puedo|entiendo|sirve)|"
    r"pesim\w*|queja|reclamo|molest\w*|indignad\w*|por nada|"
    r"however|but|question|can you|could you|please|forgot|attached|also)\b")


def _plain(text: str) -> str:
    folded = "".join(c for c in unicodedata.normalize("NFKD", text.lower())
                     if not unicodedata.combining(c))
    return " ".join(folded.split())


def is_courtesy(own_text: str) -> bool:
    """Whether what the citizen typed now (quotes and signature already removed) is only
    a courtesy: short, thankful or acknowledging, and asking nothing."""
    text = _plain(own_text)
    if not text or len(text.split()) > MAX_WORDS:
        return False
    return bool(_COURTESY.search(text)) and not _NEW_WORK.search(text)
