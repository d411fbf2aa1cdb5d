"""Typed settings: rules.yaml parsed once into validated pydantic models."""

from __future__ import annotations

import os
import re
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATES_DIR = REPO_ROOT / "templates"


def stamp(moment: datetime, zone: tzinfo) -> str:
    """'2026-12-03 09:15:02-05:00': how every time in buzon's log reads."""
    return moment.astimezone(zone).isoformat(sep=" ", timespec="seconds")


class ConfigError(Exception):
    """A configuration problem; each line of `problems` names the key and what is wrong."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Security = Literal["none", "starttls", "ssl"]


MICROSOFT_SCOPE = "https://outlook.office365.com/.default"  # IMAP, POP and SMTP of Exchange


class OAuth2Settings(StrictModel):
    """Where an OAuth2 access token comes from (Microsoft 365 and Google accept only
    OAuth2 for IMAP and SMTP). `provider`:

    - generic: a client-credentials request to `token_url` (the client secret in the
      variable the mailbox's `password_env` names);
    - microsoft: the same grant through msal, at `authority_host`/`tenant`;
    - command: a command the operator gives, which prints the token (or JSON with
      access_token, expires_in). A section with token_command and no provider is this.
    """

    provider: Literal["generic", "microsoft", "command"] = "generic"
    token_url: str = ""  # generic: e.g. https://oauth2.googleapis.com/token
    client_id: str = ""
    scope: str = ""  # microsoft: MICROSOFT_SCOPE unless given
    tenant: str = ""  # microsoft: the directory (tenant) id or domain
    authority_host: str = "https://login.microsoftonline.com"  # microsoft
    ca_file: str = ""  # generic, microsoft: CA bundle for the token endpoint (default: system)
    token_command: list[str] = []

    @model_validator(mode="before")
    @classmethod
    def _command_by_its_key(cls, data):
        if isinstance(data, dict) and "provider" not in data and data.get("token_command"):
            return {**data, "provider": "command"}
        return data

    @model_validator(mode="after")
    def _keys_of_the_provider(self):
        needed = {"generic": ("token_url", "client_id"), "microsoft": ("tenant", "client_id"),
                  "command": ("token_command",)}[self.provider]
        used = {"generic": {"token_url", "client_id", "scope", "ca_file"},
                "microsoft": {"tenant", "client_id", "scope", "authority_host", "ca_file"},
                "command": {"token_command"}}[self.provider]
        for key in needed:
            if not getattr(self, key):
                raise ValueError(f"{key}: required with provider {self.provider}")
        unused = sorted(self.model_fields_set - used - {"provider"})
        if unused:
            raise ValueError(f"{unused[0]}: not used with provider {self.provider}")
        if not self.authority_host.startswith("https://"):
            raise ValueError(f"authority_host: {self.authority_host!r} must start with https://")
        if "/" in self.tenant:
            raise ValueError(f"tenant: {self.tenant!r} is a tenant id or domain, not a URL")
        return self


Auth = Literal["password", "xoauth2", "oauthbearer"]


class ImapSettings(StrictModel):
    host: str
    port: int = Field(993, ge=1, le=65535)
    security: Security = "ssl"
    username: str
    password_env: str  # the password, or with OAuth2 the client secret (if any)
    inbox: str = "INBOX"
    timeout_seconds: float = Field(60.0, gt=0)
    auth: Auth = "password"
    oauth2: OAuth2Settings | None = None

    @model_validator(mode="after")
    def _oauth2_given(self):
        if self.auth != "password" and self.oauth2 is None:
            raise ValueError(f"auth {self.auth} needs an oauth2 section")
        return self


class SmtpSettings(StrictModel):
    host: str
    port: int = Field(465, ge=1, le=65535)
    security: Security = "ssl"
    username: str | None = None
    password_env: str | None = None
    timeout_seconds: float = Field(30.0, gt=0)
    # Persistent connections, shared by every mailbox of the process: a backlog goes out
    # over all of them at once, and a SIGKILL resends at most one mail per connection.
    connections: int = Field(4, ge=1, le=16)
    # Where each mailbox's sent journal lives (daemon/store/journal.py). Empty: beside a
    # SQLite database; with PostgreSQL, $STATE_DIRECTORY or the working directory.
    journal_dir: Path | None = None
    # A relay that answers 4xx or cannot be reached: each mail is retried with a growing
    # pause, and given up (the coordinators told) this long after its first failure.
    retry_initial_seconds: float = Field(30.0, gt=0)
    retry_max_seconds: float = Field(1800.0, gt=0)
    give_up_after_seconds: float = Field(86400.0, gt=0)
    auth: Literal["password", "xoauth2"] = "password"
    oauth2: OAuth2Settings | None = None

    @model_validator(mode="after")
    def _oauth2_given(self):
        if self.auth != "password" and (self.oauth2 is None or not self.username):
            raise ValueError(f"auth {self.auth} needs username and an oauth2 section")
        return self


class MailboxSettings(StrictModel):
    address: str
    display_name: str = "OECE - Atención al usuario"
    imap: ImapSettings
    # consulta: filed into category folders, 24-hour deadline. sugerencia: stays in the
    # inbox for the person responsible, deadline in working days.
    kind: Literal["consulta", "sugerencia"] | None = None
    ticket_prefix: str | None = Field(None, pattern=r"^[A-Z]+$")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError("must be an email address like consultas@osce.gob.pe")
        return value.lower()


class PeopleSettings(StrictModel):
    coordinators: list[str] = []
    supervisors: list[str] = []
    assistants: list[str] = []
    # How each assistant signs (address: name as in the signature): a reply in Sent is
    # credited to the assistant whose name closes it.
    signatures: dict[str, str] = {}


# The organs' names in full, as mail names them (manual 10: "Dirección del SEACE", not
# DSEACE); an organ set up under another key gives its own `name`.
KNOWN_ORGAN_NAMES = {
    "DSEACE": "Dirección del SEACE",
    "DRNP": "Dirección del Registro Nacional de Proveedores",
    "DTN": "Dirección Técnico Normativa",
    "OTI": "Oficina de Tecnologías de la Información",
}


class OrganSettings(StrictModel):
    address: str
    # Manual 7.2: a second-level organ answers within 1 to 5 working days.
    deadline_working_days: int = Field(5, ge=1, le=5)
    name: str = ""  # in full; KNOWN_ORGAN_NAMES (or the key) when empty


class SecondLevelSettings(StrictModel):
    # Manual 9.1 and 9.3.7.1: an organ's answer (on an incident or a suggestion) comes
    # back to the assistants, who send it on to the citizen through Sent. "automatic"
    # relays it to the citizen as the organ wrote it, for an agency that chooses so.
    relay: Literal["assistants", "automatic"] = "assistants"


_CLOCK_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def clock_time(value: object) -> object:
    """A time of day as rules.yaml must write it: "HH:MM" in quotes.

    YAML 1.1 reads an unquoted 16:30 as the sexagesimal number 990 (16 * 60 + 30), which
    pydantic would take as seconds after midnight (00:16:30, in UTC): the error says so.
    """
    if isinstance(value, time):
        return value  # a default, or settings built in code
    if not isinstance(value, str):
        if type(value) is int and 0 <= value < 24 * 60:  # not a bool
            written = f"{value // 60}:{value % 60:02d}"
            raise ValueError(f'write the time in quotes, "{value // 60:02d}:{value % 60:02d}" '
                             f"(YAML read {written} unquoted as the number {value})")
        raise ValueError(f'write the time in quotes as "HH:MM", like "16:30" (not {value!r})')
    match = _CLOCK_TIME.fullmatch(value.strip())
    if match is None:
        raise ValueError(f'{value!r} is not a time of day: write it as "HH:MM", like "16:30"')
    return time(int(match[1]), int(match[2]))


class CalendarSettings(StrictModel):
    country: str = "PE"
    cutoff: time = time(16, 30)  # "HH:MM" in the office time zone (see clock_time)
    day_start: time = time(8, 30)
    working_weekdays: list[int] = [0, 1, 2, 3, 4]
    extra_days_off: list[date] = []

    @field_validator("cutoff", "day_start", mode="before")
    @classmethod
    def _clock_time(cls, value: object) -> object:
        return clock_time(value)

    @field_validator("working_weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if not value or any(not 0 <= day <= 6 for day in value):
            raise ValueError(f"{value}: give weekdays 0 (Monday) to 6 (Sunday), at least one")
        return value

    @model_validator(mode="after")
    def _opens_before_cutoff(self):
        if self.day_start >= self.cutoff:
            raise ValueError(f"day_start {self.day_start:%H:%M} must come before cutoff "
                             f"{self.cutoff:%H:%M}")
        return self


class DeadlineSettings(StrictModel):
    consulta_hours: int = Field(24, ge=1)
    sugerencia_working_days: int = Field(10, ge=1)
    # Tickets due within this many hours get the Por_vencer keyword and \Flagged.
    reminder_hours: int = Field(24, ge=1)


class ReviewSettings(StrictModel):
    """Legal answers approved by a supervisor by mail (manual 7.4.1.1)."""

    folder: str = "Legal/Revisión"  # where an assistant puts a draft to be reviewed
    approved_folder: str = "Legal/Aprobados"
    observed_folder: str = "Legal/Observados"
    token_hours: int = Field(72, ge=1)  # a review request's capability expires after this

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, value):
        if isinstance(value, dict) and "authserv_id" in value:
            raise ValueError("authserv_id moved to trust.authserv_id: it now vouches for "
                             "every command given by mail, not only approvals")
        return value


class TrustSettings(StrictModel):
    """The proof asked of every command given by mail (a verdict, an organ's answer, a
    survey score): the sender's role, the capability of the request, and the border."""

    # The authserv-id of the agency's own border mail server. When set, a command counts
    # only if that server's Authentication-Results say dmarc=pass, or dkim=pass for the
    # sender's domain, and no fail; results claimed by any other server are ignored.
    authserv_id: str | None = None
    # Received fields the agency's own servers add above the border's results (an LMTP
    # or internal relay hop adds one each). Results below them came with the mail.
    internal_hops: int = Field(0, ge=0, le=10)
    # A request's capability (to an organ, the third level, a citizen's survey) expires
    # after this many days; a review request's after review.token_hours.
    capability_days: int = Field(30, ge=1, le=365)


class SurveySettings(StrictModel):
    """The satisfaction survey sent once after a ticket is answered (manual 6.1.2, 6.6.2)."""

    enabled: bool = True
    # A reply whose first line says one of these stops all future surveys to that address.
    opt_out_phrases: list[str] = ["NO MAS ENCUESTAS", "NO DESEO ENCUESTAS", "BAJA"]


class ScheduleSettings(StrictModel):
    """When periodic mail goes out (cron lines in the office time zone; working days only)."""

    morning_summary: str = "0 8 * * mon-fri"
    daily_register: str = "0 17 * * mon-fri"
    incident_report: str = "15 17 * * mon-fri"  # to the coordinators (manual 9.3.1)
    # Checked on these days; the indicators of the month before go out on the first
    # working day of each month only.
    monthly_indicators: str = "0 8 * * *"


class FollowupSettings(StrictModel):
    # A citizen writing again after the answer: reopen the ticket, or open a new one
    # linked to it.
    after_answer: Literal["reopen", "new_ticket"] = "reopen"


class FolderSettings(StrictModel):
    categories: list[str] = ["SEACE", "RNP", "Legal"]
    review: str = "Por clasificar"
    # Mail that is none of the categories: spam, and what the model finds off-topic (mail
    # for other agencies, job applications, thanks, advertising).
    off_topic: str = "Otros temas"
    quarantine: str = "Cuarentena"
    automatic: str = "Automáticos"
    answered: str = "Atendidos"  # answered by another channel (phone, in person)
    derive: str = "Derivar"  # Derivar/<ORGAN> sends a consulta to a second-level organ
    not_a_suggestion: str = "No es sugerencia"  # closes a mail to sugerencias@
    # A move that sends mail (Derivar/…, Incidencias/…, No es sugerencia, Atendidos)
    # takes effect this many minutes after buzon sees it: moving the mail back before
    # then cancels it, and nothing is sent. 0: at once.
    move_grace_minutes: int = Field(5, ge=0, le=120)
    # A card ("Ficha <id>") appended beside each new ticket's mail, threaded under it: the
    # ticket id, official receipt and deadline, seen in any mail client.
    ticket_cards: bool = True


class IncidentSettings(StrictModel):
    """Incidents (manual 9.3): a consulta an assistant moves to "Incidencias/<criticality>"."""

    folder: str = "Incidencias"  # Incidencias/Alta, Incidencias/Media, Incidencias/Baja
    ticket_prefix: str = Field("I", pattern=r"^[A-Z]+$")
    # Expected response per criticality in working days (the table of manual 9.3.4); the
    # names are the subfolders.
    response_working_days: dict[str, int] = {"Alta": 5, "Media": 4, "Baja": 2}
    # The competent second-level organ for each consulta category; default_organ for a
    # consulta with no category (empty: the organ of the first category).
    organs_by_category: dict[str, str] = {"SEACE": "DSEACE", "RNP": "DRNP", "Legal": "DTN"}
    default_organ: str | None = None
    third_level: str = "OTI"  # information technology: where ESCALAR sends an incident
    third_level_working_days: int = Field(5, ge=2, le=5)  # manual: 2 to 5 working days
    validation_working_days: int = Field(1, ge=1, le=5)  # the second level validates

    @field_validator("response_working_days")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for name, days in value.items():
            if days < 1:
                raise ValueError(f"{name}: {days} is not a number of working days (1 or more)")
        return value

    def fallback_organ(self) -> str:
        return self.default_organ or next(iter(self.organs_by_category.values()), "")


class AnswerSettings(StrictModel):
    """Suggested answers written into Drafts for the assistants (never sent by buzon)."""

    enabled: bool = True
    directory: Path = DEFAULT_TEMPLATES_DIR / "respuestas"  # the standard answers (*.md)
    # A draft is written when the closest source is at least this similar (0-1: the mix
    # of two cosines, classifiers/retrieval.py).
    min_similarity: float = Field(0.25, ge=0.0, le=1.0)  # benchmarks/retrieval.py --thresholds
    drafts_folder: str = "Drafts"  # used when the server marks no \Drafts folder


class SuggestionSettings(StrictModel):
    # Moving a mail to "No es sugerencia" tells the citizen where to go instead.
    reply_when_not_a_suggestion: bool = True


class RoutingRule(StrictModel):
    name: str
    folder: str
    from_patterns: list[str] = []
    subject_patterns: list[str] = []
    body_patterns: list[str] = []

    @field_validator("from_patterns", "subject_patterns", "body_patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern {pattern!r} is not a valid regular expression: {exc}"
                ) from None
        return patterns


class AutomaticMailSettings(StrictModel):
    # Acknowledgements go to a mail's From, never to a Reply-To (anyone can name a victim
    # there), and are counted by the mail's time of arrival: per sender (lower case, its
    # +tag dropped), per sender's domain, and for all of buzon per hour. Past a cap the
    # ticket is still opened, but no acknowledgement goes; the coordinators are told once
    # per domain and day, and once per hour.
    ack_cap_per_sender_per_day: int = Field(5, ge=1)
    ack_cap_per_domain_per_day: int = Field(500, ge=1)
    ack_cap_per_hour: int = Field(300, ge=1)
    # Suggested replies put in Drafts for one sender's consultas of a day, at most.
    draft_cap_per_sender_per_day: int = Field(10, ge=1)
    noreply_patterns: list[str] = [
        r"^mailer-daemon@", r"^postmaster@", r"^no[-_.]?reply", r"^do[-_.]?not[-_.]?reply",
    ]
    # Spam, as the border's filter marks it: header name -> how its value starts (any
    # case). Only the topmost such header counts, the one the border's filter added
    # above the sender's own. Spam is filed in folders.off_topic: no ticket, no
    # acknowledgement, no draft. (A sender who marks their own mail as spam only loses
    # their acknowledgement.)
    spam_headers: dict[str, str] = {"X-Spam-Flag": "yes", "X-Spam": "yes",
                                    "X-Spam-Status": "yes"}


class ClassifierSettings(StrictModel):
    enabled: bool = True
    model_dir: Path = Path("/var/lib/buzon/model")
    # Below this confidence a consulta goes to the review folder. Empty: the threshold
    # chosen by cross-validation when the model was trained (see data/README.md).
    confidence_threshold: float | None = Field(None, ge=0.0, le=1.0)
    # A consulta goes to folders.off_topic when the model's two out-of-scope classes
    # (Otros, Spam) together reach this. Empty: the one chosen when it was trained.
    off_topic_threshold: float | None = Field(None, ge=0.0, le=1.0)
    # When to retrain from the corpus, harvested mail and the assistants' corrections
    # (cron fields: minute hour day month day_of_week), in the office time zone.
    retrain_cron: str = "0 2 * * sat"
    train_if_missing: bool = True
    # A consulta with fewer meaningful words than this (classifiers/vague.py) is left in
    # the review folder, whatever the model's confidence. 0: off.
    min_meaningful_words: int = Field(3, ge=0)


class WatcherSettings(StrictModel):
    # IDLE is left and re-issued this often (far inside the 10-minute bound of RFC 2177).
    idle_check_seconds: int = Field(30, ge=1, le=300)
    poll_seconds: int = Field(30, ge=1)
    backoff_initial_seconds: float = Field(1.0, gt=0)
    backoff_max_seconds: float = Field(300.0, gt=0)
    heartbeat_stale_seconds: int = Field(900, ge=60)
    # Mails fetched and recorded per transaction. The outbox applies a batch while the
    # next is taken in, so smaller batches overlap more: 250 took a 1,000-mail backlog in
    # 5.7 s against 8.3 s with 1,000 (benchmarks/backlog.py, 100 gave 6.3 s).
    fetch_batch: int = Field(250, ge=1)
    # Bytes fetched and held per batch at most, as the server's sizes tell before the
    # fetch (a mail larger than this is a batch of its own): bounds memory by size,
    # whatever the mix of mails.
    fetch_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024)
    # A command the server refuses (a keyword, a move) is tried again after each pause,
    # then parked with its error and told to the coordinators.
    refusal_pauses_seconds: list[float] = [60.0, 300.0, 1800.0]
    # Planned actions (mail texts included) held in memory at once while the outbox is
    # applied: bounds a backlog's memory.
    outbox_slice: int = Field(1000, ge=1)
    # Parse, classify and match known answers in a second process (forked at start),
    # batch by batch while the daemon records the batch before: both cores work.
    judge_process: bool = True
    # A standby buzon (two processes on one PostgreSQL) tries to take over this often.
    lease_retry_seconds: float = Field(5.0, gt=0, le=30)


class Settings(StrictModel):
    timezone: str = "America/Lima"
    database: str = "sqlite:///buzon.db"
    templates_dir: Path = DEFAULT_TEMPLATES_DIR
    message_id_domain: str | None = None
    mailboxes: dict[str, MailboxSettings]
    smtp: SmtpSettings
    people: PeopleSettings = PeopleSettings()
    organs: dict[str, OrganSettings] = {}
    second_level: SecondLevelSettings = SecondLevelSettings()
    calendar: CalendarSettings = CalendarSettings()
    deadlines: DeadlineSettings = DeadlineSettings()
    folders: FolderSettings = FolderSettings()
    routing: list[RoutingRule] = []
    automatic_mail: AutomaticMailSettings = AutomaticMailSettings()
    classifier: ClassifierSettings = ClassifierSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    review: ReviewSettings = ReviewSettings()
    trust: TrustSettings = TrustSettings()
    surveys: SurveySettings = SurveySettings()
    suggestions: SuggestionSettings = SuggestionSettings()
    followups: FollowupSettings = FollowupSettings()
    incidents: IncidentSettings = IncidentSettings()
    answers: AnswerSettings = AnswerSettings()
    watcher: WatcherSettings = WatcherSettings()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like America/Lima)"
            ) from None
        return value

    @field_validator("organs", mode="before")
    @classmethod
    def _organ_shorthand(cls, value):
        # `DRNP: drnp@osce.test` is shorthand for `DRNP: {address: drnp@osce.test}`.
        if isinstance(value, dict):
            return {k: {"address": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("mailboxes")
    @classmethod
    def _some_mailbox(cls, value: dict) -> dict:
        if not value:
            raise ValueError("at least one mailbox is needed")
        return value

    @model_validator(mode="after")
    def _routing_targets_exist(self) -> Settings:
        for index, rule in enumerate(self.routing):
            if rule.folder not in self.folders.categories:
                raise ValueError(
                    f"routing[{index}] ({rule.name}): folder {rule.folder!r} is not one of "
                    f"folders.categories {self.folders.categories}"
                )
        return self

    @model_validator(mode="after")
    def _cron_lines(self) -> Settings:
        from apscheduler.triggers.cron import CronTrigger

        lines = {"classifier.retrain_cron": self.classifier.retrain_cron,
                 "schedule.morning_summary": self.schedule.morning_summary,
                 "schedule.daily_register": self.schedule.daily_register,
                 "schedule.incident_report": self.schedule.incident_report,
                 "schedule.monthly_indicators": self.schedule.monthly_indicators}
        for key, line in lines.items():
            try:
                CronTrigger.from_crontab(line)
            except ValueError as exc:
                raise ValueError(f"{key}: {line!r} is not a cron line ({exc})") from None
        return self

    @model_validator(mode="after")
    def _incident_organs_exist(self) -> Settings:
        # Without organs there is no second level, and incidents are not watched.
        if not self.organs:
            return self
        incidents = self.incidents
        named = {f"incidents.organs_by_category.{category}": organ
                 for category, organ in incidents.organs_by_category.items()}
        named["incidents.third_level"] = incidents.third_level
        if incidents.default_organ:
            named["incidents.default_organ"] = incidents.default_organ
        for key, organ in named.items():
            if organ not in self.organs:
                raise ValueError(f"{key}: {organ!r} is not one of the organs "
                                 f"{sorted(self.organs)}")
        return self

    @property
    def incidents_enabled(self) -> bool:
        return bool(self.organs)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def stamp(self, moment: datetime) -> str:
        """A time as the log writes it, in the office's time zone with its offset."""
        return stamp(moment, self.zone)

    def organ_names(self) -> dict[str, str]:
        """Each organ's name in full, for mail."""
        return {key: organ.name or KNOWN_ORGAN_NAMES.get(key, key)
                for key, organ in self.organs.items()}

    def mailbox_kind(self, name: str) -> str:
        mailbox = self.mailboxes[name]
        if mailbox.kind:
            return mailbox.kind
        return "sugerencia" if name.startswith("sugerencia") else "consulta"

    def ticket_prefix(self, name: str) -> str:
        mailbox = self.mailboxes[name]
        if mailbox.ticket_prefix:
            return mailbox.ticket_prefix
        return "S" if self.mailbox_kind(name) == "sugerencia" else "C"

    def own_message_id_domain(self) -> str:
        if self.message_id_domain:
            return self.message_id_domain
        first = next(iter(self.mailboxes.values()))
        return "buzon." + first.address.split("@", 1)[1]


def _format_location(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def describe_validation_error(error: ValidationError) -> list[str]:
    problems = []
    for detail in error.errors():
        key = _format_location(detail["loc"])
        if detail["type"] == "extra_forbidden":
            problems.append(f"{key}: unknown setting (check the spelling against rules.yaml)")
        elif detail["type"] == "missing":
            problems.append(f"{key}: required setting is missing")
        else:
            message = detail["msg"].removeprefix("Value error, ")
            problems.append(f"{key}: {message}")
    return problems


def parse_settings(data: object) -> Settings:
    if not isinstance(data, dict):
        raise ConfigError(["(top level): the configuration must be a mapping of keys"])
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


def load_settings(path: Path) -> Settings:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"config file {path}: cannot be read ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"config file {path}: not valid YAML ({exc})"]) from None
    return parse_settings(data or {})


def resolve_secrets(settings: Settings, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Read every password from the environment variable its setting names."""
    environ = dict(os.environ if environ is None else environ)
    secrets: dict[str, str] = {}
    problems: list[str] = []
    wanted = [
        (f"mailboxes.{name}.imap.password_env", mailbox.imap.password_env)
        for name, mailbox in settings.mailboxes.items()
    ]
    if settings.smtp.password_env:
        wanted.append(("smtp.password_env", settings.smtp.password_env))
    for key, variable in wanted:
        # An empty value counts as unset: `Environment=VAR=` or an empty credential file
        # is a password forgotten, which the server would only refuse later.
        value = environ.get(variable) or None
        if value is None:
            credentials = environ.get("CREDENTIALS_DIRECTORY")
            secret_file = Path(credentials) / variable if credentials else None
            if secret_file and secret_file.is_file():
                value = secret_file.read_text().rstrip("\n") or None
        if value is None:
            empty = "is empty" if variable in environ else "is not set"
            problems.append(f"{key}: environment variable {variable} {empty} (nor a "
                            "systemd credential of that name): it must hold the password")
        else:
            secrets[variable] = value
    if problems:
        raise ConfigError(problems)
    return secrets
