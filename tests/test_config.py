"""Configuration: the contract's minimal config works; wrong keys are named."""

from __future__ import annotations

from datetime import time

import pytest
import yaml

from daemon.config import ConfigError, parse_settings

MINIMAL = """
timezone: America/Lima
database: sqlite:////var/lib/buzon/buzon.db
mailboxes:
  consultas:
    address: consultas@osce.test
    imap: {host: 127.0.0.1, port: 10143, security: none, username: consultas@osce.test, password_env: BUZON_CONSULTAS_PASSWORD}
  sugerencias:
    address: sugerencias@osce.test
    imap: {host: 127.0.0.1, port: 10143, security: none, username: sugerencias@osce.test, password_env: BUZON_SUGERENCIAS_PASSWORD}
smtp: {host: 127.0.0.1, port: 10025, security: none}
people:
  coordinators: [coordinador@osce.test]
  supervisors: [supervisor@osce.test]
  assistants: [asistente@osce.test]
organs:
  DRNP: drnp@osce.test
  DSEACE: dseace@osce.test
  DTN: dtn@osce.test
  OTI: oti@osce.test
"""  # noqa: E501 - as the contract writes it


def test_the_contracts_minimal_config_gets_the_manuals_defaults():
    settings = parse_settings(yaml.safe_load(MINIMAL))
    assert settings.calendar.cutoff == time(16, 30)
    assert settings.calendar.day_start == time(8, 30)
    assert settings.calendar.country == "PE"
    assert settings.deadlines.consulta_hours == 24
    assert settings.folders.categories == ["SEACE", "RNP", "Legal"]
    assert (settings.folders.review, settings.folders.quarantine, settings.folders.automatic) \
        == ("Por clasificar", "Cuarentena", "Automáticos")
    assert settings.mailbox_kind("consultas") == "consulta"
    assert settings.mailbox_kind("sugerencias") == "sugerencia"
    assert settings.ticket_prefix("sugerencias") == "S"
    assert settings.organs["DRNP"].address == "drnp@osce.test"
    assert settings.organs["DRNP"].deadline_working_days == 5


def test_security_defaults_to_verified_tls():
    data = yaml.safe_load(MINIMAL)
    del data["mailboxes"]["consultas"]["imap"]["security"]
    del data["smtp"]["security"]
    settings = parse_settings(data)
    assert settings.mailboxes["consultas"].imap.security == "ssl"
    assert settings.smtp.security == "ssl"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["mailboxes"]["consultas"]["imap"].update(prot=1),
         "mailboxes.consultas.imap.prot: unknown setting"),
        (lambda d: d["smtp"].update(security="tls"), "smtp.security:"),
        (lambda d: d.update(timezone="Lima"), "timezone: unknown time zone 'Lima'"),
        (lambda d: d["mailboxes"]["consultas"].update(address="consultas"),
         "mailboxes.consultas.address: must be an email address"),
        (lambda d: d.update(routing=[{"name": "x", "folder": "Otros",
                                      "subject_patterns": ["a"]}]),
         "folder 'Otros' is not one of folders.categories"),
        (lambda d: d.update(routing=[{"name": "x", "folder": "RNP",
                                      "subject_patterns": ["("]}]),
         "routing[0].subject_patterns: pattern '(' is not a valid regular expression"),
        (lambda d: d.update(schedule={"daily_register": "at five"}),
         "schedule.daily_register: 'at five' is not a cron line"),
        (lambda d: d.pop("smtp"), "smtp: required setting is missing"),
        (lambda d: d.update(incidents={"third_level": "TI"}),
         "incidents.third_level: 'TI' is not one of the organs"),
        (lambda d: d.update(incidents={"response_working_days": {"Alta": 0}}),
         "incidents.response_working_days: Alta: 0 is not a number of working days"),
        (lambda d: d.update(incidents={"third_level_working_days": 9}),
         "incidents.third_level_working_days:"),
        (lambda d: d["mailboxes"]["consultas"]["imap"].update(
            auth="xoauth2", oauth2={"provider": "microsoft", "client_id": "app"}),
         "mailboxes.consultas.imap.oauth2: tenant: required with provider microsoft"),
        (lambda d: d["mailboxes"]["consultas"]["imap"].update(
            auth="xoauth2", oauth2={"provider": "azure"}),
         "mailboxes.consultas.imap.oauth2.provider: Input should be 'generic', 'microsoft'"),
        (lambda d: d["mailboxes"]["consultas"]["imap"].update(
            auth="xoauth2", oauth2={"provider": "microsoft", "tenant": "t", "client_id": "a",
                                    "token_url": "https://x/token"}),
         "mailboxes.consultas.imap.oauth2: token_url: not used with provider microsoft"),
        (lambda d: d["mailboxes"]["consultas"]["imap"].update(
            auth="xoauth2", oauth2={"provider": "microsoft", "tenant": "t", "client_id": "a",
                                    "authority_host": "http://login.test"}),
         "oauth2: authority_host: 'http://login.test' must start with https://"),
        (lambda d: d["mailboxes"]["consultas"]["imap"].update(
            auth="xoauth2", oauth2={"client_id": "a"}),
         "mailboxes.consultas.imap.oauth2: token_url: required with provider generic"),
        (lambda d: d["smtp"].update(
            auth="xoauth2", username="u", oauth2={"provider": "command"}),
         "smtp.oauth2: token_command: required with provider command"),
    ],
)
def test_a_wrong_setting_is_named(change, expected):
    data = yaml.safe_load(MINIMAL)
    change(data)
    with pytest.raises(ConfigError) as error:
        parse_settings(data)
    assert any(expected in problem for problem in error.value.problems), error.value.problems


def test_oauth2_providers_read_as_documented():
    data = yaml.safe_load(MINIMAL)
    data["mailboxes"]["consultas"]["imap"].update(
        auth="xoauth2", oauth2={"provider": "microsoft", "tenant": "oece.gob.pe",
                                "client_id": "app"})
    data["mailboxes"]["sugerencias"]["imap"].update(
        auth="oauthbearer", oauth2={"token_command": ["/usr/local/bin/token-for", "s"]})
    settings = parse_settings(data)
    microsoft = settings.mailboxes["consultas"].imap.oauth2
    assert microsoft.authority_host == "https://login.microsoftonline.com"
    assert microsoft.scope == ""  # msal is asked for MICROSOFT_SCOPE
    # A section with only token_command is the command provider, as before providers.
    assert settings.mailboxes["sugerencias"].imap.oauth2.provider == "command"


def with_calendar(lines: str) -> dict:
    """MINIMAL with a calendar section as an operator types it (YAML, not a dict)."""
    return yaml.safe_load(MINIMAL + "calendar:\n" + "".join(f"  {line}\n"
                                                            for line in lines.splitlines()))


@pytest.mark.parametrize(("line", "expected"), [
    ("cutoff: 16:30", 'calendar.cutoff: write the time in quotes, "16:30" '
                      "(YAML read 16:30 unquoted as the number 990)"),
    ("day_start: 8:30", 'calendar.day_start: write the time in quotes, "08:30" '
                        "(YAML read 8:30 unquoted as the number 510)"),
    ("cutoff: 990", 'calendar.cutoff: write the time in quotes, "16:30"'),
    ("cutoff: 16.5", 'calendar.cutoff: write the time in quotes as "HH:MM"'),
    ("cutoff: true", 'calendar.cutoff: write the time in quotes as "HH:MM"'),
    ('cutoff: "16:30:00"', "calendar.cutoff: '16:30:00' is not a time of day"),
    ('cutoff: "25:00"', "calendar.cutoff: '25:00' is not a time of day"),
    ('day_start: "17:00"', "calendar: day_start 17:00 must come before cutoff 16:30"),
    ("working_weekdays: []", "calendar.working_weekdays: []: give weekdays 0 (Monday)"),
])
def test_a_time_of_day_is_a_quoted_hh_mm(line, expected):
    with pytest.raises(ConfigError) as error:
        parse_settings(with_calendar(line))
    assert any(problem.startswith(expected) for problem in error.value.problems), \
        error.value.problems


def test_quoted_times_are_read_as_the_office_clock():
    settings = parse_settings(with_calendar('cutoff: "17:00"\nday_start: "8:00"'))
    assert settings.calendar.cutoff == time(17, 0) and settings.calendar.cutoff.tzinfo is None
    assert settings.calendar.day_start == time(8, 0)


def test_an_empty_password_variable_counts_as_unset(tmp_path):
    from daemon.config import resolve_secrets

    settings = parse_settings(yaml.safe_load(MINIMAL))
    with pytest.raises(ConfigError) as error:
        resolve_secrets(settings, {"BUZON_CONSULTAS_PASSWORD": "",
                                   "BUZON_SUGERENCIAS_PASSWORD": "x"})
    assert error.value.problems == [
        "mailboxes.consultas.imap.password_env: environment variable "
        "BUZON_CONSULTAS_PASSWORD is empty (nor a systemd credential of that name): it must "
        "hold the password"]
    # An empty systemd credential file is no password either.
    (tmp_path / "BUZON_CONSULTAS_PASSWORD").write_text("\n")
    with pytest.raises(ConfigError) as error:
        resolve_secrets(settings, {"CREDENTIALS_DIRECTORY": str(tmp_path),
                                   "BUZON_SUGERENCIAS_PASSWORD": "x"})
    assert "BUZON_CONSULTAS_PASSWORD is not set" in error.value.problems[0]


def test_doubtful_settings_are_warned_of():
    from daemon.cli.checks import doubtful_settings

    assert doubtful_settings(parse_settings(yaml.safe_load(MINIMAL))) == []
    data = yaml.safe_load(MINIMAL)
    data["organs"]["DRNP"] = "drnp"
    data["folders"] = {"review": "SEACE"}
    warnings = doubtful_settings(parse_settings(data))
    assert warnings[0].startswith("organs.DRNP.address: 'drnp' is not an e-mail address")
    assert warnings[1].startswith("folders.review: 'SEACE' is also one of folders.categories")
    assert len(warnings) == 2
