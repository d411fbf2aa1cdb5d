"""Judging a fetched batch: parse each mail, cut the text that is judged, predict its
category and find the known answers close to it. This is most of the intake's Python
time and needs no database transaction, so it runs in a process of its own (the
judge) while the daemon records the batch before it: the two cores work at once.

The judge is forked from the daemon once the model and the answer index are loaded,
before any thread starts (forking a process with threads can copy a held lock). It
shares their memory until one side changes it, picks up a promoted model from disk by
itself and refreshes the answer index at each batch as the daemon does. Should it die,
the daemon judges inline from then on and says so once.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
import threading
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from classifiers.compact import gram_hashes
from daemon.decide.forwarding import unwrap
from daemon.flows.knowledge import SEARCHED
from daemon.mail.imap import FetchedMail
from daemon.mail.parsing import Inbound, parse_message
from daemon.runtime import Runtime

log = logging.getLogger("daemon.judge")

# How much of a mail's text is judged (routed, classified, matched to known answers): a
# question is at the top, and the n-grams of the classifier and the knowledge cost about
# 250 bytes of memory per character they read (a 900 kB text took 230 MB and 1.3 s).
JUDGED_TEXT_CHARS = 20_000


def judged_part(inbound: Inbound) -> Inbound:
    """The mail as it is judged: its text cut to JUDGED_TEXT_CHARS. A reply that joins a
    ticket (an organ's answer, a verdict) is still read whole."""
    if len(inbound.text) <= JUDGED_TEXT_CHARS:
        return inbound
    return replace(inbound, text=inbound.text[:JUDGED_TEXT_CHARS])


class MailText(NamedTuple):
    """What judging reads of a fetched mail (FetchedMail has these too)."""

    uid: int
    raw: bytes
    problem: str


@dataclass
class Judged:
    """A batch judged, by UID: the mail as parsed (recorded whole), the part judged, the
    model's (category, confidence) and the known answers close to it. `failed` names the
    optional parts that failed (part, error): the intake tells the coordinators."""

    parsed: dict[int, Inbound] = field(default_factory=dict)
    judged: dict[int, Inbound] = field(default_factory=dict)
    predictions: dict[int, tuple[str, float]] | None = None
    suggestions: dict[int, list] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)


def judge(rt: Runtime, mails: list[FetchedMail] | list[MailText], staff: frozenset[str],
          kind: str) -> Judged:
    """Judge a batch in this process (pure but for the model and the index it reads)."""
    result = Judged()
    for mail in mails:
        inbound = _parsed(mail, staff)
        result.parsed[mail.uid] = inbound
        result.judged[mail.uid] = judged_part(inbound)
    model = rt.classifier if rt.classifier is not None and rt.classifier.ready else None
    if kind == "consulta" and model is not None and result.judged:
        try:
            uids = list(result.judged)
            texts = [result.judged[uid].question for uid in uids]
            result.predictions = dict(zip(uids, model.predict_texts(texts), strict=True))
        except Exception as exc:  # noqa: BLE001 - without the model, mail waits in review
            result.failed.append(("classifier", f"{type(exc).__name__}: {exc}"))
    if kind == "consulta" and rt.knowledge is not None:
        try:
            result.suggestions = {uid: rt.knowledge.suggest(inbound.question, SEARCHED)
                                  for uid, inbound in result.judged.items()}
        except Exception as exc:  # noqa: BLE001 - drafts are optional, the intake is not
            result.failed.append(("knowledge", f"{type(exc).__name__}: {exc}"))
    # The n-grams the classifier and the knowledge shared for this batch: kept, that cache
    # holds 4,096 texts' n-grams however long (96 MB after 300 long mails).
    gram_hashes.cache_clear()
    return result


def _parsed(mail: FetchedMail | MailText, staff: frozenset[str]) -> Inbound:
    inbound = parse_message(mail.raw)
    # What the fetch found wrong (a header cut short) sends the mail to quarantine.
    if mail.problem:
        return replace(inbound, problem=mail.problem)
    # Staff forwarding between the agency's mailboxes: the original citizen's mail.
    return unwrap(inbound, staff)


class Judge:
    """The judging process, and the daemon's end of its pipe. `submit` hands it a batch
    and returns at once; `Pending.result` waits for that batch. Batches are judged in the
    order they were handed over; several may be in the pipe (the next batch is handed
    over before the one before is recorded), from several watchers."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self._sending, self._receiving = threading.Lock(), threading.Lock()
        self._numbers = itertools.count()
        self._arrived: dict[int, Judged | None] = {}  # answers read for another caller
        ours, theirs = multiprocessing.Pipe()
        self._pipe = ours
        self._process = multiprocessing.get_context("fork").Process(
            target=_serve, args=(rt, theirs, ours), name="buzon-judge", daemon=True)
        self._process.start()
        theirs.close()
        self._broken = False

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def submit(self, mails: list[FetchedMail], staff: frozenset[str], kind: str) -> Pending:
        # Only what judging reads crosses the pipe (a mail's date has a tzinfo of
        # imapclient's that does not unpickle).
        texts = [MailText(mail.uid, mail.raw, mail.problem) for mail in mails]
        with self._sending:
            number = next(self._numbers)
            if not self._broken:
                try:
                    self._pipe.send((number, texts, staff, kind))
                    return Pending(self.rt, self, mails, staff, kind, number)
                except (OSError, EOFError, ValueError) as exc:
                    self._gone(exc)
        return Pending(self.rt, None, mails, staff, kind)

    def receive(self, number: int) -> Judged | None:
        """The answer for batch `number`; None when the judge failed on it or is gone."""
        with self._receiving:
            while number not in self._arrived and not self._broken:
                try:
                    answered, judged = self._pipe.recv()
                except (OSError, EOFError) as exc:
                    self._gone(exc)
                    break
                self._arrived[answered] = judged
            return self._arrived.pop(number, None)

    def _gone(self, exc: BaseException) -> None:
        if not self._broken:
            self._broken = True
            log.error("the judging process is gone (%s: %s); mail is judged in the daemon "
                      "from now on", type(exc).__name__, exc)

    def close(self) -> None:
        try:
            self._pipe.close()
        finally:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()


@dataclass
class Pending:
    """A batch handed to the judge (`number` in its pipe); `result()` gives its Judged,
    judged here, inline, when there is no judge or it could not judge the batch."""

    rt: Runtime
    judge_: Judge | None
    mails: list[FetchedMail]
    staff: frozenset[str]
    kind: str
    number: int = -1
    _result: Judged | None = None

    def result(self) -> Judged:
        if self._result is None:
            answer = self.judge_.receive(self.number) if self.judge_ is not None else None
            self._result = answer if answer is not None else judge(
                self.rt, self.mails, self.staff, self.kind)
        return self._result


def _serve(rt: Runtime, pipe, parent_end) -> None:
    """The judging process: a batch in, its Judged out, until the daemon closes the pipe
    (or dies: the pipe then ends too)."""
    parent_end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the daemon's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    rt.engine.dispose(close=False)  # the daemon's connections stay the daemon's
    while True:
        try:
            number, texts, staff, kind = pipe.recv()
        except (EOFError, OSError):
            os._exit(0)
        if rt.classifier is not None:
            rt.classifier.reload_if_changed()  # a promoted model, as the daemon takes it
        if rt.knowledge is not None and kind == "consulta":
            try:
                rt.knowledge.refresh()  # the consultas answered since the last batch
            except Exception:  # noqa: BLE001 - the index as it was serves on
                log.warning("the judge could not refresh the answer index", exc_info=True)
        try:
            judged = judge(rt, texts, staff, kind)
        except Exception:  # noqa: BLE001 - the daemon judges this batch itself
            log.exception("the judge failed on a batch; the daemon judges it")
            judged = None
        pipe.send((number, judged))
