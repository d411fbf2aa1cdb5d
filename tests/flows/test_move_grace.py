"""A move made by mistake can be undone: a move that sends mail waits out its grace
period, and moving the mail back in time sends nothing."""

from __future__ import annotations

import json

import pytest
from conftest import at, fixture_bytes, run

SUPPLIER = "ventas@ferreteriasanmartin.test"


def tickets(d) -> dict:
    return {r["ticket"]: r for r in map(json.loads, d.buzon("tickets", "--json").stdout.split(
        "\n")[:-1])}


@pytest.fixture
def graced(deployment):
    deployment.config["folders"] = {"move_grace_minutes": 5}
    deployment.write_config()
    deployment.deliver(fixture_bytes("plain_consulta_rnp.eml"), at("2026-11-16 09:00"))
    run(deployment, "2026-11-16 09:05")
    return deployment


@pytest.mark.parametrize("back_to", ["RNP", "INBOX"])
def test_a_derivation_undone_within_the_grace_period_sends_nothing(graced, back_to):
    d = graced
    [ticket_id] = tickets(d)
    d.move_all("RNP", "Derivar/DTN")
    run(d, "2026-11-16 10:00")
    assert d.mails("derivacion_organo") == [] and d.mails("derivacion_ciudadano") == []
    d.move_all("Derivar/DTN", back_to)  # back where it was, or to the inbox
    run(d, "2026-11-16 10:03")
    run(d, "2026-11-16 10:30")
    assert d.mails("derivacion_organo") == [] and d.mails("derivacion_ciudadano") == []
    assert tickets(d)[ticket_id]["status"] == "open"
    assert "move undone" in d.buzon("ticket", ticket_id).stdout


def test_a_move_kept_takes_effect_after_the_grace_period(graced):
    d = graced
    [ticket_id] = tickets(d)
    d.move_all("RNP", "Incidencias/Alta")
    run(d, "2026-11-16 10:00")
    assert d.mails("incidencia_ciudadano") == []
    run(d, "2026-11-16 10:04")
    assert d.mails("incidencia_ciudadano") == []
    run(d, "2026-11-16 10:05")
    assert len(d.mails("incidencia_ciudadano", SUPPLIER)) == 1
    assert len(d.mails("incidencia_organo", "drnp@osce.test")) == 1
    assert tickets(d)[ticket_id]["status"] == "incident"
