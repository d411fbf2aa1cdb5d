"""Whose SQLite file it is: root never leaves a database its service user cannot open.

A SQLite database is more than one file: SQLite itself creates the `-wal` and `-shm`
files beside it, and buzon puts its lock files and sent journals there too. Run as root
in the service user's directory, any command would leave some of them owned by root, and
the daemon (running as that user) would then fail to open its own database. Changing the
owner of the database file alone cannot cover the files SQLite creates on its own, so
root is refused instead, with the command to type.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


class DatabaseUnavailable(Exception):
    """The database cannot be opened as asked; the message says what to do.
    `owner` is the user to run as, when running as another user is the remedy."""

    def __init__(self, message: str, owner: str = ""):
        super().__init__(message)
        self.owner = owner


class DatabaseMissing(DatabaseUnavailable):
    """There is no database yet: the first `buzon run` creates it."""


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


@dataclass(frozen=True)
class FileOwners:
    """Who owns the database file and its directory (None: it does not exist)."""

    file_uid: int | None
    directory_uid: int | None

    @classmethod
    def of(cls, path: Path) -> FileOwners:
        return cls(_owner(path), _owner(path.parent))


def _owner(path: Path) -> int | None:
    try:
        return path.stat().st_uid
    except FileNotFoundError:
        return None


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def root_refusal(path: Path, owners: FileOwners, euid: int) -> DatabaseUnavailable | None:
    """Why root must not open this database, or None. Root may open only a database whose
    directory (and file, if there is one) is root's own, as in a root-only test set-up."""
    if euid != 0:
        return None
    if owners.directory_uid is None:
        return DatabaseUnavailable(
            f"the database's directory {path.parent} does not exist; as root, buzon would "
            "create it owned by root, where the service's user could not write. Create it "
            f"for that user first: install -d -o buzon -g buzon -m 0700 {path.parent}")
    for what, uid in (("directory", owners.directory_uid), ("file", owners.file_uid)):
        if uid is not None and uid != 0:
            owner = user_name(uid)
            return DatabaseUnavailable(
                f"the database {what} {path if what == 'file' else path.parent} belongs to "
                f"user {owner}; as root, buzon would leave files there that {owner} cannot "
                "open", owner=owner)
    return None


def check_database_file(url: str, *, must_exist: bool) -> None:
    """Raise DatabaseUnavailable when this process must not open the SQLite database:
    root in another user's directory, a missing file for a read-only command, or another
    user's file this user cannot write (one root left, say)."""
    path = sqlite_file(url)
    if path is None:
        return
    owners = FileOwners.of(path)
    refusal = root_refusal(path, owners, os.geteuid())
    if refusal is not None:
        raise refusal
    if owners.file_uid is None:
        if must_exist:
            raise DatabaseMissing(
                f"the database {path} does not exist (check `database:` in the config; "
                "`buzon run` creates it)")
        return
    if owners.file_uid != os.geteuid() and not os.access(path, os.R_OK | os.W_OK):
        owner = user_name(owners.file_uid)
        raise DatabaseUnavailable(
            f"the database {path} belongs to user {owner} and this user "
            f"({user_name(os.geteuid())}) cannot write it; give it back to the service "
            f"user: chown buzon:buzon {path}*")
