"""The judging process: it gives what judging in the daemon gives, batches handed over
ahead come back to their own callers, and a judge that dies leaves the daemon judging
inline with nothing lost; a real `run --once` files a backlog through it."""

from __future__ import annotations

import os
import signal
import threading
from datetime import UTC, datetime

import pytest
from conftest import deliver_many, make_deployment, run, sqlite_rows

from daemon.config import load_settings
from daemon.flows.judging import Judge, judge
from daemon.mail.imap import FetchedMail
from daemon.runtime import Runtime
from daemon.service.parts import load_classifier, load_knowledge
from daemon.store.db import make_engine

QUESTIONS = [
    ("Renovacion RNP", "Como renuevo mi inscripcion en el RNP como proveedor de bienes?"),
    ("Clave SEACE", "Olvide la clave del SEACE y no puedo registrar mi oferta."),
    ("Penalidad", "Cuando se aplica la penalidad por mora en un contrato de obra?"),
    ("Hola", "Buenos dias, adjunto el documento."),
]


def fetched(count: int, start: int = 1) -> list[FetchedMail]:
    mails = []
    for number in range(start, start + count):
        subject, body = QUESTIONS[number % len(QUESTIONS)]
        raw = (f"From: Ciudadana {number} <c{number}@correo.test>\r\nTo: consultas@osce.test\r\n"
               f"Subject: {subject}\r\nMessage-ID: <j{number}@correo.test>\r\n\r\n{body}\r\n"
               ).encode()
        mails.append(FetchedMail(uid=number, internaldate=datetime.now(UTC), size=len(raw),
                                 raw=raw, sha256=f"{number:064x}", sha256_scope="raw"))
    return mails


@pytest.fixture
def judging_runtime(tmp_path, dovecot, smtp_sink, trained_model):
    deployment = make_deployment(tmp_path, dovecot, smtp_sink, model=trained_model)
    settings = load_settings(deployment.config_path)
    rt = Runtime.build(settings, {}, make_engine(settings.database))
    load_classifier(rt)
    load_knowledge(rt)
    assert rt.classifier is not None and rt.classifier.ready and rt.knowledge is not None
    yield rt
    if rt.judge is not None:
        rt.judge.close()


def comparable(judged) -> tuple:
    return (judged.parsed, judged.judged, judged.predictions,
            {uid: [(source.key, round(score, 9)) for source, score in found]
             for uid, found in judged.suggestions.items()}, judged.failed)


def test_the_judge_gives_what_judging_inline_gives(judging_runtime):
    rt = judging_runtime
    mails = fetched(12)
    inline = judge(rt, mails, frozenset(), "consulta")
    rt.judge = Judge(rt)
    assert rt.judge.pid != os.getpid()
    ahead = [rt.judge.submit(mails[:6], frozenset(), "consulta"),
             rt.judge.submit(mails[6:], frozenset(), "consulta")]
    # The second batch is asked for first: each answer still reaches its own caller.
    second, first = ahead[1].result(), ahead[0].result()
    assert sorted(first.parsed) == list(range(1, 7)) and sorted(second.parsed) == \
        list(range(7, 13))
    merged = type(first)(parsed={**first.parsed, **second.parsed},
                         judged={**first.judged, **second.judged},
                         predictions={**first.predictions, **second.predictions},
                         suggestions={**first.suggestions, **second.suggestions})
    assert comparable(merged) == comparable(inline)
    assert inline.predictions and any(found for found in inline.suggestions.values())


def test_watchers_of_two_mailboxes_share_the_judge(judging_runtime):
    rt = judging_runtime
    rt.judge = Judge(rt)
    results: dict[int, object] = {}

    def watcher(start: int) -> None:
        for round_ in range(5):
            mails = fetched(3, start + 10 * round_)
            results[start + 10 * round_] = rt.judge.submit(mails, frozenset(),
                                                           "consulta").result()

    threads = [threading.Thread(target=watcher, args=(start,)) for start in (1, 100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 10
    for start, judged in results.items():
        assert sorted(judged.parsed) == [start, start + 1, start + 2]


def test_a_judge_that_dies_leaves_the_daemon_judging_inline(judging_runtime, caplog):
    rt = judging_runtime
    rt.judge = Judge(rt)
    handed = rt.judge.submit(fetched(4), frozenset(), "consulta")
    handed.result()
    os.kill(rt.judge.pid, signal.SIGKILL)
    rt.judge._process.join(timeout=10)
    pending = rt.judge.submit(fetched(4, 20), frozenset(), "consulta")
    judged = pending.result()
    assert sorted(judged.parsed) == [20, 21, 22, 23] and judged.predictions
    assert "judging process is gone" in caplog.text
    # And from then on without asking it again.
    later = rt.judge.submit(fetched(2, 40), frozenset(), "consulta")
    assert later.judge_ is None and sorted(later.result().parsed) == [40, 41]


def test_a_backlog_is_filed_through_the_judge(tmp_path, dovecot, smtp_sink, trained_model):
    deployment = make_deployment(tmp_path, dovecot, smtp_sink, model=trained_model)
    # Small batches: several are in the judge while the ones before are recorded.
    deployment.config["watcher"] = {"fetch_batch": 7}
    deployment.write_config()
    mails = [mail.raw.replace(b"Subject: Renovacion RNP", b"Subject: Consulta")
             for mail in fetched(40)]
    deliver_many(deployment, mails, datetime(2026, 11, 24, 14, 0, tzinfo=UTC))
    result = run(deployment, "2026-11-24 10:05")
    assert result.returncode == 0, result.stderr
    assert "judging process is gone" not in result.stderr
    tickets = sqlite_rows(deployment, "SELECT folder, classification_source FROM ticket")
    assert len(tickets) == 40
    # The model judged them (in the judge): by its own folders, not the review folder.
    # (Routing rules take the SEACE-password and penalty mails; "adjunto el documento"
    # is too short for the model.)
    by_model = [folder for folder, source in tickets if source == "model"]
    assert by_model == ["RNP"] * 10
    assert sorted(source for _folder, source in tickets if source != "model") \
        == ["rule"] * 20 + ["too_short"] * 10
    assert len(tickets) == len(sqlite_rows(deployment, "SELECT id FROM ticket WHERE "
                                                       "acknowledged = 1"))
