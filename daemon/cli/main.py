"""The `buzon` command line (see ../README.md for the interface)."""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import shlex
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from daemon.cli.logs import setup_logging
from daemon.config import ConfigError, Settings, load_settings, resolve_secrets
from daemon.store.database_file import DatabaseUnavailable

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


class OutputError(Exception):
    """A file the operator named (--out) that cannot be written: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit 2 with the problem, as argparse does, but testable
        self.print_usage(sys.stderr)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="buzon", description="Help-desk daemon for OECE's citizen mailboxes.")
    parser.add_argument("--config", type=Path, default=None,
                        help="rules file (default: $BUZON_CONFIG or ./rules.yaml)")
    parser.add_argument("--log-level", default=os.environ.get("BUZON_LOG_LEVEL", "INFO"))
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="watch every mailbox until SIGTERM/SIGINT")
    run.add_argument("--once", action="store_true", help="one pass over everything, then exit")
    run.add_argument("--now", type=_iso_datetime, default=None,
                     help="the clock for due-work decisions (ISO 8601), with --once")

    commands.add_parser("check", help="validate config, reach mailboxes and relay")

    tags = commands.add_parser("tags", help="buzon's keywords as Thunderbird tags")
    tags.add_argument("--thunderbird", action="store_true", required=True,
                      help="print user.js prefs (Spanish names, colours)")
    tags.add_argument("--policy", action="store_true",
                      help="a policies.json fragment instead of user.js lines")

    cal = commands.add_parser("calendar", help="official receipt and deadline of a time")
    cal.add_argument("received", type=_iso_datetime)
    cal.add_argument("--kind", default="consulta", choices=["consulta", "sugerencia"])

    tickets = commands.add_parser("tickets", help="list tickets")
    tickets.add_argument("--json", action="store_true")
    tickets.add_argument("--open", action="store_true", help="only tickets not yet answered")

    classify = commands.add_parser("classify", help="which folder each mail would go to")
    classify.add_argument("--json", action="store_true")
    classify.add_argument("files", nargs="+", type=Path, metavar="FILE.eml")

    suggest = commands.add_parser("suggest", help="the suggested answer for a mail, and its "
                                  "sources")
    suggest.add_argument("file", type=Path, metavar="FILE.eml")

    train = commands.add_parser("train", help="train the classifier, promote it if no worse")
    train.add_argument("--from-mailbox", metavar="NAME", default=None,
                       help="first harvest the hand-sorted category folders of this mailbox")

    evaluate = commands.add_parser("evaluate", help="score the model on the held-out split")
    evaluate.add_argument("--plot", type=Path, metavar="FILE.png", default=None,
                          help="draw the confusion matrix and the calibration curve")

    trace = commands.add_parser("ticket", help="a ticket's whole trace: every step, who, when")
    trace.add_argument("ticket_id", metavar="ID")

    report = commands.add_parser("report", help="write a workbook")
    kinds = report.add_subparsers(dest="report", required=True, parser_class=_Parser)
    daily = kinds.add_parser("daily", help="the daily register of one day")
    daily.add_argument("--date", required=True, type=_iso_date)
    daily.add_argument("--out", required=True, type=Path, metavar="FILE.xlsx")
    monthly = kinds.add_parser("monthly", help="the monthly indicators")
    monthly.add_argument("--month", required=True, type=_month)
    monthly.add_argument("--out", required=True, type=Path, metavar="FILE.xlsx")
    yearly = kinds.add_parser("sugerencias", help="the year's suggestions per organ")
    yearly.add_argument("--year", required=True, type=int)
    yearly.add_argument("--out", required=True, type=Path, metavar="FILE.xlsx")

    commands.add_parser("demo", help="the daemon on a throwaway local mail server")
    return parser


def _month(value: str) -> str:
    import re

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a month like 2026-11")
    return value


def _iso_date(value: str):
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-11-30") from None


def _iso_datetime(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 date and time") from None


def config_path(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    return Path(os.environ.get("BUZON_CONFIG", "rules.yaml"))


def _aware(moment: datetime, settings: Settings) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=settings.zone)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"buzon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        log_format = setup_logging(args.log_level)
    except ValueError as exc:
        print(f"buzon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "demo":
        from daemon.cli.demo import run_demo

        return run_demo()
    # Everything buzon writes (the database and its journal, locks, models, workbooks)
    # holds citizens' data: readable by buzon's own user only.
    os.umask(0o077)
    try:
        settings = load_settings(config_path(args.config))
        log_format.zone = settings.zone  # every line from here on in the office's time
        return _dispatch(args, settings)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"buzon: configuration error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except DatabaseUnavailable as exc:
        print(f"buzon: {exc}", file=sys.stderr)
        if exc.owner:
            print(f"buzon: run as the {exc.owner} user: runuser -u {exc.owner} -- "
                  f"{_same_command(args, argv)}", file=sys.stderr)
        return EXIT_USAGE
    except OutputError as exc:
        print(f"buzon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence says what failed
        from daemon.mail.imap import MailboxAccessError

        if not isinstance(exc, MailboxAccessError):  # that one says what to do: no trace
            logging.getLogger("daemon").exception("failed")
        print(f"buzon: {exc}" if isinstance(exc, MailboxAccessError)
              else f"buzon: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _same_command(args, argv: list[str] | None) -> str:
    """This command line, to run as another user (with runuser: util-linux is on every
    Debian machine, sudo may not be), with the program's full path and the config file
    spelt out, so it does not depend on the caller's PATH, directory or environment."""
    program = sys.argv[0] if os.path.basename(sys.argv[0]) == "buzon" else "buzon"
    words = list(sys.argv[1:] if argv is None else argv)
    if args.config is None:
        words = ["--config", str(config_path(None).resolve()), *words]
    return shlex.join([program, *words])


def _dispatch(args, settings: Settings) -> int:
    if args.command == "calendar":
        return _calendar(args, settings)
    if args.command == "tags":
        from daemon.cli.tags import thunderbird_policy, thunderbird_prefs

        print((thunderbird_policy if args.policy else thunderbird_prefs)(settings), end="")
        return EXIT_OK
    from daemon.store.db import make_engine

    if args.command == "tickets":
        return _tickets(args, make_engine(settings.database, create=False), settings)
    if args.command == "report":
        return _report(args, make_engine(settings.database), settings)
    if args.command == "ticket":
        return _trace(args, make_engine(settings.database, create=False), settings)
    if args.command == "suggest":
        return _suggest(args, settings, make_engine(settings.database))
    if args.command in ("classify", "evaluate") or (
            args.command == "train" and not args.from_mailbox):
        from daemon.cli import learning

        return learning.dispatch(args, settings, make_engine(settings.database), {})
    secrets = resolve_secrets(settings)
    if args.command == "train":
        from daemon.cli import learning

        return learning.dispatch(args, settings, make_engine(settings.database), secrets)
    if args.command == "check":
        from daemon.cli.checks import run_checks

        return run_checks(settings, secrets, lambda: make_engine(settings.database, create=False))
    if args.command == "run":
        return _run(args, settings, secrets)
    raise UsageError(f"unknown command {args.command}")


def _suggest(args, settings: Settings, engine) -> int:
    from daemon.flows.knowledge import Knowledge, close_enough, suggestion_text
    from daemon.mail.parsing import parse_message
    from daemon.runtime import Runtime

    try:
        inbound = parse_message(args.file.read_bytes())
    except OSError as exc:
        print(f"buzon: {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    rt = Runtime.build(settings, {}, engine)
    found = Knowledge(settings, engine).suggest(inbound.question)
    for source, score in found:
        print(f"{score:.2f}  {source.key}  {source.title}")
    ticket = {"id": "C-0000-000000", "mailbox": next(iter(settings.mailboxes)),
              "citizen_name": inbound.from_name, "citizen_address": inbound.reply_address,
              "subject": inbound.subject, "category": ""}
    if not close_enough(settings, found):
        print(f"no suggestion: nothing reaches answers.min_similarity "
              f"({settings.answers.min_similarity})")
        return EXIT_OK
    print()
    print(suggestion_text(rt, ticket, found))
    return EXIT_OK


def _calendar(args, settings: Settings) -> int:
    from daemon.decide.calendar import WorkCalendar

    calendar = WorkCalendar.from_settings(settings.calendar, settings.zone)
    received = _aware(args.received, settings).astimezone(settings.zone)
    effective = calendar.effective_receipt(received)
    deadline = calendar.deadline(args.kind, effective, settings.deadlines)
    print(json.dumps({"received": received.isoformat(), "effective_receipt": effective.isoformat(),
                      "deadline": deadline.isoformat()}))
    return EXIT_OK


def _tickets(args, engine, settings: Settings) -> int:
    from daemon.reports.listings import list_tickets, ticket_row

    for ticket in list_tickets(engine, open_only=args.open):
        row = ticket_row(ticket, settings.zone)
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(f"{row['ticket']:<16} {row['mailbox']:<12} {row['status']:<9} "
                  f"{row['folder'] or '-':<16} vence {row['deadline'][:16]}  {row['subject'][:50]}")
    return EXIT_OK


def _trace(args, engine, settings: Settings) -> int:
    from sqlmodel import Session, select

    from daemon.reports.listings import ticket_row
    from daemon.store.models import Ticket, TraceEvent

    with Session(engine) as session:
        ticket = session.get(Ticket, args.ticket_id)
        if ticket is None:
            print(f"buzon: no ticket {args.ticket_id}", file=sys.stderr)
            return EXIT_FAILURE
        events = list(session.exec(select(TraceEvent).where(
            TraceEvent.ticket_id == ticket.id).order_by(TraceEvent.at, TraceEvent.id)))
    row = ticket_row(ticket, settings.zone)
    print(f"{row['ticket']}  {row['subject']}")
    print(f"  citizen {row['citizen']}, mailbox {row['mailbox']}, status {row['status']}, "
          f"folder {row['folder'] or 'INBOX'}")
    print(f"  official receipt {row['effective_receipt']}, deadline {row['deadline']}, "
          f"answered {row['answered_at'] or '-'}")
    for event in events:
        print(f"  {event.at.astimezone(settings.zone):%Y-%m-%d %H:%M:%S}  {event.actor:<22} "
              f"{event.event}: {event.detail}")
    return EXIT_OK


def _writable(path: Path) -> None:
    """Raises OutputError for an --out the workbook could not be written to, before the
    workbook is made."""
    if path.is_dir():
        raise OutputError(f"--out {path}: is a folder; name the file, like {path / 'informe.xlsx'}")
    if not path.parent.is_dir():
        raise OutputError(f"--out {path}: the folder {path.parent} does not exist")


def _write_out(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise OutputError(f"--out {path}: cannot be written ({exc.strerror})") from None


def _report(args, engine, settings: Settings) -> int:
    from daemon.reports.workbooks import daily_register, monthly_indicators, suggestions_by_organ
    from daemon.store.db import utcnow

    _writable(args.out)
    if args.report == "sugerencias":
        per_organ, data = suggestions_by_organ(engine, settings, args.year)
        _write_out(args.out, data)
        print(f"{args.out}: " + (", ".join(
            f"{organ} {row['received']} received, {row['implemented']} implemented, "
            f"{row['pending']} pending" for organ, row in sorted(per_organ.items()))
            or "no suggestions sent to an organ"))
        return EXIT_OK
    if args.report == "monthly":
        month = monthly_indicators(engine, settings, args.month, utcnow())
        _write_out(args.out, month.data)
        print(f"{args.out}: {month.received} received, {month.resolved} resolved, "
              f"{month.in_process} in process")
        return EXIT_OK
    register = daily_register(engine, settings, args.date, utcnow())
    _write_out(args.out, register.data)
    print(f"{args.out}: {register.received} received, {register.answered} answered "
          f"({register.answered_on_time} on time)")
    return EXIT_OK


def _run(args, settings: Settings, secrets: dict[str, str]) -> int:
    from daemon.cli.checks import doubtful_settings
    from daemon.runtime import Runtime
    from daemon.service.parts import (
        load_classifier,
        load_knowledge,
        start_first_model,
        start_judge,
    )
    from daemon.service.run import run_forever, run_once
    from daemon.store.db import make_engine

    for warning in doubtful_settings(settings):
        logging.getLogger("daemon.service").warning("configuration: %s", warning)
    rt = Runtime.build(settings, secrets, make_engine(settings.database),
                       crash_at=os.environ.get("BUZON_CRASH_AT", ""))
    load_classifier(rt, in_child=True)  # a first model is trained beside the daemon
    load_knowledge(rt)
    start_judge(rt)
    start_first_model(rt)
    try:
        if args.once:
            now = _aware(args.now, settings) if args.now else None
            counts = run_once(rt, now=now)
            for mailbox, count in counts.items():
                logging.getLogger("daemon.service").info("%s: %d new mails", mailbox, count)
            if rt.stage_failures:
                # Nothing is lost (those mails are in quarantine), but a cron job or a
                # test must see that buzon itself failed.
                logging.getLogger("daemon.service").error(
                    "%d mail(s) sent to quarantine by a failing stage (see the errors above)",
                    rt.stage_failures)
                return EXIT_FAILURE
            return EXIT_OK
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        # `kill -USR1` prints every thread's stack to the log: what a stuck daemon is doing.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        run_forever(rt, stop)
        return EXIT_OK
    finally:
        if rt.judge is not None:
            rt.judge.close()


if __name__ == "__main__":
    sys.exit(main())
