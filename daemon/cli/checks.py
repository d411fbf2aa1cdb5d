"""`buzon check`: the config is valid, every mailbox and the relay answer, watchers beat."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Engine, make_url

from daemon.decide.calendar import WorkCalendar, self_test
from daemon.mail.imap import MailboxAccessError, MailboxClient
from daemon.mail.ports import wrong_kind_of_port
from daemon.mail.smtp import probe
from daemon.store.database_file import DatabaseMissing, DatabaseUnavailable
from daemon.store.db import heartbeats, stale_seconds


def insecure_settings(settings) -> list[str]:
    warnings = []
    for name, box in settings.mailboxes.items():
        if box.imap.security == "none" and box.imap.host not in ("127.0.0.1", "localhost", "::1"):
            warnings.append(f"mailboxes.{name}.imap.security is 'none' for a remote host: "
                            "passwords travel in clear text")
    if settings.smtp.security == "none" and settings.smtp.host not in ("127.0.0.1", "localhost"):
        warnings.append("smtp.security is 'none' for a remote host: mail travels in clear text")
    if make_url(settings.database).password:
        warnings.append("database: the URL holds a password; use trust/peer authentication "
                        "or a ~/.pgpass file readable by buzon's user only")
    if str(settings.classifier.model_dir).startswith("/tmp"):
        warnings.append("classifier.model_dir is under /tmp: anyone on the machine could "
                        "replace the model")
    if not settings.trust.authserv_id and (settings.people.supervisors or settings.organs):
        warnings.append("trust.authserv_id is not set: commands by mail (approvals, organs' "
                        "answers, surveys) are trusted on the sender's address and the "
                        "request's capability alone (name the border mail server)")
    return warnings


def doubtful_settings(settings) -> list[str]:
    """Settings that validate but would misfile or lose mail (checked at start too)."""
    warnings = []
    for key, organ in settings.organs.items():
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", organ.address):
            warnings.append(f"organs.{key}.address: {organ.address!r} is not an e-mail "
                            "address: what is derived to this organ cannot be delivered")
    folders = settings.folders
    if folders.review in folders.categories:
        warnings.append(f"folders.review: {folders.review!r} is also one of folders.categories: "
                        "mail the model is unsure of would look filed, and an assistant's "
                        "correction out of it would be taken for a classification")
    return warnings


def calendar_self_test(settings, today) -> list[str]:
    """Print the official receipt of a few synthetic instants; the wrong ones returned."""
    zone = settings.zone
    calendar = WorkCalendar.from_settings(settings.calendar, zone)
    problems = []
    for sample in self_test(calendar, settings.deadlines, today):
        received = f"{sample.received.astimezone(zone):%a %Y-%m-%d %H:%M}"
        if sample.error:
            problems.append(f"calendar: {sample.label}, received {received}: {sample.error}")
        elif not sample.passed:
            problems.append(f"calendar: {sample.label}, received {received}: official receipt "
                            f"{sample.got.astimezone(zone):%a %Y-%m-%d %H:%M}, expected "
                            f"{sample.expected.astimezone(zone):%a %Y-%m-%d %H:%M}")
        else:
            print(f"calendar: {sample.label}, received {received}: official receipt "
                  f"{sample.got.astimezone(zone):%a %Y-%m-%d %H:%M}")
    if not problems:
        print(f"calendar: self-test passed (cutoff {settings.calendar.cutoff:%H:%M}, "
              f"day start {settings.calendar.day_start:%H:%M}, {settings.timezone})")
    return problems


def _server_report(name: str, client: MailboxClient) -> list[str]:
    """What the server offers, printed; what buzon needs and is refused, returned."""
    profile = client.profile()
    print(f"mailbox {name}: namespace {profile['namespace']}; features "
          f"{', '.join(profile['features']) or 'none'}; special folders "
          + ", ".join(f"{k} {v}" for k, v in profile["special folders"].items()))
    problems = [f"mailboxes.{name}: the server refuses {step} ({error})"
                for step, error in client.write_probe()]
    if not profile["custom keywords"]:
        print(f"mailbox {name}: the server keeps no custom keywords (PERMANENTFLAGS has no "
              "\\*): buzon shows states by folder and \\Flagged only")
    if not problems:
        print(f"mailbox {name}: write probe passed (create, append, keyword, move, expunge, "
              "delete)")
    return problems


def run_checks(settings, secrets: dict[str, str], open_database: Callable[[], Engine]) -> int:
    """`open_database` opens the existing database only: none yet (before the first start)
    is said and passes, one buzon may not open is a problem line."""
    problems: list[str] = []
    print("configuration: valid")
    for warning in insecure_settings(settings) + doubtful_settings(settings):
        print(f"warning: {warning}")
    problems += calendar_self_test(settings, datetime.now(settings.zone).date())
    for name, box in settings.mailboxes.items():
        client = MailboxClient(name, box.imap, secrets.get(box.imap.password_env, ""))
        try:
            client.connect()
            client.select(box.imap.inbox)
            idle = "IDLE" if client.has_idle else "polling (no IDLE)"
            print(f"mailbox {name}: reachable at {box.imap.host}:{box.imap.port}, {idle}, "
                  f"logged in with {client.mechanism}")
            problems += _server_report(name, client)
        except MailboxAccessError as exc:  # says itself which setting to look at
            problems.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - every problem is reported, not raised
            problems.append(f"mailboxes.{name}.imap: cannot reach or log in to "
                            f"{box.imap.host}:{box.imap.port}: {type(exc).__name__}: {exc}")
        finally:
            client.close()
    smtp = settings.smtp
    try:
        probe(smtp, secrets.get(smtp.password_env) if smtp.password_env else None)
        print(f"smtp: relay {smtp.host}:{smtp.port} answers")
    except Exception as exc:  # noqa: BLE001
        problems.append(wrong_kind_of_port("smtp", "SMTP", smtp.host, smtp.port, smtp.security)
                        or f"smtp: cannot reach {smtp.host}:{smtp.port}: "
                           f"{type(exc).__name__}: {exc}")
    now = datetime.now(UTC)
    try:
        states = heartbeats(open_database())
    except DatabaseMissing as exc:  # before the first start: like a watcher not yet seen
        print(f"database: none yet: {exc}")
        states = {}
    except DatabaseUnavailable as exc:
        problems.append(f"database: {exc}"
                        + (f" (run buzon check as user {exc.owner})" if exc.owner else ""))
        states = {}
    for name in settings.mailboxes:
        state = states.get(name)
        if state is None:
            print(f"watcher {name}: no heartbeat recorded yet")
            continue
        age = stale_seconds(state, now)
        line = f"watcher {name}: last heartbeat {age:.0f} s ago ({state.heartbeat_note})"
        if age > settings.watcher.heartbeat_stale_seconds:
            problems.append(line + f": stale (over {settings.watcher.heartbeat_stale_seconds} s)")
        else:
            print(line)
    for problem in problems:
        print(f"problem: {problem}")
    return 2 if problems else 0
