"""End-to-end: mail delivered to a real Dovecot, `buzon run --once`, folders and acks checked."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import fixture_bytes

LIMA = ZoneInfo("America/Lima")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store_deployment(request):
    return request.getfixturevalue("deployment" if request.param == "sqlite" else "pg_deployment")


def test_consultas_are_ticketed_filed_and_acknowledged_once(any_store_deployment):
    deployment = any_store_deployment
    friday_late = datetime(2026, 11, 20, 16, 45, tzinfo=LIMA)
    deployment.deliver(fixture_bytes("plain_consulta_seace.eml"), friday_late)
    deployment.deliver(fixture_bytes("plain_consulta_rnp.eml"), friday_late)
    deployment.deliver(fixture_bytes("plain_consulta_legal.eml"), friday_late)
    deployment.deliver(fixture_bytes("html_only.eml"), friday_late)
    deployment.buzon("run", "--once")

    assert len(deployment.folder_uids("SEACE")) == 1
    assert len(deployment.folder_uids("RNP")) == 1
    assert len(deployment.folder_uids("Legal")) == 1
    assert len(deployment.folder_uids("Por clasificar")) == 1
    assert deployment.folder_uids("INBOX") == []
    tickets = [json.loads(line) for line in
               deployment.buzon("tickets", "--json").stdout.splitlines()]
    assert len(tickets) == 4
    for ticket in tickets:
        assert ticket["effective_receipt"] == "2026-11-23T08:30:00-05:00"
        assert ticket["deadline"] == "2026-11-24T08:30:00-05:00"
    acks = deployment.acknowledgements()
    assert len(acks) == 4
    seace = deployment.acknowledgements("juan.perez@gmail.test")[0].message
    assert "[C-2026-" in seace["Subject"]
    assert seace["Auto-Submitted"] == "auto-replied"
    assert seace["In-Reply-To"] == "<plain-consulta-seace.2026@mail.gmail.test>"
    # No keyword per ticket or per date: the ticket id is on the card beside the mail.
    flags = deployment.folder_flags("SEACE")[0]
    assert not {f for f in flags if f.startswith(("C-", "Recibido_", "Vence_2"))}, flags
    [card] = deployment.cards("SEACE")
    ticket_id = seace["Subject"].split("[", 1)[1].split("]", 1)[0]
    assert card["Subject"].startswith(f"Ficha {ticket_id}")
    assert card["In-Reply-To"] == "<plain-consulta-seace.2026@mail.gmail.test>"
    body = card.get_body(("plain",)).get_content()
    assert "lunes 23 de noviembre de 2026" in body and "martes 24 de noviembre" in body

    deployment.buzon("run", "--once")
    assert len(deployment.acknowledgements()) == 4
    assert [len(deployment.card_uids(f)) for f in ("SEACE", "RNP", "Legal", "Por clasificar",
                                                 "INBOX")] == [1, 1, 1, 1, 0]
    assert len(deployment.buzon("tickets", "--json").stdout.splitlines()) == 4
