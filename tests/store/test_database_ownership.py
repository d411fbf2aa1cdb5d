"""Root never creates the service user's database, and read-only commands create none."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from daemon.store.database_file import DatabaseUnavailable, FileOwners, root_refusal
from daemon.store.db import make_engine

DATABASE = Path("/var/lib/buzon/buzon.db")
SERVICE_UID = 998

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as an operator's sudo")


def test_root_may_open_only_a_database_whose_directory_and_file_are_roots():
    assert root_refusal(DATABASE, FileOwners(file_uid=None, directory_uid=0), euid=0) is None
    assert root_refusal(DATABASE, FileOwners(file_uid=0, directory_uid=0), euid=0) is None
    in_service_directory = root_refusal(DATABASE, FileOwners(None, SERVICE_UID), euid=0)
    assert in_service_directory is not None and "/var/lib/buzon belongs to" in str(
        in_service_directory)
    service_file = root_refusal(DATABASE, FileOwners(SERVICE_UID, 0), euid=0)
    assert service_file is not None and "/var/lib/buzon/buzon.db belongs to" in str(service_file)
    missing_directory = root_refusal(DATABASE, FileOwners(None, None), euid=0)
    assert missing_directory is not None
    assert "install -d -o buzon -g buzon -m 0700 /var/lib/buzon" in str(missing_directory)
    assert missing_directory.owner == ""  # no user to run as: the directory is the remedy


def test_any_other_user_is_left_to_the_file_permissions():
    assert root_refusal(DATABASE, FileOwners(None, None), euid=SERVICE_UID) is None
    assert root_refusal(DATABASE, FileOwners(0, 0), euid=SERVICE_UID) is None


def _service_directory(tmp_path: Path) -> tuple[Path, str]:
    """A database directory owned by another user, as /var/lib/buzon is by buzon."""
    other = pwd.getpwnam("nobody")
    directory = tmp_path / "state"
    directory.mkdir(mode=0o700)
    os.chown(directory, other.pw_uid, other.pw_gid)
    return directory, other.pw_name


@as_root
@pytest.mark.parametrize("command", [("run", "--once"), ("tickets",), ("ticket", "C-2026-000001"),
                                     ("report", "daily", "--date", "2026-11-23", "--out",
                                      "register.xlsx")])
def test_root_is_refused_in_the_service_users_directory_and_creates_nothing(
        deployment, tmp_path, command):
    directory, owner = _service_directory(tmp_path)
    deployment.write_config(database=f"sqlite:///{directory / 'buzon.db'}")
    result = deployment.buzon(*command, check=False)
    assert result.returncode == 2, result.stderr
    assert f"{directory} belongs to user {owner}" in result.stderr
    hint = [line for line in result.stderr.splitlines() if "runuser" in line]
    assert hint == [f"buzon: run as the {owner} user: runuser -u {owner} -- buzon --config "
                    f"{deployment.config_path} {' '.join(command)}"]
    assert "Traceback" not in result.stderr
    assert list(directory.iterdir()) == []


@as_root
def test_root_leaves_a_database_the_service_user_made_alone(deployment, tmp_path):
    directory = tmp_path / "state"
    directory.mkdir()
    database = directory / "buzon.db"
    make_engine(f"sqlite:///{database}").dispose()  # as the service's first start made it
    other = pwd.getpwnam("nobody")
    for path in (directory, *directory.iterdir()):
        os.chown(path, other.pw_uid, other.pw_gid)
    before = {path.name: path.stat().st_uid for path in directory.iterdir()}
    deployment.write_config(database=f"sqlite:///{database}")
    for command in (("tickets",), ("run", "--once")):
        assert deployment.buzon(*command, check=False).returncode == 2
    assert {path.name: path.stat().st_uid for path in directory.iterdir()} == before
    assert set(before.values()) == {other.pw_uid}


@as_root
def test_root_is_told_to_create_a_missing_database_directory(deployment, tmp_path):
    missing = tmp_path / "not-yet"
    deployment.write_config(database=f"sqlite:///{missing / 'buzon.db'}")
    result = deployment.buzon("run", "--once", check=False)
    assert result.returncode == 2
    assert f"install -d -o buzon -g buzon -m 0700 {missing}" in result.stderr
    assert not missing.exists()


@pytest.mark.parametrize("command", [("tickets",), ("tickets", "--json"),
                                     ("ticket", "C-2026-000001")])
def test_read_only_commands_on_a_missing_database_say_so_and_create_nothing(
        deployment, command):
    database = Path(deployment.database.removeprefix("sqlite:///"))
    result = deployment.buzon(*command, check=False)
    assert result.returncode == 2
    assert f"the database {database} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(database.parent.glob("buzon.db*")) == []


def test_check_before_the_first_start_says_there_is_no_database_yet_and_creates_none(
        deployment):
    # An operator checks the configuration and the servers before starting the service.
    database = Path(deployment.database.removeprefix("sqlite:///"))
    result = deployment.buzon("check", check=False)
    assert result.returncode == 0, result.stdout
    assert f"database: none yet: the database {database} does not exist" in result.stdout
    assert "mailbox consultas: reachable" in result.stdout  # the rest is still checked
    assert list(database.parent.glob("buzon.db*")) == []


def test_read_only_commands_find_the_database_the_daemon_made(deployment):
    deployment.buzon("run", "--once")
    assert deployment.buzon("tickets").returncode == 0
    assert "problem: database" not in deployment.buzon("check").stdout


def test_an_empty_postgresql_schema_gets_no_tables_from_a_read_only_command(postgres_url):
    with pytest.raises(DatabaseUnavailable, match="holds no buzon tables yet"):
        make_engine(postgres_url, create=False)
    from sqlalchemy import create_engine, inspect

    assert inspect(create_engine(postgres_url)).get_table_names() == []
    make_engine(postgres_url).dispose()
    make_engine(postgres_url, create=False).dispose()
