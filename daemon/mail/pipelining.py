"""RFC 2920 PIPELINING on a connection aiosmtplib opened: one write and one wait per mail.

aiosmtplib sends a command and waits for its answer (MAIL, RCPT, DATA, the message: four
round trips a mail) and drops answers that arrive while another awaits pickup, so it
cannot pipeline. Once aiosmtplib has greeted the relay, secured the connection and
logged in, this module borrows the connection's transport: each write carries the
message of the mail before (whose end the relay then acknowledges) and the next mail's
MAIL, RCPT and DATA; the relay's answers are read back in order.

A mail counts as sent only once the relay answered its end of data with 2xx, the moment
`record` is told: a connection lost then leaves at most one mail in flight, whose fate
is unknown (it stays queued). Anything unexpected closes the connection: a relay that
was left in the middle of a message discards it, so nothing half-sent is delivered.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings


@dataclass(frozen=True)
class Reply:
    code: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


class ReplyReader(asyncio.Protocol):
    """The relay's answers, in order, as they arrive (a multi-line answer is one)."""

    MAX_LINE = 8192

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self._buffer = bytearray()
        self._lines: list[bytes] = []
        self._wanted = 0
        self._waiter: asyncio.Future | None = None
        self.lost: BaseException | None = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\n")) != -1:
            line = bytes(self._buffer[:end + 1]).rstrip(b"\r\n")
            del self._buffer[:end + 1]
            if len(line) < 3 or not line[:3].isdigit():
                self._fail(aiosmtplib.SMTPResponseException(-1, f"malformed reply {line!r}"))
                return
            self._lines.append(line[4:])
            if line[3:4] != b"-":  # the last line of an answer
                text = b"\n".join(self._lines).decode("utf-8", "replace")
                self.replies.append(Reply(int(line[:3]), text))
                self._lines = []
        if len(self._buffer) > self.MAX_LINE:
            self._fail(aiosmtplib.SMTPResponseException(-1, "reply line too long"))
        self._wake()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._fail(exc or aiosmtplib.SMTPServerDisconnected("the relay closed the connection"))

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("the relay closed the connection"))
        return False

    def _fail(self, exc: BaseException) -> None:
        if self.lost is None:
            self.lost = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done() and (
                self.lost is not None or len(self.replies) >= self._wanted):
            self._waiter.set_result(None)

    async def take(self, count: int, timeout: float) -> list[Reply]:
        """The next `count` answers; raises when the connection fails first."""
        if len(self.replies) < count and self.lost is None:
            self._wanted = count
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            except TimeoutError:
                raise aiosmtplib.SMTPReadTimeoutError("the relay did not answer in time") \
                    from None
            finally:
                self._waiter = None
        if len(self.replies) < count:
            raise self.lost  # type: ignore[misc]
        return [self.replies.popleft() for _ in range(count)]


def envelope(client: aiosmtplib.SMTP, sender: str, recipients: list[str],
             raw: bytes) -> tuple[bytes, bytes]:
    """(MAIL, RCPT and DATA commands, the message as sent after DATA), formatted as
    aiosmtplib's sendmail formats them. Raises ValueError for an address that cannot go
    on a command line (aiosmtplib's own check) or is not ASCII."""
    message = normalize_message_line_endings(raw)
    size = f" SIZE={len(message)}" if client.supports_extension("size") else ""
    commands = f"MAIL FROM:{quote_address(sender)}{size}\r\n" + "".join(
        f"RCPT TO:{quote_address(recipient)}\r\n" for recipient in recipients) + "DATA\r\n"
    try:
        return commands.encode("ascii"), PERIOD_REGEX.sub(b"..", message) + b".\r\n"
    except UnicodeEncodeError as exc:
        raise ValueError(f"an address is not ASCII: {exc}") from None


@dataclass(frozen=True)
class Outcome:
    """What the relay said to one mail: accepted, or refused with its answer. `stop`: a
    temporary refusal, after which the rest wait for another flush."""

    accepted: bool
    reply: Reply
    permanent: bool = False
    stop: bool = False


def _refusal(reply: Reply) -> Outcome:
    return Outcome(False, reply, permanent=reply.code >= 500, stop=reply.code < 500)


def _end_of_data(reply: Reply) -> Outcome:
    """The relay's answer to a message's end: the mail was taken, or refused."""
    return Outcome(True, reply) if reply.ok else _refusal(reply)


async def send_pipelined(client: aiosmtplib.SMTP, items: list[tuple[int, bytes, bytes, int]],
                         timeout: float, record: Callable[[int, Outcome], None]) -> bool:
    """Send (index, commands, message, recipients) over the client's connection,
    telling `record(index, outcome)` of each answer as it comes; mails not told of stay
    untried. Returns whether the connection can be used again (else it was closed)."""
    transport = client.transport
    own = transport.get_protocol()
    reader = ReplyReader()
    transport.set_protocol(reader)
    usable = False
    try:
        in_flight: int | None = None  # the mail whose message goes in the next write
        message = b""
        reset = False  # a transaction refused after its MAIL: RSET before the next
        for index, commands, body, recipients in items:
            transport.write(message + (b"RSET\r\n" if reset else b"") + commands)
            if in_flight is not None:
                # Told the moment its answer arrives, before the next envelope's: the
                # window in which a kill would send it again stays one answer wide.
                [done] = await reader.take(1, timeout)
                outcome = _end_of_data(done)
                record(in_flight, outcome)
                if outcome.stop:
                    return False  # its successor's message must not follow: drop it
            replies = await reader.take(reset + 2 + recipients, timeout)
            if reset:
                replies.pop(0)
            in_flight, message, reset = None, b"", False
            mail, rcpts, data = replies[0], replies[1:-1], replies[-1]
            if data.code == 354 and mail.ok and any(r.ok for r in rcpts):
                in_flight, message = index, body
                continue
            if data.code == 354:  # a relay that took DATA with nobody to send to
                transport.write(b".\r\n")
                await reader.take(1, timeout)
            refused = Outcome(False, mail, permanent=mail.code >= 500) if not mail.ok else \
                _all_refused(rcpts) if not any(r.ok for r in rcpts) else _refusal(data)
            record(index, refused)
            reset = mail.ok
            if refused.stop:
                break
        if in_flight is not None:
            transport.write(message)
            [done] = await reader.take(1, timeout)
            record(in_flight, _end_of_data(done))
        elif reset:
            transport.write(b"RSET\r\n")
            await reader.take(1, timeout)
        usable = reader.lost is None
        return usable
    finally:
        if usable:
            transport.set_protocol(own)
        else:
            client.close()


def _all_refused(rcpts: list[Reply]) -> Outcome:
    """Every recipient refused: permanent when each refusal is; the lane goes on (as
    aiosmtplib's SMTPRecipientsRefused is handled)."""
    text = "; ".join(str(r) for r in rcpts)
    return Outcome(False, Reply(rcpts[0].code, text), permanent=all(r.code >= 500 for r in rcpts))
