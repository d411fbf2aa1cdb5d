"""`buzon tags --thunderbird`: every fixed keyword buzon writes has a Thunderbird tag with
a Spanish name and a colour, under the key Thunderbird uses (the keyword in lower case)."""

from __future__ import annotations

import json
import re

from conftest import REPO

from daemon.cli.tags import tags, thunderbird_policy, thunderbird_prefs
from daemon.config import load_settings
from daemon.flows import relay, replies, sweeps

SETTINGS = load_settings(REPO / "rules.yaml")


def test_every_state_keyword_buzon_writes_has_a_tag():
    keywords = {keyword for keyword, _name, _colour in tags(SETTINGS)}
    written = {replies.UNVERIFIED, replies.COURTESY, relay.WAITING, sweeps.DUE_TODAY,
               sweeps.DUE_SOON, sweeps.OVERDUE}
    # The keywords the sweeps and replies write literally.
    for path in ("daemon/flows/sweeps.py", "daemon/flows/replies.py", "daemon/flows/intake.py"):
        source = (REPO / path).read_text(encoding="utf-8")
        written |= set(re.findall(r'"(Por_vencer|Vencido|Reabierta)"', source))
    assert written <= keywords
    assert {f"Respuesta_{organ}" for organ in SETTINGS.organs} <= keywords


def test_the_prefs_name_each_tag_in_spanish_under_its_lower_case_key():
    prefs = thunderbird_prefs(SETTINGS)
    # Values are JavaScript strings (non-ASCII escaped, as user.js is safest read).
    values = {key: json.loads(value) for key, value in
              re.findall(r'user_pref\("mailnews\.tags\.([^"]+)", (".*")\);', prefs)}
    assert values["respuesta_dseace.tag"] == "Respuesta: Dirección del SEACE"
    assert 'user_pref("mailnews.tags.por_vencer.color", "#FF8C00");' in prefs
    keys = re.findall(r'mailnews\.tags\.([^.]+)\.tag', prefs)
    assert keys and all(key == key.lower() for key in keys)
    policy = json.loads(thunderbird_policy(SETTINGS))["policies"]["Preferences"]
    assert policy["mailnews.tags.vencido.tag"]["Value"] == "Vencida (plazo pasado)"
    assert len(policy) == 2 * len(keys)
