"""Database tables (SQLModel): mailbox positions, mails, tickets, trace and outbox."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Index, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Aware datetimes stored in UTC; SQLite would otherwise drop the offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _tz() -> Column:
    return Column(UTCDateTime())


class MailboxState(SQLModel, table=True):
    """Where a watcher stands in one IMAP folder: UIDVALIDITY and the last UID handled."""

    __tablename__ = "mailbox_state"
    mailbox: str = Field(primary_key=True)
    folder: str = Field(primary_key=True)
    uidvalidity: int = 0
    last_uid: int = 0
    heartbeat_at: datetime | None = Field(default=None, sa_column=_tz())
    heartbeat_note: str = ""


class TicketSequence(SQLModel, table=True):
    __tablename__ = "ticket_sequence"
    prefix: str = Field(primary_key=True)
    year: int = Field(primary_key=True)
    value: int = 0


class Ticket(SQLModel, table=True):
    __tablename__ = "ticket"
    id: str = Field(primary_key=True)
    mailbox: str = Field(index=True)
    kind: str
    status: str = Field(default="open", index=True)
    folder: str = ""
    citizen_address: str = Field(default="", index=True)
    citizen_name: str = ""
    subject: str = ""
    received_at: datetime = Field(sa_column=_tz())
    effective_receipt: datetime = Field(sa_column=_tz())
    deadline: datetime = Field(sa_column=_tz())
    answered_at: datetime | None = Field(default=None, sa_column=_tz())
    acknowledged: bool = False
    question: str = Field(default="", sa_column=Column(Text))  # the text it was judged on
    classification_source: str = ""
    classification_confidence: float | None = None
    first_folder: str = ""  # where buzon filed it, once an assistant has moved it elsewhere
    # A move that sends mail, waiting out its grace period (folders.move_grace_minutes).
    pending_move: str = ""
    pending_move_at: datetime | None = Field(default=None, sa_column=_tz())
    category: str = ""  # the category folder it was last in (kept while derived)
    answered_by: str = ""
    answer_channel: str = ""  # mail (a reply in Sent), other (moved to Atendidos), approved
    response_working_hours: float | None = None
    response_hours: float | None = None
    organ: str = ""  # second level: the organ it was derived to
    derived_at: datetime | None = Field(default=None, sa_column=_tz())
    organ_deadline: datetime | None = Field(default=None, sa_column=_tz())
    organ_answered_at: datetime | None = Field(default=None, sa_column=_tz())
    linked_ticket: str = ""  # the ticket a follow-up ticket continues
    result: str = ""  # suggestions: implemented, not_implemented, evaluating, not_a_suggestion
    # Incidents (I- tickets): the consulta keeps `incident`, the incident `linked_ticket`.
    incident: str = ""
    criticality: str = ""  # Alta, Media, Baja (the Incidencias subfolder)
    complexity: str = ""  # bajo, medio, alto, muy alto, indefinida
    level: int = 1  # 2: with the competent organ; 3: escalated to information technology
    competent_organ: str = ""  # the second-level organ: answers, escalates and validates
    first_organ: str = ""  # the first organ it was sent to (correct routing: it solved it)
    solved_by: str = ""  # the organ whose answer reached the citizen
    resolved_level: int | None = None
    escalated_at: datetime | None = Field(default=None, sa_column=_tz())
    proposed_answer: str = Field(default="", sa_column=Column(Text))  # awaiting validation
    answer_text: str = Field(default="", sa_column=Column(Text))  # what was sent, for reuse
    created_at: datetime = Field(sa_column=_tz())


# A quarantined mail is no original a later copy duplicates: moved back to the inbox
# after a fix, it is judged again.
QUARANTINED = "quarantine"


class MailRecord(SQLModel, table=True):
    """One mail seen in a mailbox, whatever became of it."""

    __tablename__ = "mail"
    __table_args__ = (UniqueConstraint("mailbox", "folder", "uidvalidity", "uid"),)
    id: int | None = Field(default=None, primary_key=True)
    mailbox: str
    folder: str
    uidvalidity: int
    uid: int
    message_id: str = Field(default="", index=True)
    sha256: str = ""
    sha256_scope: str = "raw"
    size: int = 0
    internaldate: datetime = Field(sa_column=_tz())
    sender: str = ""
    subject: str = ""
    outcome: str = ""  # ticket, followup, automatic, duplicate, quarantine
    destination: str = ""  # the folder it was sent to; empty when it stayed
    reason: str = ""
    stage: str = ""
    ticket_id: str | None = Field(default=None, index=True)
    recorded_at: datetime = Field(sa_column=_tz())


class MessageLink(SQLModel, table=True):
    """A Message-ID known to belong to a ticket (incoming or sent), for threading."""

    __tablename__ = "message_link"
    message_id: str = Field(primary_key=True)
    ticket_id: str = Field(primary_key=True)
    direction: str = "in"


class TraceEvent(SQLModel, table=True):
    __tablename__ = "trace_event"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(index=True)
    at: datetime = Field(sa_column=_tz())
    event: str
    actor: str = "buzon"
    detail: str = ""


class OutboxAction(SQLModel, table=True):
    """A planned effect, written with its cause and applied later, idempotently."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "mailbox"),)
    id: int | None = Field(default=None, primary_key=True)
    mailbox: str
    action: str  # keywords, move, send
    folder: str = ""
    uidvalidity: int = 0
    uid: int = 0
    target: str = ""  # destination folder, or the recipient
    keywords: str = ""  # space separated
    message_id: str = ""
    raw: str | None = Field(default=None, sa_column=Column(Text))
    ticket_id: str | None = None
    status: str = "pending"  # pending, done, failed
    attempts: int = 0
    last_error: str = ""
    created_at: datetime = Field(sa_column=_tz())
    done_at: datetime | None = Field(default=None, sa_column=_tz())
    next_attempt_at: datetime | None = Field(default=None, sa_column=_tz())  # mail: retry
    first_failed_at: datetime | None = Field(default=None, sa_column=_tz())  # retry deadline


class LabelledExample(SQLModel, table=True):
    """A consulta with its right folder, learnt from the mailbox (harvest or correction)."""

    __tablename__ = "labelled_example"
    key: str = Field(primary_key=True)  # where it came from: one example per mail
    text: str = Field(sa_column=Column(Text))
    label: str
    source: str  # harvest, correction
    ticket_id: str | None = None
    created_at: datetime = Field(sa_column=_tz())


class PeriodicRun(SQLModel, table=True):
    """When each piece of periodic work last ran, so a restart knows what is due."""

    __tablename__ = "periodic_run"
    job: str = Field(primary_key=True)
    last_run: datetime = Field(sa_column=_tz())
    note: str = ""


class Notice(SQLModel, table=True):
    """A one-time event (an escalation, a day's chase, a day's report): its key exists
    once, written in the same transaction as the mail it plans, so nothing goes twice."""

    __tablename__ = "notice"
    key: str = Field(primary_key=True)
    at: datetime = Field(sa_column=_tz())


class Review(SQLModel, table=True):
    """One round of supervisor review of a legal answer drafted by an assistant."""

    __tablename__ = "review"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(index=True)
    draft_folder: str
    draft_uidvalidity: int
    draft_uid: int
    draft_sha256: str  # of the text and HTML that the supervisors were shown
    draft_text: str = Field(sa_column=Column(Text))
    draft_html: str = Field(default="", sa_column=Column(Text))
    drafted_by: str = ""
    request_message_id: str = ""  # as kept: its capability hashed
    requested_at: datetime = Field(sa_column=_tz())
    expires_at: datetime = Field(sa_column=_tz())
    decision: str = ""  # approved, observed
    decided_by: str = ""
    decided_at: datetime | None = Field(default=None, sa_column=_tz())
    observations: str = Field(default="", sa_column=Column(Text))


class Capability(SQLModel, table=True):
    """A single-use proof sent with a request: the request's Message-ID held a secret,
    kept here only as its SHA-256. A reply carrying it back may give that ticket's
    command for that step, once, before it expires, and only from the holder."""

    __tablename__ = "capability"
    digest: str = Field(primary_key=True)
    ticket_id: str = Field(index=True)
    holder: str  # supervisor, organ:<NAME>, citizen
    step: str  # review, derivation, incident, third_level, validation, survey
    bound: str = ""  # what else it is tied to: the review round's id
    issued_at: datetime = Field(sa_column=_tz())
    expires_at: datetime = Field(sa_column=_tz())
    spent_at: datetime | None = Field(default=None, sa_column=_tz())
    spent_by: str = ""  # the sender of the mail that carried it back
    spent_for: str = ""  # accepted, refused: <why>, superseded


class TrustRefusal(SQLModel, table=True):
    """A command given by mail that was refused: traced on its ticket, and told to the
    coordinators in the next digest."""

    __tablename__ = "trust_refusal"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(index=True)
    at: datetime = Field(sa_column=_tz())
    sender: str
    holder: str  # the role the mail spoke for
    reason: str
    reported_at: datetime | None = Field(default=None, sa_column=_tz())


class Survey(SQLModel, table=True):
    """The one satisfaction survey of an answered ticket, and the citizen's reply."""

    __tablename__ = "survey"
    ticket_id: str = Field(primary_key=True)
    message_id: str = Field(index=True)  # as kept: its capability hashed
    sent_at: datetime = Field(sa_column=_tz())
    score: int | None = None
    comment: str = Field(default="", sa_column=Column(Text))
    answered_at: datetime | None = Field(default=None, sa_column=_tz())


class SurveyOptOut(SQLModel, table=True):
    """A citizen who asked never to receive surveys again."""

    __tablename__ = "survey_opt_out"
    address: str = Field(primary_key=True)
    at: datetime = Field(sa_column=_tz())


class SuggestedAnswer(SQLModel, table=True):
    """The draft buzon wrote for a consulta, and what the assistant did with it."""

    __tablename__ = "suggested_answer"
    ticket_id: str = Field(primary_key=True)
    sources: str  # "key (similarity)", best first
    similarity: float
    text: str = Field(sa_column=Column(Text))  # the answer part of the draft
    outcome: str = ""  # used (sent largely unchanged), edited, discarded
    reply_similarity: float | None = None
    created_at: datetime = Field(sa_column=_tz())
