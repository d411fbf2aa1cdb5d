"""The classifier trained in a child process, never in the daemon: scikit-learn costs a
process over 100 MB and a first training about a minute, and the daemon predicts with
the model's arrays alone. Two uses: the weekly retraining, and at start a first model
when there is none or the saved one is refused (built by another scikit-learn or
numpy). The child is spawned (a fresh interpreter: nothing of the daemon's threads or
connections), and its log lines reach the daemon's log.

While a first model is trained the daemon watches the mailboxes; new consultas wait
for it (at most FIRST_MODEL_HOLD_SECONDS) rather than being filed without it.
"""

from __future__ import annotations

import logging
import logging.handlers
import threading
import time
from multiprocessing import get_context
from pathlib import Path

from daemon.flows.alerts import part_failed
from daemon.runtime import Runtime

log = logging.getLogger("daemon.training")

# How long new consultas wait for a first model at most. A first training takes about a
# minute on two cores (55 s alone, 80 s while the machine is busy); past this bound the
# consultas are filed without it (to the review folder) and the model is used once it
# is in place. A waiting watcher keeps its heartbeat, so it is not reported as stalled.
FIRST_MODEL_HOLD_SECONDS = 600


class TrainingFailed(Exception):
    """The child process failed to train (its error), or died."""


class Stopped(Exception):
    """The daemon was told to stop while a model was being trained."""


def train_in_child(model_dir: Path, database: str, categories: list[str], first: bool,
                   stop: threading.Event | None = None) -> dict | None:
    """Train in a spawned child and wait for it. `first`: a first model, only when there
    is none or the saved one is refused (classifiers.learning.ensure_model); otherwise a
    candidate promoted only if it scores no lower (retrain). Returns retrain's entry."""
    context = get_context("spawn")
    logs = context.Queue()
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, name="buzon-training", daemon=True,
        args=(sending, logs, logging.getLogger().getEffectiveLevel(), str(model_dir),
              database, categories, first))
    listener = logging.handlers.QueueListener(logs, _ToLoggers())
    listener.start()
    process.start()
    sending.close()
    try:
        while not receiving.poll(1):
            if stop is not None and stop.is_set():
                process.terminate()
                raise Stopped("stopped while training")
            if not process.is_alive() and not receiving.poll(0):
                raise TrainingFailed(f"the training process died (exit {process.exitcode})")
        try:
            ok, value = receiving.recv()
        except EOFError as exc:
            raise TrainingFailed(f"the training process died (exit {process.exitcode})") \
                from exc
        if not ok:
            raise TrainingFailed(value)
        return value
    finally:
        process.join(timeout=30)
        receiving.close()
        listener.stop()


class _ToLoggers:
    """Hands each of the child's log records to the daemon's logger of that name."""

    level = logging.NOTSET

    def handle(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


def _child(result, logs, level: int, model_dir: str, database: str, categories: list[str],
           first: bool) -> None:
    root = logging.getLogger()
    root.handlers = [logging.handlers.QueueHandler(logs)]
    root.setLevel(level)
    try:
        from classifiers.learning import all_examples, ensure_model, retrain
        from daemon.flows.harvest import mailbox_examples
        from daemon.store.db import make_engine

        def examples():
            return mailbox_examples(make_engine(database))

        if first:
            ensure_model(Path(model_dir), examples, categories)
            result.send((True, None))
        else:
            result.send((True, retrain(Path(model_dir), all_examples(examples(), categories))))
    except Exception as exc:  # noqa: BLE001 - told to the daemon, which alerts
        logging.getLogger("daemon.training").exception("training failed")
        result.send((False, f"{type(exc).__name__}: {exc}"))
    finally:
        result.close()


class FirstModel:
    """A first model trained in a child process while the daemon watches. Started once
    the judging process is forked (the thread that waits for the child must not be
    copied into it). `wait` tells a watcher whether to go on: the model is in place,
    training failed (consultas then wait in the review folder, the coordinators are
    told), or FIRST_MODEL_HOLD_SECONDS have passed."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self._done = threading.Event()
        self._stop = threading.Event()
        self._started = 0.0
        self._thread: threading.Thread | None = None
        self._late_told = False

    def start(self) -> None:
        self._started = time.monotonic()
        log.warning("no usable model in %s: training a first one in a child process "
                    "(about a minute); new consultas wait for it",
                    self.rt.settings.classifier.model_dir)
        self._thread = threading.Thread(target=self._train, name="first-model", daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`; True when the consultas need wait no longer."""
        if self._thread is None or self._done.wait(min(seconds, self._left())):
            return True
        if self._left() > 0:
            return False
        if not self._late_told:
            self._late_told = True
            log.warning("the first model is not ready after %d s: consultas are filed "
                        "without it until it is", FIRST_MODEL_HOLD_SECONDS)
        return True

    def _left(self) -> float:
        return max(0.0, self._started + FIRST_MODEL_HOLD_SECONDS - time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _train(self) -> None:
        settings = self.rt.settings
        try:
            train_in_child(settings.classifier.model_dir, settings.database,
                           list(settings.folders.categories), first=True, stop=self._stop)
            classifier = self.rt.classifier
            if classifier is not None:
                classifier.reload_if_changed()  # the judging process does so by itself
            if classifier is None or not classifier.ready:
                raise TrainingFailed(f"no usable model in {settings.classifier.model_dir}")
            log.info("first model in place after %.0f s: consultas are filed by it",
                     time.monotonic() - self._started)
        except Stopped:
            log.info("first model training stopped with the daemon")
        except Exception as exc:  # noqa: BLE001 - the model is optional; the intake goes on
            part_failed(self.rt, "classifier", exc)
        finally:
            self._done.set()


def hold_for_first_model(rt: Runtime, mailbox: str, stop: threading.Event,
                         keep_alive=None) -> None:
    """New consultas wait while a first model is trained (suggestions need none).
    `keep_alive` is called every 15 s meanwhile (the IMAP connection and heartbeat)."""
    training = rt.first_model
    if (training is None or training.done or rt.settings.mailbox_kind(mailbox) != "consulta"
            or (rt.classifier is not None and rt.classifier.ready)):
        return
    log.info("mailbox %s: new consultas wait for the first model", mailbox)
    while not stop.is_set() and not training.wait(15):
        if keep_alive is not None:
            keep_alive()
