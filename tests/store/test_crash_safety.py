"""Kill -9 at the worst moments, restart: no mail lost, no second ticket or acknowledgement."""

from __future__ import annotations

import json
import signal
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import fixture_bytes

LIMA = ZoneInfo("America/Lima")
WHEN = datetime(2026, 11, 25, 9, 15, tzinfo=LIMA)
MAILS = ("plain_consulta_seace.eml", "plain_consulta_rnp.eml", "plain_consulta_legal.eml",
         "html_only.eml", "sugerencia_simple.eml")


def deliver_all(deployment) -> None:
    for name in MAILS:
        mailbox = "sugerencias" if name.startswith("sugerencia") else "consultas"
        deployment.deliver(fixture_bytes(name), WHEN, mailbox=mailbox)


def assert_exactly_once(deployment) -> None:
    tickets = [json.loads(line) for line in deployment.buzon("tickets", "--json").stdout.split("\n")
               if line]
    assert len(tickets) == len(MAILS)
    assert len({t["ticket"] for t in tickets}) == len(MAILS)
    acks = deployment.acknowledgements()
    by_ticket = Counter()
    for ack in acks:
        by_ticket[ack.message["Message-ID"]] += 1
    # One acknowledgement per mail: a resend after a crash carries the Message-ID fixed
    # when it was planned, so it is the same mail to the citizen's client.
    assert len(by_ticket) == len(MAILS)
    subjects = {ack.message["Subject"] for ack in acks}
    assert len(subjects) == len(MAILS)
    assert deployment.folder_uids("INBOX") == []
    assert len(deployment.folder_uids("INBOX", mailbox="sugerencias")) == 1
    filed = sum(len(deployment.folder_uids(f)) for f in ("SEACE", "RNP", "Legal", "Por clasificar"))
    assert filed == len(MAILS) - 1


@pytest.mark.parametrize("crash_at", ["after_commit", "after_send"])
def test_sigkill_then_restart_gives_exactly_one_ticket_and_acknowledgement(deployment, crash_at):
    deliver_all(deployment)
    crashed = deployment.buzon("run", "--once", crash_at=crash_at, check=False)
    assert crashed.returncode == -signal.SIGKILL
    deployment.buzon("run", "--once")
    assert_exactly_once(deployment)
    deployment.buzon("run", "--once")
    assert_exactly_once(deployment)


def test_killed_between_commit_and_move_leaves_the_mail_in_place_until_restart(deployment):
    deliver_all(deployment)
    deployment.buzon("run", "--once", crash_at="after_commit", check=False)
    # The consultas were recorded and their effects planned, but not yet applied.
    assert len(deployment.folder_uids("INBOX")) == len(MAILS) - 1
    assert deployment.acknowledgements() == []
    deployment.buzon("run", "--once")
    assert_exactly_once(deployment)
