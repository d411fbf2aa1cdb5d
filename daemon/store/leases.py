"""Who works what: each mailbox, and the periodic sweeps, are worked by one buzon process
at a time. With PostgreSQL the lease is a session-level advisory lock held on a
connection of its own; with SQLite (one machine) it is a lock on a file beside the
database. Either way the operating system or the database frees it the moment the
holder dies, SIGKILL included, so a standby process takes over on its next try."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger("daemon.leases")


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock (the same in every process)."""
    return int.from_bytes(hashlib.sha256(f"buzon:{name}".encode()).digest()[:8], "big",
                          signed=True)


class PostgresLease:
    def __init__(self, engine: Engine, name: str):
        self.engine, self.name, self.key = engine, name, lock_key(name)
        self._connection = None

    def acquire(self) -> bool:
        """Take the lease if nobody holds it; never waits."""
        if self._connection is not None:
            return self.held()
        connection = self.engine.connect()
        try:
            taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                       {"key": self.key}).scalar()
            connection.commit()
        except Exception:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def held(self) -> bool:
        """Still ours: the connection that holds the lock is alive."""
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1")).scalar()
            self._connection.commit()
            return True
        except Exception:  # noqa: BLE001 - a dead connection has dropped the lock
            self._drop()
            return False

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            self._connection.commit()
        except Exception:  # noqa: BLE001 - closing the connection frees it anyway
            pass
        self._drop()

    def _drop(self) -> None:
        try:
            self._connection.invalidate()  # never back to the pool: the lock goes with it
            self._connection.close()
        except Exception:  # noqa: BLE001
            pass
        self._connection = None


class FileLease:
    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


class NoLease:
    """An in-memory SQLite database is one process's own: nothing to share."""

    def acquire(self) -> bool:
        return True

    def held(self) -> bool:
        return True

    def release(self) -> None:
        pass


def make_lease(engine: Engine, name: str):
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return PostgresLease(engine, name)
    if url.database and url.database != ":memory:":
        safe = "".join(c if c.isalnum() else "_" for c in name)
        return FileLease(Path(f"{url.database}.{safe}.lock"))
    return NoLease()


# Keys name what is worked (the mailbox's address), so two installations sharing one
# PostgreSQL database (in different schemas) never hold each other up.
def mailbox_lease(engine: Engine, settings, name: str):
    return make_lease(engine, f"mailbox:{settings.mailboxes[name].address}")


def sweeps_lease(engine: Engine, settings):
    return make_lease(engine, f"sweeps:{next(iter(settings.mailboxes.values())).address}")
