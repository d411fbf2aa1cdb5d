"""The log's format: one line per event, stamped in the office's time zone with its offset."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, tzinfo

from daemon.config import stamp

LINE = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The protocol libraries log whole mails (and could log credentials) at debug level: they
# stay at info, whatever buzon's own level, so no mail body reaches a log.
QUIET_AT_INFO = ("imapclient", "aiosmtplib", "mailparser", "asyncio")
# apscheduler writes two lines a minute for the sweep job ("Running job", "executed
# successfully"): 2,880 lines a day of nothing. Its warnings (a missed run) still show.
QUIET_AT_WARNING = ("apscheduler",)


class ZoneFormatter(logging.Formatter):
    """Stamps each line in `zone` (UTC until the configuration names the office's)."""

    def __init__(self, zone: tzinfo = UTC):
        super().__init__(LINE)
        self.zone = zone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return stamp(datetime.fromtimestamp(record.created, UTC), self.zone)


def setup_logging(level: str) -> ZoneFormatter:
    """buzon's log on stderr (the journal under systemd); raises ValueError on an unknown
    level name."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"--log-level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    formatter = ZoneFormatter()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    logging.basicConfig(level=numeric, handlers=[handler], force=True)
    for name in QUIET_AT_INFO:
        logging.getLogger(name).setLevel(max(logging.INFO, numeric))
    for name in QUIET_AT_WARNING:
        logging.getLogger(name).setLevel(max(logging.WARNING, numeric))
    return formatter
