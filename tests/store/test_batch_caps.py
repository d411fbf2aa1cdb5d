"""The caps' counts of a batch (BatchLookups): counted by the database once per window
at prefetch, then kept up to date with what the batch plans. They must equal what the
plain lookups count row by row, whatever the addresses' case and +tags, across office
day and hour boundaries, for acknowledgements and drafts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from daemon.decide.pipeline import Arrival, cap_keys, counted, windows
from daemon.store.batch import BatchLookups, PendingRows
from daemon.store.db import make_engine
from daemon.store.models import SuggestedAnswer, Ticket

LIMA = ZoneInfo("America/Lima")
START = datetime(2026, 12, 3, 22, 30, tzinfo=UTC)  # 17:30 in Lima: the day turns at 05:00 UTC
ADDRESSES = ["Ana@Correo.test", "ana+rnp@correo.test", "ana@correo.test", "luis@correo.test",
             "LUIS+x@CORREO.TEST", "eva@otro.test", "juan@otro.test", "sin-dominio"]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'caps.db'}" if request.param == "sqlite" else \
        request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def seed(engine, count: int, rng: random.Random) -> None:
    with Session(engine) as session:
        for number in range(count):
            at = START + timedelta(minutes=rng.randrange(0, 14 * 60))
            ticket = Ticket(id=f"C-2026-{number:06d}", mailbox="consultas", kind="consulta",
                            citizen_address=rng.choice(ADDRESSES), received_at=at,
                            effective_receipt=at, deadline=at, created_at=at,
                            acknowledged=rng.random() < 0.7)
            session.add(ticket)
            if rng.random() < 0.4:
                session.add(SuggestedAnswer(ticket_id=ticket.id, sources="", similarity=1.0,
                                            text="", created_at=at))
        session.commit()


def test_a_batch_counts_what_the_database_counts_row_by_row(engine):
    rng = random.Random(3)
    seed(engine, 400, rng)
    arrivals = [Arrival(mailbox="consultas", kind="consulta", sha256=str(n),
                        internaldate=START + timedelta(minutes=rng.randrange(0, 14 * 60)))
                for n in range(40)]
    planned = [(kind, rng.choice(ADDRESSES), arrival.internaldate)
               for arrival in arrivals for kind in ("ack", "draft") if rng.random() < 0.5]
    with Session(engine) as session:
        batch = BatchLookups(session, PendingRows())
        batch.prefetch("consultas", arrivals, LIMA)
        for kind, address, at in planned:
            batch.count_sent(kind, address, at)
        checked = 0
        for arrival in arrivals:
            day, hour = windows(arrival.internaldate, LIMA)
            for address in ADDRESSES:
                to, domain, everyone = cap_keys(address)
                for kind, key, (start, end) in (("ack", to, day), ("ack", domain, day),
                                                ("ack", everyone, hour), ("draft", to, day)):
                    in_database = counted(key, (a for a, _at in
                                                batch.sent_between(kind, start, end)))
                    in_batch = counted(key, (a for k, a, at in planned
                                             if k == kind and start <= at <= end))
                    found = (batch.acknowledgements if kind == "ack" else batch.drafts)(
                        key, start, end)
                    assert found == in_database + in_batch, (kind, key, start)
                    checked += found > 0
        assert checked > 100  # most windows hold something: the test compares counts
