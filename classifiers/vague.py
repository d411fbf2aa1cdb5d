"""Mail too short or too vague for the model to judge (pure).

"hola necesito ayuda urgente por favor llamenme" names no platform, registry or law, yet
a three-class model must pick one, and confidently. A mail whose text (subject and new
body) holds fewer than a few meaningful words is left to the coordinator instead,
whatever the model says.

A meaningful word is a distinct word of three letters or more that is not a greeting, a
courtesy, a function word or a request any mail could make ("ayuda", "consulta",
"problema", "llamenme"). The list and the cut-off were chosen on data/offtopic/vagos.jsonl
against the corpus (data/README.md): fewer than 3 such words catches 36 of its 69 vague
mails and none of its 18 short clear questions, and 1 of the corpus's 1,109 mails.
"""

from __future__ import annotations

import re

from classifiers.compact import fold_accents

MIN_MEANINGFUL_WORDS = 3

_WORD = re.compile(r"[a-z]+")

# Accents folded, lower case. Greetings and courtesies, function words, and the requests
# and nouns that any mail may carry without saying what it is about.
_EMPTY_WORDS = frozenset("""
hola buenas buenos buen dia dias tardes noches estimado estimada estimados estimadas senor
senora senores sres srs gracias muchas saludos cordiales atentamente atte favor porfa
por el la los las un una unos unas de del al a y o u e en con para que se me mi mis su sus
es son lo le les nos este esta esto estos estas ese esa eso ya no si muy mas tambien pero
quisiera quiero queria necesito necesitamos tengo tenemos hay ayuda ayudar ayudenme
consulta consultar informacion info urgente urge pregunta duda adjunto adjunta envio remito
correo mensaje sobre como cual quien donde cuando hasta puedo puede pueden podrian podemos
hacer hago hice sale problema tema temas caso asunto llamenme llamar llamada numero
contacto atento atenta quedo
hi hello thanks dear please the to and of i we you for your have who can need some team
""".split())


def meaningful_words(text: str) -> frozenset[str]:
    """The distinct words of `text` that say what it is about."""
    return frozenset(word for word in _WORD.findall(fold_accents(text))
                     if len(word) > 2 and word not in _EMPTY_WORDS)


def too_vague(text: str, minimum: int = MIN_MEANINGFUL_WORDS) -> bool:
    """Whether `text` (what the model would judge) is too short for the model."""
    return len(meaningful_words(text)) < minimum
