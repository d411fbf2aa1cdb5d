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
