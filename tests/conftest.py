"""Fixtures: a real Dovecot and a real SMTP server, and a per-test deployment of buzon."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from imapclient import IMAPClient
from sqlalchemy import create_engine, text

from daemon.flows.cards import CARD_TAG
from daemon.mail.imap import server_folder
from daemon.mail.sandbox import LAYOUTS, DovecotServer, SmtpSink

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parent.parent
PASSWORD = "secreto-de-prueba"
_counter = itertools.count(1)
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


LIMA = ZoneInfo("America/Lima")


def at(text: str) -> datetime:
    """An office time, as the tests write it: "2026-11-24 10:00" in America/Lima."""
    return datetime.fromisoformat(text).replace(tzinfo=LIMA)


def run(deployment, now: str, **options):
    """`buzon run --once` with the clock for due work at the office time `now`."""
    return deployment.buzon("run", "--once", "--now", at(now).isoformat(), **options)


def wait_for(condition, seconds: float = 20) -> bool:
    """Poll `condition` until it holds or `seconds` pass (a bound, never a measurement)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def fixture_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


# BUZON_TEST_LAYOUT=inbox runs every test against folders under "INBOX." with '.', the way
# Courier and Cyrus present them (CI runs the flow tests in both layouts).
LAYOUT = os.environ.get("BUZON_TEST_LAYOUT", "flat")


class LayoutClient(IMAPClient):
    """The tests' own IMAP client: it names folders as the settings do ("Derivar/DRNP")
    and maps them to the server's layout, as an assistant's client shows them."""

    def _name(self, folder):
        layout = LAYOUTS[LAYOUT]
        return server_folder(folder, layout["prefix"], layout["separator"]) \
            if isinstance(folder, str) else folder

    def select_folder(self, folder, readonly=False):
        return super().select_folder(self._name(folder), readonly)

    def folder_exists(self, folder):
        return super().folder_exists(self._name(folder))

    def append(self, folder, msg, flags=(), msg_time=None):
        return super().append(self._name(folder), msg, flags, msg_time)

    def move(self, messages, folder):
        return super().move(messages, self._name(folder))

    def copy(self, messages, folder):
        return super().copy(messages, self._name(folder))

    def create_folder(self, folder):
        return super().create_folder(self._name(folder))


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    server = DovecotServer(password=PASSWORD, layout=LAYOUT).start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> Path:
    """The classifier trained once from the shipped examples, shared read-only by the
    tests, and by the test processes of one run (pytest-xdist): one trains, under a lock,
    and the others take its model. BUZON_TEST_MODEL_DIR (make test) shares it between
    runs too."""
    import fcntl

    from classifiers.learning import ensure_model

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    if os.environ.get("BUZON_TEST_MODEL_DIR"):
        shared = Path(os.environ["BUZON_TEST_MODEL_DIR"])
        shared.mkdir(parents=True, exist_ok=True)
    directory = shared / "trained-model"
    with open(shared / "trained-model.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / "model.json").exists():
            ensure_model(directory, None, ["SEACE", "RNP", "Legal"])
    return directory


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


# How a ticket card's Message-ID starts (daemon.flows.cards): the tests tell cards apart.
CARD_ID_START = f"<{CARD_TAG}."


@dataclass
class Deployment:
    """One buzon installation with its own mailboxes, database and config file."""

    tmp: Path
    dovecot: DovecotServer
    sink: SmtpSink
    tag: str
    database: str
    config_path: Path
    config: dict

    def address(self, mailbox: str) -> str:
        return self.config["mailboxes"][mailbox]["address"]

    @property
    def env(self) -> dict[str, str]:
        # The daemon runs from its own folder: it must import the code under test (this
        # checkout), not whatever checkout the package was installed from.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, (str(REPO), os.environ.get("PYTHONPATH", "")))))
        for box in self.config["mailboxes"].values():
            env[box["imap"]["password_env"]] = PASSWORD
        return env

    def write_config(self, **changes) -> None:
        self.config.update(changes)
        self.config_path.write_text(yaml.safe_dump(self.config, allow_unicode=True))

    def imap(self, mailbox: str = "consultas") -> IMAPClient:
        client = LayoutClient("127.0.0.1", port=self.dovecot.imap_port, ssl=False, timeout=30)
        client.normalise_times = False
        client.login(self.address(mailbox), PASSWORD)
        return client

    def deliver(self, raw: bytes, when: datetime, mailbox: str = "consultas",
                folder: str = "INBOX") -> None:
        """Put a mail in a mailbox with the server's INTERNALDATE set to `when`."""
        with self.imap(mailbox) as client:
            client.append(folder, raw, (), when)

    def move_all(self, folder: str, target: str, mailbox: str = "consultas") -> None:
        """What an assistant does in Thunderbird: drag every mail of a folder to another."""
        with self.imap(mailbox) as client:
            client.select_folder(folder)
            client.move(client.search(), target)

    def folder_exists(self, folder: str, mailbox: str = "consultas") -> bool:
        with self.imap(mailbox) as client:
            return client.folder_exists(folder)

    def _search(self, folder: str, mailbox: str, criteria: list[str]) -> list[int]:
        with self.imap(mailbox) as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            return client.search(criteria)

    def folder_uids(self, folder: str, mailbox: str = "consultas") -> list[int]:
        """The mails of a folder that are not buzon's ticket cards (see card_uids)."""
        return self._search(folder, mailbox, ["NOT", "HEADER", "Message-ID", CARD_ID_START])

    def card_uids(self, folder: str, mailbox: str = "consultas") -> list[int]:
        """buzon's ticket cards ("Ficha <id>") appended beside the tickets' mails."""
        return self._search(folder, mailbox, ["HEADER", "Message-ID", CARD_ID_START])

    def cards(self, folder: str, mailbox: str = "consultas") -> list:
        """The ticket cards of a folder, parsed (email.message.EmailMessage)."""
        uids = self.card_uids(folder, mailbox)
        if not uids:
            return []
        with self.imap(mailbox) as client:
            client.select_folder(folder, readonly=True)
            data = client.fetch(uids, ["BODY.PEEK[]"])
        return [email.message_from_bytes(item[b"BODY[]"], policy=email.policy.default)
                for item in data.values()]

    def folder_flags(self, folder: str, mailbox: str = "consultas") -> list[set[str]]:
        """The flags of each mail of a folder, buzon's cards left out."""
        uids = self.folder_uids(folder, mailbox)
        if not uids:
            return []
        with self.imap(mailbox) as client:
            client.select_folder(folder, readonly=True)
            data = client.fetch(uids, ["FLAGS"])
            return [{f.decode() for f in item[b"FLAGS"]} for item in data.values()]

    def ticket_flags(self, folder: str, ticket_id: str,
                     mailbox: str = "consultas") -> list[set[str]]:
        """The flags of a ticket's mails in a folder, found by the Message-IDs buzon
        recorded for the ticket (no keyword names a ticket)."""
        ids = [row[0] for row in sqlite_rows(
            self, f"SELECT DISTINCT message_id FROM mail WHERE ticket_id = '{ticket_id}' "
                  "AND message_id != ''")]
        with self.imap(mailbox) as client:
            client.select_folder(folder, readonly=True)
            uids = sorted({uid for message_id in ids
                           for uid in client.search(["HEADER", "Message-ID", message_id])})
            data = client.fetch(uids, ["FLAGS"]) if uids else {}
        return [{f.decode() for f in item[b"FLAGS"]} for item in data.values()]

    def card_subjects(self, folder: str, mailbox: str = "consultas") -> list[str]:
        return [str(card["Subject"]) for card in self.cards(folder, mailbox)]

    def buzon(self, *args: str, crash_at: str = "", check: bool = True,
              timeout: float = 120) -> subprocess.CompletedProcess:
        """Run the real `buzon` command in its own process, as an operator would."""
        env = self.env
        env["BUZON_CRASH_AT"] = crash_at
        result = subprocess.run(
            [sys.executable, "-m", "daemon", "--config", str(self.config_path), *args],
            env=env, capture_output=True, text=True, timeout=timeout, cwd=self.tmp,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"buzon {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def sent_by_buzon(self, recipient: str | None = None) -> list:
        senders = {box["address"] for box in self.config["mailboxes"].values()}
        return [m for m in self.sink.messages() if m.envelope_from in senders
                and (recipient is None or recipient in m.recipients)]

    def acknowledgements(self, recipient: str | None = None) -> list:
        return [m for m in self.sent_by_buzon(recipient)
                if m.message["Message-ID"].startswith("<ack.")]

    def mails(self, template: str, recipient: str | None = None) -> list:
        """Mail buzon sent from one template (its Message-ID starts with the name)."""
        prefix = "<" + template.replace("_", "-") + "."
        return [m for m in self.sent_by_buzon(recipient)
                if m.message["Message-ID"].startswith(prefix)]


def make_deployment(tmp_path: Path, dovecot: DovecotServer, sink: SmtpSink,
                    database: str | None = None, model: Path | None = None) -> Deployment:
    tag = f"t{os.getpid()}x{next(_counter)}"
    mailboxes = {}
    for name in ("consultas", "sugerencias"):
        address = f"{name}-{tag}@osce.test"
        mailboxes[name] = {
            "address": address,
            "imap": {"host": "127.0.0.1", "port": dovecot.imap_port, "security": "none",
                     "username": address, "password_env": f"BUZON_{name.upper()}_PASSWORD"},
        }
    database = database or f"sqlite:///{tmp_path / 'buzon.db'}"
    config = {
        "timezone": "America/Lima",
        "database": database,
        "mailboxes": mailboxes,
        "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "none"},
        "people": {"coordinators": ["coordinador@osce.test"],
                   "supervisors": ["supervisor@osce.test"],
                   "assistants": ["asistente@osce.test"]},
        "organs": {"DRNP": "drnp@osce.test", "DSEACE": "dseace@osce.test",
                   "DTN": "dtn@osce.test", "OTI": "oti@osce.test"},
        "calendar": {"extra_days_off": ["2026-12-24"]},
        # Moves act at once here; tests/flows/test_move_grace.py covers the grace period.
        "folders": {"move_grace_minutes": 0},
        # Without a model only the routing rules file consultas: the flows stay exact.
        "classifier": ({"model_dir": str(model), "train_if_missing": False} if model
                       else {"enabled": False}),
        "routing": [
            {"name": "rnp", "folder": "RNP", "subject_patterns": [r"\bRNP\b"]},
            {"name": "seace", "folder": "SEACE", "subject_patterns": [r"\bSEACE\b"]},
            {"name": "penalidad", "folder": "Legal", "body_patterns": [r"penalidad"]},
        ],
    }
    deployment = Deployment(tmp_path, dovecot, sink, tag, database,
                            tmp_path / "rules.yaml", config)
    deployment.write_config()
    return deployment


@pytest.fixture
def deployment(tmp_path, dovecot, smtp_sink) -> Deployment:
    return make_deployment(tmp_path, dovecot, smtp_sink)


@pytest.fixture
def automatic_relay(deployment) -> None:
    """Organs' answers relayed to the citizen by buzon itself (second_level.relay)."""
    deployment.write_config(second_level={"relay": "automatic"})


@pytest.fixture
def model_deployment(tmp_path, dovecot, smtp_sink, trained_model) -> Deployment:
    """A deployment whose classifier is the model trained from the corpus (no routing
    rules, so the model decides)."""
    deployment = make_deployment(tmp_path, dovecot, smtp_sink, model=trained_model)
    deployment.write_config(routing=[])
    return deployment


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the machine's PostgreSQL (127.0.0.1:5432, database test)."""
    admin = create_engine(POSTGRES)
    try:
        with admin.connect() as connection:
            connection.execute(text("select 1"))
    except Exception:  # noqa: BLE001
        if os.environ.get("CI"):
            raise  # CI promises PostgreSQL: its absence is a failure, not a skip
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    schema = f"buzon_test_{uuid.uuid4().hex[:10]}"
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def pg_deployment(tmp_path, dovecot, smtp_sink, postgres_url) -> Deployment:
    return make_deployment(tmp_path, dovecot, smtp_sink, database=postgres_url)


def citizen_consulta(number: int, message_id: str, domain: str = "correo.test",
                     date: str | None = None) -> bytes:
    """A consulta about the RNP from a citizen of its own (backlogs, takeovers)."""
    message = EmailMessage()
    message["From"] = f"Ciudadano {number} <ciudadano{number}@{domain}>"
    message["To"] = "consultas@osce.test"
    message["Subject"] = f"Consulta {number} sobre el RNP"
    message["Message-ID"] = message_id
    if date:
        message["Date"] = date
    message.set_content(f"Consulta número {number}: ¿cómo renuevo mi inscripción?")
    return bytes(message)


def deliver_many(deployment: Deployment, mails: list[bytes], when: datetime,
                 mailbox: str = "consultas") -> None:
    """Put many mails in the inbox over one connection (a flood, a backlog)."""
    with deployment.imap(mailbox) as client:
        for raw in mails:
            client.append("INBOX", raw, (), when)


def sqlite_rows(deployment: Deployment, query: str) -> list[tuple]:
    """Rows of a query on the deployment's SQLite database (what no command shows)."""
    engine = create_engine(deployment.database)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()
