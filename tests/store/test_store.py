"""The store on SQLite and on the machine's PostgreSQL: ticket numbers under concurrency."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import Session, select

from daemon.store.db import make_engine, next_ticket_number, reading
from daemon.store.models import TicketSequence


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


def test_ticket_numbers_are_unique_and_gapless_under_concurrency(database_url):
    engine = make_engine(database_url)
    taken: list[int] = []
    lock = threading.Lock()

    def take(count: int) -> None:
        for _ in range(count):
            with Session(engine) as session:
                number = next_ticket_number(session, "C", 2026)
                session.commit()
            with lock:
                taken.append(number)

    workers = [threading.Thread(target=take, args=(25,)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(taken) == list(range(1, 101))
    with Session(engine) as session:
        assert next_ticket_number(session, "S", 2026) == 1
        assert next_ticket_number(session, "C", 2027) == 1


def test_sqlite_file_is_private(tmp_path):
    make_engine(f"sqlite:///{tmp_path / 'private.db'}")
    assert (tmp_path / "private.db").stat().st_mode & 0o777 == 0o600


def test_numbers_taken_in_blocks_leave_no_gap(database_url):
    from daemon.store.db import TicketNumbers

    engine = make_engine(database_url)
    for used in (3, 0, 70):
        with Session(engine) as session:
            numbers = TicketNumbers(session, block=64)
            taken = [numbers.take("C", 2026) for _ in range(used)]
            numbers.give_back_unused()
            session.commit()
        with Session(engine) as session:
            following = next_ticket_number(session, "C", 2026)
            session.rollback()
        assert following == (taken[-1] + 1 if taken else following)
    with Session(engine) as session:
        assert next_ticket_number(session, "C", 2026) == 3 + 70 + 1


def test_a_read_does_not_wait_for_a_writer(database_url):
    """The answer index and the outbox read while the intake's batch transaction holds
    the write lock (SQLite takes it up front, BEGIN IMMEDIATE): a read sees the last
    committed state at once instead of waiting for the batch."""
    engine = make_engine(database_url)
    with Session(engine) as session:
        next_ticket_number(session, "C", 2026)
        session.commit()
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with Session(engine) as session:
            next_ticket_number(session, "C", 2026)  # the write lock taken, not committed
            holding.set()
            release.wait(30)
            session.commit()

    def read() -> None:
        with reading(engine) as session:
            seen.append(session.exec(select(TicketSequence.value)).all())

    seen: list = []
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        reader = threading.Thread(target=read)
        reader.start()
        reader.join(10)  # SQLite's busy timeout is 30 s: a waiting read is still here
        assert not reader.is_alive(), "the read waited for the writer"
        assert seen == [[1]]  # the committed state, not the writer's
    finally:
        release.set()
        thread.join()
    engine.dispose()
