"""`buzon tags --thunderbird`: the keywords buzon puts on mail, as Thunderbird tags with a
Spanish name and a colour. Thunderbird shows a keyword only once a tag with that key is
defined, so without these prefs the assistants never see buzon's keywords.

buzon's vocabulary is fixed (no keyword per ticket or per date), so every keyword it
writes is listed here; the ticket id is on the card beside the mail (daemon.flows.cards)."""

from __future__ import annotations

import json

from daemon.config import Settings

# (keyword, Spanish name, colour): the states an assistant acts on stand out in red and
# orange, the records in calm colours.
FIXED_TAGS = (
    ("Vencido", "Vencida (plazo pasado)", "#CC0000"),
    ("Vence_hoy", "Vence hoy", "#E65C00"),
    ("Por_vencer", "Por vencer", "#FF8C00"),
    ("Por_enviar", "Respuesta por enviar", "#E6B800"),
    ("Reabierta", "Reabierta", "#8B008B"),
    ("Sin_verificar", "Orden no verificada", "#555555"),
    ("Agradecimiento", "Agradecimiento", "#2E8B57"),
)
COMPLEXITIES = ("Bajo", "Medio", "Alto", "Muy_Alto", "Indefinida")


def tags(settings: Settings) -> list[tuple[str, str, str]]:
    """Every fixed keyword of this configuration: the states, an answer per organ, the
    complexities an assistant may set on incident mail."""
    organs = settings.organ_names()
    found = list(FIXED_TAGS)
    found += [(f"Respuesta_{key}", f"Respuesta: {name}", "#1E6FD9")
              for key, name in organs.items()]
    found += [(f"Complejidad_{level}", f"Complejidad: {level.replace('_', ' ').lower()}",
               "#708090") for level in COMPLEXITIES]
    return found


def thunderbird_prefs(settings: Settings) -> str:
    """user.js lines (Thunderbird keys tags by the keyword in lower case)."""
    lines = ["// buzon: las etiquetas de buzon en Thunderbird (copie en user.js del perfil)"]
    for keyword, name, colour in tags(settings):
        key = keyword.lower()
        lines.append(f'user_pref("mailnews.tags.{key}.tag", {json.dumps(name)});')
        lines.append(f'user_pref("mailnews.tags.{key}.color", "{colour}");')
    return "\n".join(lines) + "\n"


def thunderbird_policy(settings: Settings) -> str:
    """The same as a policies.json fragment, for an administrator who deploys it."""
    preferences = {}
    for keyword, name, colour in tags(settings):
        key = keyword.lower()
        preferences[f"mailnews.tags.{key}.tag"] = {"Value": name, "Status": "default"}
        preferences[f"mailnews.tags.{key}.color"] = {"Value": colour, "Status": "default"}
    return json.dumps({"policies": {"Preferences": preferences}}, ensure_ascii=False,
                      indent=2) + "\n"
