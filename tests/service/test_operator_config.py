"""What an operator meets on the first day (issue 18, points 1 and 5): time settings that
must be quoted, the calendar self-test of `buzon check`, a failing stage told once, log
lines stamped in the office's time, and connection errors that name the setting to fix.
On the real daemon, Dovecot and SMTP server."""

from __future__ import annotations

import re
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
from datetime import date, timedelta
from email.message import EmailMessage

import pytest
from conftest import at, fixture_bytes, run, sqlite_rows, wait_for

from daemon.config import ImapSettings
from daemon.mail.imap import MailboxAccessError, MailboxClient

# "2026-11-24 10:05:02-05:00 INFO daemon.pipeline: ...": the office's time, its offset.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d-05:00 (DEBUG|INFO|WARNING|ERROR) "
                      r"[\w.]+: ")


def consulta(number: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Persona {number} <persona{number}@correo.test>"
    message["To"] = "consultas@osce.test"
    message["Subject"] = f"Consulta {number}"
    message["Message-ID"] = f"<consulta{number}@correo.test>"
    message.set_content("Buenos días, ¿cómo me inscribo como proveedor?")
    return bytes(message)


def buzon(d, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon", "--config", str(d.config_path),
                           *args], env=env or d.env, cwd=d.tmp, capture_output=True,
                          text=True, timeout=120)


# Point 1: times of day --------------------------------------------------------------------

def test_an_unquoted_cutoff_stops_check_with_the_key_and_the_fix(deployment):
    d = deployment
    text = d.config_path.read_text()
    assert "calendar:\n  extra_days_off:" in text
    # As an operator would type it: no quotes. YAML 1.1 reads 16:30 as 990.
    d.config_path.write_text(text.replace("calendar:\n", "calendar:\n  cutoff: 16:30\n", 1))
    result = buzon(d, "check")
    assert result.returncode == 2
    assert ('buzon: configuration error: calendar.cutoff: write the time in quotes, "16:30" '
            "(YAML read 16:30 unquoted as the number 990)") in result.stderr
    assert "configuration: valid" not in result.stdout
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), at("2026-11-24 10:00"))
    assert buzon(d, "run", "--once").returncode == 2
    assert d.acknowledgements() == [] and len(d.folder_uids("INBOX")) == 1  # untouched


def test_check_runs_the_calendar_self_test(deployment):
    d = deployment
    d.buzon("run", "--once")  # check reads the database a first start made
    holiday = date.today() + timedelta(days=40)
    d.write_config(calendar={"cutoff": "17:00", "day_start": "8:00",
                             "extra_days_off": [holiday.isoformat()]})
    result = d.buzon("check")
    assert "calendar: self-test passed (cutoff 17:00, day start 08:00, America/Lima)" \
        in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("calendar: ")]
    assert any(line.startswith("calendar: a minute after the cutoff, received ")
               and " 17:01: official receipt " in line and line.endswith(" 08:00")
               for line in lines), lines
    assert any(f"a configured day off ({holiday:%a}), received {holiday:%a %Y-%m-%d} 12:00"
               in line for line in lines), lines


# A driver that gives buzon the calendar an unquoted cutoff made before it was refused (990
# seconds, in UTC): every mail's receipt stage raises, as in the issue.
BROKEN_CALENDAR = """
import dataclasses, sys
from datetime import UTC, time
from daemon.decide.calendar import WorkCalendar
from daemon.cli.main import main

sound = WorkCalendar.from_settings.__func__

def broken(cls, settings, zone):
    return dataclasses.replace(sound(cls, settings, zone), cutoff=time(0, 16, 30, tzinfo=UTC))

WorkCalendar.from_settings = classmethod(broken)
sys.exit(main(sys.argv[1:]))
"""


def run_broken(d, now: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BROKEN_CALENDAR, "--config", str(d.config_path), "run",
         "--once", "--now", at(now).isoformat()],
        env=d.env, cwd=d.tmp, capture_output=True, text=True, timeout=120)


def test_a_failing_stage_is_an_error_told_to_the_coordinators_once(deployment):
    d = deployment
    for number in range(3):
        d.deliver(consulta(number), at("2026-11-24 10:00"))
    result = run_broken(d, "2026-11-24 10:05")
    assert result.returncode == 1, result.stderr
    failed = [line for line in result.stderr.splitlines()
              if " ERROR daemon.pipeline: mail handled: mailbox=consultas " in line]
    assert len(failed) == 3, result.stderr
    assert all("outcome=quarantine ticket=- folder=Cuarentena acknowledged=no (stage receipt "
               "failed: TypeError: can't compare offset-naive and offset-aware times)" in line
               for line in failed)
    assert "3 mail(s) sent to quarantine by a failing stage" in result.stderr
    assert len(d.folder_uids("Cuarentena")) == 3 and d.acknowledgements() == []
    [alert] = d.mails("etapa_fallida", "coordinador@osce.test")
    body = alert.message.get_body().get_content()
    assert "3 correos del buzón" in body and '"Cuarentena"' in body and "TypeError" in body
    # The same fault again that day: the mails are errors in the log, nobody is told twice.
    for number in range(3, 5):
        d.deliver(consulta(number), at("2026-11-24 11:00"))
    again = run_broken(d, "2026-11-24 11:05")
    assert again.returncode == 1
    assert again.stderr.count(" ERROR daemon.pipeline: mail handled: ") == 2
    assert len(d.mails("etapa_fallida")) == 1
    # Fixed (the real calendar), buzon takes mail in again and exits 0.
    d.deliver(consulta(9), at("2026-11-24 12:00"))
    fixed = run(d, "2026-11-24 12:05")
    assert " ERROR " not in fixed.stderr
    assert len(d.acknowledgements()) == 1
    # The coordinator moves the quarantined mails back to the inbox: now they are taken
    # in like any other, each with its ticket and acknowledgement, once.
    d.move_all("Cuarentena", "INBOX")
    run(d, "2026-11-24 12:10")
    assert d.folder_uids("Cuarentena") == [] and len(d.acknowledgements()) == 6
    run(d, "2026-11-24 12:15")
    assert len(d.acknowledgements()) == 6


# Point 5: logs ------------------------------------------------------------------------------

def test_one_line_per_mail_and_every_line_in_the_office_time(deployment):
    d = deployment
    d.deliver(fixture_bytes("plain_consulta_rnp.eml"), at("2026-11-24 10:00"))
    d.deliver(fixture_bytes("mailer_daemon_sender.eml"), at("2026-11-24 10:01"))
    result = run(d, "2026-11-24 10:05")
    lines = result.stderr.splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), result.stderr
    handled = [line.split(": ", 1)[1] for line in lines if "mail handled:" in line]
    [ticket] = sqlite_rows(d, "SELECT id FROM ticket")
    assert handled[0] == (f"mail handled: mailbox=consultas uid=1 outcome=ticket "
                          f"ticket={ticket[0]} folder=RNP acknowledged=yes (new ticket)")
    assert handled[1].startswith("mail handled: mailbox=consultas uid=2 outcome=automatic "
                                 "ticket=- folder=Automáticos acknowledged=no (")
    assert len(handled) == 2
    # The sweep found nothing to do: no line for it at info.
    assert "sweep at" not in result.stderr


def test_the_idle_daemon_leaves_apscheduler_out_of_the_log(deployment):
    d = deployment
    daemon = subprocess.Popen(
        [sys.executable, "-m", "daemon", "--config", str(d.config_path), "run"],
        env=d.env, cwd=d.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # The sweep job runs at once on start; its first run records the periodic jobs.
        assert wait_for(lambda: _periodic_jobs_seen(d), seconds=30)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert "buzon running" in err
    assert "apscheduler" not in err and "Running job" not in err, err
    assert all(LOG_LINE.match(line) for line in err.splitlines()), err


def _periodic_jobs_seen(d) -> bool:
    try:
        return bool(sqlite_rows(d, "SELECT count(*) FROM periodic_run")[0][0])
    except Exception:  # noqa: BLE001 - the table is made at start
        return False


def test_a_wrong_password_names_the_mailbox_and_its_variable(deployment):
    d = deployment
    env = dict(d.env, BUZON_CONSULTAS_PASSWORD="no-es-la-clave")
    check = buzon(d, "check", env=env)
    assert check.returncode == 2
    [problem] = [line for line in check.stdout.splitlines() if "consultas.imap" in line]
    assert problem.startswith(f"problem: mailboxes.consultas.imap: 127.0.0.1:"
                              f"{d.dovecot.imap_port} refused the login of "
                              f"{d.address('consultas')} (")
    assert "AUTHENTICATIONFAILED" in problem
    assert problem.endswith("check the password in the environment variable "
                            "BUZON_CONSULTAS_PASSWORD (or the systemd credential of that "
                            "name), then restart buzon")
    once = buzon(d, "run", "--once", env=env)
    assert once.returncode == 1
    assert "BUZON_CONSULTAS_PASSWORD" in once.stderr and "Traceback" not in once.stderr


def test_an_empty_password_variable_is_named_before_any_login(deployment):
    d = deployment
    result = buzon(d, "run", "--once", env=dict(d.env, BUZON_CONSULTAS_PASSWORD=""))
    assert result.returncode == 2
    assert ("buzon: configuration error: mailboxes.consultas.imap.password_env: environment "
            "variable BUZON_CONSULTAS_PASSWORD is empty") in result.stderr


def test_ssl_against_a_plain_port_says_so(deployment):
    d = deployment
    d.config["mailboxes"]["consultas"]["imap"]["security"] = "ssl"
    d.write_config()
    result = buzon(d, "check")
    assert result.returncode == 2
    assert (f"problem: mailboxes.consultas.imap: 127.0.0.1:{d.dovecot.imap_port} does not "
            "speak TLS from the first byte, but security is 'ssl': it is a plain IMAP port; "
            "set security to 'starttls' for it") in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_ssl_against_a_plain_relay_says_so(deployment):
    d = deployment
    d.config["smtp"]["security"] = "ssl"
    d.write_config()
    result = buzon(d, "check")
    assert result.returncode == 2
    assert (f"problem: smtp: 127.0.0.1:{d.sink.port} does not speak TLS from the first byte, "
            "but security is 'ssl': it is a plain SMTP port; set security to 'starttls' for "
            "it, or use the server's SSL port (usually 465)") in result.stdout


@pytest.fixture
def tls_port(tmp_path):
    """A port that speaks TLS from the first byte, as an IMAP SSL port (993) does."""
    from test_oauth2 import self_signed_certificate

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed_certificate(tmp_path))

    class Handshake(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.settimeout(10)
            try:
                with context.wrap_socket(self.request, server_side=True) as tls:
                    tls.recv(1)  # then waits, like a server expecting a command
            except (OSError, ssl.SSLError):
                pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handshake)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("security", ["none", "starttls"])
def test_plain_against_an_ssl_port_says_so(tls_port, security):
    settings = ImapSettings(host="127.0.0.1", port=tls_port, security=security,
                            username="consultas@osce.test", password_env="X",
                            timeout_seconds=1)
    client = MailboxClient("consultas", settings, "clave")
    with pytest.raises(MailboxAccessError) as error:
        client.connect()
    assert str(error.value).startswith(
        f"mailboxes.consultas.imap: 127.0.0.1:{tls_port} speaks TLS from the first byte (an "
        f"SSL port), but security is '{security}': set security to 'ssl' for this port")
    with socket.create_connection(("127.0.0.1", tls_port)):
        pass  # the listener is still up: the error came from the mismatch, not a dead port


def test_a_bad_out_path_is_one_line_and_exit_2(deployment):
    d = deployment
    for out, said in ((d.tmp / "no-existe" / "registro.xlsx", "does not exist"),
                      (d.tmp, "is a folder")):
        result = buzon(d, "report", "daily", "--date", "2026-11-24", "--out", str(out))
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().startswith(f"buzon: --out {out}: ")
        assert said in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_check_and_start_warn_of_doubtful_settings(deployment):
    d = deployment
    d.buzon("run", "--once")  # check reads the database a first start made
    d.config["organs"]["DRNP"] = "drnp"
    d.write_config(folders={"move_grace_minutes": 0, "review": "SEACE"})
    check = d.buzon("check")
    assert ("warning: organs.DRNP.address: 'drnp' is not an e-mail address: what is derived "
            "to this organ cannot be delivered") in check.stdout
    assert "warning: folders.review: 'SEACE' is also one of folders.categories" in check.stdout
    d.write_config(folders={"move_grace_minutes": 0})
    start = run(d, "2026-11-24 10:05")
    assert "WARNING daemon.service: configuration: organs.DRNP.address: 'drnp' is not an " \
           "e-mail address" in start.stderr
