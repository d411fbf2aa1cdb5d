"""The long-running daemon (IDLE, reconnects, clean stop) and the operator commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from conftest import fixture_bytes, wait_for

LIMA = ZoneInfo("America/Lima")
WHEN = datetime(2026, 11, 26, 11, 0, tzinfo=LIMA)


def start_daemon(deployment) -> subprocess.Popen:
    config = dict(deployment.config)
    # IDLE is re-issued only every 300 s and nothing polls: a mail handled within the
    # tests' 20-second wait was pushed by the server through IDLE.
    config["watcher"] = {"idle_check_seconds": 300, "poll_seconds": 300,
                         "backoff_initial_seconds": 0.2, "backoff_max_seconds": 2}
    deployment.write_config(**config)
    return subprocess.Popen(
        [sys.executable, "-m", "daemon", "--config", str(deployment.config_path), "run"],
        env=deployment.env, cwd=deployment.tmp, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )



def stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=30)
    return process.returncode, err


def test_the_daemon_handles_mail_as_it_arrives_and_stops_cleanly(deployment):
    daemon = start_daemon(deployment)
    try:
        assert wait_for(lambda: deployment.folder_exists("RNP"))  # the watcher is up
        deployment.deliver(fixture_bytes("plain_consulta_rnp.eml"), WHEN)
        assert wait_for(lambda: len(deployment.acknowledgements()) == 1)
        assert wait_for(lambda: len(deployment.folder_uids("RNP")) == 1)
    finally:
        code, err = stop(daemon)
    assert code == 0, err
    assert "buzon stopped" in err


def test_the_daemon_reconnects_after_the_server_restarts(deployment, dovecot):
    daemon = start_daemon(deployment)
    try:
        deployment.deliver(fixture_bytes("plain_consulta_seace.eml"), WHEN)
        assert wait_for(lambda: len(deployment.acknowledgements()) == 1)
        dovecot.restart()
        deployment.deliver(fixture_bytes("plain_consulta_legal.eml"), WHEN)
        assert wait_for(lambda: len(deployment.acknowledgements()) == 2, seconds=40)
    finally:
        code, err = stop(daemon)
    assert code == 0, err
    assert "reconnecting" in err


def test_check_reports_mailboxes_relay_and_heartbeats(deployment):
    deployment.buzon("run", "--once")
    result = deployment.buzon("check")
    assert "mailbox consultas: reachable" in result.stdout
    assert "mailbox sugerencias: reachable" in result.stdout
    assert "smtp: relay" in result.stdout
    assert "watcher consultas: last heartbeat" in result.stdout
    # What the server offers, as it says, and a write probe that leaves nothing behind.
    from conftest import LAYOUT

    prefix = {"flat": "''", "inbox": "'INBOX.'"}[LAYOUT]
    assert f"mailbox consultas: namespace prefix {prefix}" in result.stdout
    assert "MOVE" in result.stdout and "Sent" in result.stdout
    assert "mailbox consultas: write probe passed" in result.stdout
    with deployment.imap() as client:
        assert not [f for f in client.list_folders() if "buzon-prueba" in f[2]]


def test_check_names_every_unreachable_part_and_exits_2(deployment):
    config = deployment.config
    config["mailboxes"]["consultas"]["imap"]["port"] = 1
    config["smtp"]["port"] = 1
    deployment.write_config()
    result = deployment.buzon("check", check=False)
    assert result.returncode == 2
    assert "mailboxes.consultas.imap: cannot reach" in result.stdout
    assert "smtp: cannot reach" in result.stdout


def test_a_wrong_config_key_is_named_and_nothing_is_touched(deployment):
    deployment.deliver(fixture_bytes("plain_consulta_seace.eml"), WHEN)
    deployment.config["mailboxes"]["consultas"]["imap"]["prot"] = 143
    deployment.config["calendar"]["cutoff"] = "cuatro y media"
    deployment.write_config()
    result = deployment.buzon("run", "--once", check=False)
    assert result.returncode == 2
    assert "mailboxes.consultas.imap.prot: unknown setting" in result.stderr
    assert "calendar.cutoff" in result.stderr
    assert len(deployment.folder_uids("INBOX")) == 1
    assert deployment.acknowledgements() == []


def test_a_missing_password_variable_is_named(deployment):
    env = {k: v for k, v in deployment.env.items() if k != "BUZON_CONSULTAS_PASSWORD"}
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "--config", str(deployment.config_path), "run",
         "--once"], env=env, capture_output=True, text=True, cwd=deployment.tmp)
    assert result.returncode == 2
    assert "BUZON_CONSULTAS_PASSWORD is not set" in result.stderr


def test_calendar_prints_receipt_and_deadline_as_json(deployment):
    result = deployment.buzon("calendar", "2026-11-27T16:45:00-05:00")
    assert json.loads(result.stdout) == {
        "received": "2026-11-27T16:45:00-05:00",
        "effective_receipt": "2026-11-30T08:30:00-05:00",
        "deadline": "2026-12-01T08:30:00-05:00",
    }
    sugerencia = json.loads(deployment.buzon("calendar", "2026-12-24T10:00",
                                             "--kind", "sugerencia").stdout)
    assert sugerencia["effective_receipt"] == "2026-12-28T08:30:00-05:00"


def test_config_from_the_environment_variable(deployment):
    env = dict(deployment.env, BUZON_CONFIG=str(deployment.config_path))
    result = subprocess.run([sys.executable, "-m", "daemon", "calendar", "2026-11-28T09:00"],
                            env=env, capture_output=True, text=True, cwd=os.path.dirname(
                                deployment.config_path))
    assert result.returncode == 0
    assert json.loads(result.stdout)["effective_receipt"] == "2026-11-30T08:30:00-05:00"


def test_open_tickets_only(deployment):
    deployment.deliver(fixture_bytes("plain_consulta_seace.eml"), WHEN)
    deployment.buzon("run", "--once")
    rows = [json.loads(line) for line in
            deployment.buzon("tickets", "--json", "--open").stdout.splitlines()]
    assert [row["status"] for row in rows] == ["open"]
    assert {"ticket", "mailbox", "status", "folder", "effective_receipt", "deadline",
            "answered_at"} <= rows[0].keys()
