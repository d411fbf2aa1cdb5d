"""The first start (issue 18): with no model yet, the daemon watches at once and trains
its first model in a child process; the consultas that arrive meanwhile wait for it and
are then filed by it, suggestions are handled at once, and scikit-learn never enters the
daemon. A model built by another numpy is refused like one from another scikit-learn.
On the real daemon and Dovecot. (How fast it starts is a benchmark figure:
benchmarks/first_start.py.)"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import REPO, fixture_bytes, wait_for

from classifiers.compact import usable
from classifiers.model import ModelRefused, load
from classifiers.runtime import ModelClassifier

LIMA = ZoneInfo("America/Lima")
WHEN = datetime(2026, 11, 26, 11, 0, tzinfo=LIMA)


def start_daemon(d, log: Path) -> subprocess.Popen:
    d.write_config(watcher={"idle_check_seconds": 2, "poll_seconds": 2,
                            "backoff_initial_seconds": 0.2, "backoff_max_seconds": 2})
    return subprocess.Popen(
        [sys.executable, "-m", "daemon", "--config", str(d.config_path), "run"],
        env=d.env, cwd=d.tmp, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def spawned(pid: int) -> bool:
    """A child started by multiprocessing's spawn (the training), by its command line."""
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def holds_scikit_learn(pid: int) -> bool:
    """Whether a process has scikit-learn loaded (its compiled modules are mapped)."""
    return "/sklearn/" in Path(f"/proc/{pid}/maps").read_text()


def tickets(d) -> list[dict]:
    return [json.loads(line) for line in d.buzon("tickets", "--json").stdout.splitlines()]


def test_a_fresh_start_watches_at_once_and_the_waiting_consulta_is_filed_by_the_first_model(
        deployment):
    d = deployment
    model = d.tmp / "model"  # no model, no database: a fresh state
    d.write_config(classifier={"model_dir": str(model)}, routing=[])
    d.deliver(fixture_bytes("plain_consulta_seace.eml"), WHEN)
    d.deliver(fixture_bytes("sugerencia_simple.eml"), WHEN, mailbox="sugerencias")
    log = d.tmp / "daemon.log"
    daemon = start_daemon(d, log)
    try:
        assert wait_for(lambda: "buzon running" in log.read_text(), seconds=60), \
            log.read_text()
        # Training inline would have written the model before that line.
        assert not (model / "model.json").exists()
        # A suggestion needs no model: acknowledged while the model is trained.
        assert wait_for(lambda: d.acknowledgements("martin.alarcon@gmail.test"), seconds=60)
        if not (model / "model.json").exists():
            # The consulta waits for the model: not filed, not acknowledged, not lost.
            assert d.folder_uids("INBOX") and not d.acknowledgements("juan.perez@gmail.test")
            assert not d.folder_uids("Por clasificar")
        # Then the first model files it (a first training takes about a minute).
        assert wait_for(lambda: d.folder_uids("SEACE"), seconds=900), log.read_text()
        assert len(d.acknowledgements("juan.perez@gmail.test")) == 1
        [consulta] = [t for t in tickets(d) if t["kind"] == "consulta"]
        assert consulta["folder"] == "SEACE" and consulta["classification"] == "model"
        assert usable(model)
        # scikit-learn was only ever in the child that trained, which is gone.
        for pid in [daemon.pid, *children(daemon.pid)]:
            assert not holds_scikit_learn(pid), f"process {pid} loaded scikit-learn"
    finally:
        code = stop(daemon)
    text = log.read_text()
    assert code == 0, text
    assert "first model in place" in text and "classifiers.learning" in text  # child's log


def test_a_stop_while_the_first_model_is_trained_ends_the_training(deployment):
    d = deployment
    model = d.tmp / "model"
    d.write_config(classifier={"model_dir": str(model)})
    log = d.tmp / "daemon.log"
    daemon = start_daemon(d, log)
    try:
        assert wait_for(lambda: "buzon running" in log.read_text(), seconds=60)
        assert wait_for(lambda: any(spawned(pid) for pid in children(daemon.pid)),
                        seconds=30)
        training = children(daemon.pid)
        training_children = [pid for pid in training if spawned(pid)]
    finally:
        code = stop(daemon)
    assert code == 0, log.read_text()
    assert not (model / "model.json").exists()
    # The training child is gone when the daemon is; multiprocessing's resource tracker
    # (also a child) ends by itself a moment later, when it sees the daemon's end close.
    assert training_children and not any(alive(pid) for pid in training_children)
    assert wait_for(lambda: not any(alive(pid) for pid in training), seconds=10)


@pytest.fixture
def numpy_refused(trained_model, tmp_path) -> Path:
    """The shared model, as if built by another numpy."""
    copy = tmp_path / "model-numpy"
    shutil.copytree(trained_model, copy)
    meta = json.loads((copy / "model.json").read_text())
    meta["numpy_version"] = "1.21.0"
    (copy / "model.json").write_text(json.dumps(meta))
    return copy


def test_a_model_built_by_another_numpy_is_refused(numpy_refused):
    with pytest.raises(ModelRefused, match="numpy 1.21.0.*retrained"):
        load(numpy_refused)
    assert not usable(numpy_refused)
    assert ModelClassifier(numpy_refused).ready is False


def test_the_daemon_refuses_such_a_model_without_loading_scikit_learn(numpy_refused):
    # The daemon reads the versions from model.json: scikit-learn is never imported.
    probe = ("import sys; from pathlib import Path; from classifiers.runtime import "
             "ModelClassifier; model = ModelClassifier(Path(sys.argv[1])); "
             "print(model.ready, 'sklearn' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe, str(numpy_refused)], cwd=REPO,
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
    assert "numpy 1.21.0" in result.stderr


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """An empty temporary folder with a short path (Dovecot's sockets live in it: a unix
    socket's path is at most 108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="bz", dir="/tmp"))
    folder.chmod(0o755)  # as /tmp: Dovecot's mail user reaches the folders under it
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_demo_leaves_nothing_in_the_temporary_folder(trained_model, short_tmp):
    temporary = short_tmp
    # The demo, given the shared model instead of training its own (a minute).
    script = ("import sys; from pathlib import Path; from daemon.cli.demo import run_demo; "
              "sys.exit(run_demo(model=Path(sys.argv[1])))")
    result = subprocess.run([sys.executable, "-c", script, str(trained_model)], cwd=REPO,
                            env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
                                 "TMPDIR": str(temporary), "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "acknowledgements sent" in result.stdout and "C-20" in result.stdout
    assert list(temporary.iterdir()) == []
    assert usable(trained_model)  # the shared model was copied, not used up


def test_the_weekly_retraining_runs_in_a_child_and_logs_into_the_daemons_log(
        trained_model, tmp_path, caplog):
    from daemon.config import Settings
    from daemon.runtime import Runtime
    from daemon.service.run import retrain_job
    from daemon.store.db import make_engine

    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    settings = Settings.model_validate({
        "database": f"sqlite:///{tmp_path / 'buzon.db'}",
        "mailboxes": {"consultas": {"address": "c@osce.test", "imap": {
            "host": "127.0.0.1", "username": "c@osce.test", "password_env": "P"}}},
        "smtp": {"host": "127.0.0.1"}, "classifier": {"model_dir": str(model)}})
    rt = Runtime.build(settings, {}, make_engine(settings.database))
    caplog.set_level("INFO")
    outcome = retrain_job(rt, datetime.now(LIMA))
    # The same corpus: the candidate scores about as the current model does.
    entry = json.loads((model / "promotions.jsonl").read_text().splitlines()[-1])
    assert outcome.startswith("promoted" if entry["promoted"] else "kept the current model")
    assert entry["examples"] > 1000 and entry["held_out_macro_f1_current"] is not None
    assert any(r.name == "classifiers.learning" and r.getMessage().startswith("retraining: ")
               for r in caplog.records)  # logged in the child, written by the daemon
    assert usable(model)
