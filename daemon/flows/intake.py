"""Intake of new mail: fetch, decide, and record each decision in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from classifiers.runtime import BatchPredictions
from daemon.decide.pipeline import Arrival, CapReached, Decision, acknowledgement_address, decide
from daemon.flows import cards, knowledge
from daemon.flows.alerts import part_failed
from daemon.flows.judging import Judged, Pending, judge, judged_part
from daemon.flows.replies import reply_effects
from daemon.flows.sweeps import DUE_SOON, DUE_TODAY
from daemon.mail.compose import new_message_id, render_mail, spanish_datetime
from daemon.mail.imap import FetchedMail, MailboxClient, byte_batches
from daemon.mail.parsing import Inbound
from daemon.runtime import Runtime
from daemon.store.batch import BatchLookups, PendingRows, trace
from daemon.store.db import format_ticket_id, mailbox_state, utcnow
from daemon.store.models import (
    MailRecord,
    MessageLink,
    Notice,
    OutboxAction,
    SuggestedAnswer,
    Ticket,
)
from daemon.store.notify import claim, plan_mail

log = logging.getLogger("daemon.pipeline")

def sync_position(rt: Runtime, mailbox: str, folder: str, uidvalidity: int) -> int:
    """The last UID handled in this folder; a new UIDVALIDITY starts over from UID 0."""
    with Session(rt.engine) as session:
        state = mailbox_state(session, mailbox, folder)
        if state.uidvalidity != uidvalidity:
            if state.uidvalidity:
                log.warning("UIDVALIDITY changed from %s to %s in %s/%s: re-syncing by "
                            "Message-ID and content hash", state.uidvalidity, uidvalidity,
                            mailbox, folder)
            state.uidvalidity = uidvalidity
            state.last_uid = 0
            session.add(state)
        last_uid = state.last_uid
        session.commit()
    return last_uid


def process_new_mail(rt: Runtime, mailbox: str, client: MailboxClient,
                     after_batch: Callable[[], object] = lambda: None,
                     clock: datetime | None = None) -> int:
    """Decide and record every mail that arrived since the last UID; returns how many.

    `after_batch` runs after each recorded batch (the service applies the outbox there,
    so a large backlog never holds more than one batch of planned actions).
    """
    folder = rt.settings.mailboxes[mailbox].imap.inbox
    uidvalidity = client.select(folder)
    last_uid = sync_position(rt, mailbox, folder, uidvalidity)
    # What the server announced until now is covered by this search; an announcement
    # kept after it means mail this pass did not see (the watcher goes round again).
    client.forget_announcements()
    uids = client.uids_after(last_uid)
    watcher = rt.settings.watcher
    kind, staff = rt.settings.mailbox_kind(mailbox), staff_addresses(rt)
    # The judge works on the next batch while this process records the one before: a
    # batch is fetched and handed over before the previous one is recorded.
    waiting: tuple[list[FetchedMail], int, Pending] | None = None
    for start in range(0, len(uids), watcher.fetch_batch):
        chunk = uids[start:start + watcher.fetch_batch]
        # Sizes first, then as many mails as fit in the byte budget at a time.
        batches = list(byte_batches(client.plan_fetch(chunk), watcher.fetch_bytes)) or [[]]
        for number, batch in enumerate(batches, start=1):
            # The last batch answers for the whole chunk, mails expunged meanwhile included.
            last = chunk[-1] if number == len(batches) else batch[-1].uid
            mails = client.fetch_planned(batch)
            handed = (mails, last, _hand_over(rt, mails, staff, kind))
            if waiting is not None:
                _record_and_apply(rt, mailbox, folder, uidvalidity, waiting, after_batch, clock)
            waiting = handed
    if waiting is not None:
        _record_and_apply(rt, mailbox, folder, uidvalidity, waiting, after_batch, clock)
    return len(uids)


def _hand_over(rt: Runtime, mails: list[FetchedMail], staff: frozenset[str],
               kind: str) -> Pending:
    if rt.judge is not None:
        return rt.judge.submit(mails, staff, kind)
    return Pending(rt, None, mails, staff, kind)


def _record_and_apply(rt: Runtime, mailbox: str, folder: str, uidvalidity: int,
                      waiting: tuple[list[FetchedMail], int, Pending],
                      after_batch: Callable[[], object], clock: datetime | None) -> None:
    mails, last, pending = waiting
    record_batch(rt, mailbox, folder, uidvalidity, mails, last, clock, pending.result())
    rt.crash_point("after_commit")
    after_batch()


def record_batch(rt: Runtime, mailbox: str, folder: str, uidvalidity: int,
                 mails: list[FetchedMail], last_uid: int,
                 clock: datetime | None = None, judged: Judged | None = None
                 ) -> list[Decision]:
    """Record a fetched batch in one transaction.

    `last_uid` is the highest UID asked for: mails expunged before the fetch are skipped.
    Should the database refuse something, the batch is redone one savepoint per mail, so
    the mail at fault goes to quarantine and the others are recorded. `clock` is the time
    for due decisions (`run --once --now`), real time when not given. `judged` is the batch
    as the judge saw it (judged here when not given).
    """
    if judged is None:
        judged = judge(rt, mails, staff_addresses(rt), rt.settings.mailbox_kind(mailbox))
    for part, error in judged.failed:
        part_failed(rt, part, RuntimeError(error), clock)
    options = {"clock": clock, "judged": judged}
    try:
        return _record_batch(rt, mailbox, folder, uidvalidity, mails, last_uid, careful=False,
                             **options)
    except SQLAlchemyError:
        log.exception("batch of %s/%s up to uid=%s failed; redoing it mail by mail",
                      mailbox, folder, last_uid)
        return _record_batch(rt, mailbox, folder, uidvalidity, mails, last_uid, careful=True,
                             **options)


def _record_batch(rt: Runtime, mailbox: str, folder: str, uidvalidity: int,
                  mails: list[FetchedMail], last_uid: int, careful: bool,
                  clock: datetime | None, judged: Judged) -> list[Decision]:
    kind = rt.settings.mailbox_kind(mailbox)
    decisions: list[Decision] = []
    pending = PendingRows()
    # What needs no database was worked out before the transaction (by the judge), which
    # on SQLite holds the write lock: the outbox's thread records its progress meanwhile.
    ctx = rt.pipeline_context(None)
    if ctx.classifier is not None and kind == "consulta" and judged.predictions is not None:
        ctx = replace(ctx, classifier=BatchPredictions(
            ctx.classifier, [(judged.judged[uid], found)
                             for uid, found in judged.predictions.items()]))
    elif any(part == "classifier" for part, _error in judged.failed):
        ctx = replace(ctx, classifier=None)  # without the model, mail waits in review
    parsed = judged.parsed
    suggested = judged.suggestions
    with Session(rt.engine) as session:
        lookups = BatchLookups(session, pending)
        ctx = replace(ctx, lookups=lookups)
        seen = set(session.exec(select(MailRecord.uid).where(
            MailRecord.mailbox == mailbox, MailRecord.folder == folder,
            MailRecord.uidvalidity == uidvalidity,
            MailRecord.uid.in_([mail.uid for mail in mails]))))
        now = utcnow()
        lookups.clock = clock or now
        fresh = [mail for mail in mails if mail.uid not in seen]
        arrivals = [Arrival(mailbox=mailbox, kind=kind, internaldate=mail.internaldate,
                            sha256=mail.sha256) for mail in fresh]
        lookups.prefetch(mailbox, arrivals, ctx.calendar.zone)
        handled: dict[int, Recorded] = {}
        for mail, arrival in zip(fresh, arrivals, strict=True):
            decision = decide(judged.judged[mail.uid], arrival, ctx)
            inbound = parsed[mail.uid]  # recorded whole: a reply's text is read in full
            found = suggested.get(mail.uid, [])
            if not careful:
                handled[mail.uid] = _record(rt, lookups, mailbox, folder, uidvalidity, mail,
                                            inbound, decision, found, now)
                _count_sent(lookups, handled[mail.uid].sent, inbound, mail)
                decisions.append(decision)
                continue
            try:
                with session.begin_nested():
                    handled[mail.uid] = _record(rt, lookups, mailbox, folder, uidvalidity,
                                                mail, inbound, decision, found, now)
                    pending.write(session)
                _count_sent(lookups, handled[mail.uid].sent, inbound, mail)
            except SQLAlchemyError as exc:
                pending.clear()
                lookups.numbers.forget()  # a block reserved in the savepoint went with it
                decision = Decision(outcome="quarantine", stage="record",
                                    folder=rt.settings.folders.quarantine,
                                    reason=f"recording failed: {type(exc).__name__}"[:500],
                                    failure=type(exc).__name__)
                with session.begin_nested():
                    handled[mail.uid] = _record(rt, lookups, mailbox, folder, uidvalidity,
                                                mail, inbound, decision, found, now)
                    pending.write(session)
            decisions.append(decision)
        pending.write(session)
        lookups.numbers.give_back_unused()
        state = mailbox_state(session, mailbox, folder)
        state.last_uid = max(state.last_uid, last_uid)
        session.add(state)
        failures = [r for r in handled.values() if r.decision.failure]
        if failures:
            _tell_stage_failures(rt, session, mailbox, failures, clock or now)
        session.commit()
    # Logged once recorded: a batch redone mail by mail is not logged twice.
    for recorded in handled.values():
        _log_handled(mailbox, recorded)
    rt.stage_failures += len(failures)
    return decisions


@dataclass(frozen=True)
class Recorded:
    """What became of one mail: the operator's log line is written from this."""

    uid: int
    decision: Decision
    ticket_id: str | None
    folder: str  # where the mail now is (moved to, or left in)
    sent: tuple[str, ...]  # "ack", "draft": what counts toward the citizen's caps

    @property
    def acknowledged(self) -> bool:
        return "ack" in self.sent


def _log_handled(mailbox: str, recorded: Recorded) -> None:
    decision = recorded.decision
    level = logging.ERROR if decision.failure else logging.INFO
    log.log(level, "mail handled: mailbox=%s uid=%s outcome=%s ticket=%s folder=%s "
            "acknowledged=%s%s", mailbox, recorded.uid, decision.outcome,
            recorded.ticket_id or "-", recorded.folder, "yes" if recorded.acknowledged else "no",
            f" ({decision.reason})" if decision.reason else "")


def _tell_stage_failures(rt: Runtime, session: Session, mailbox: str,
                         failures: list[Recorded], now: datetime) -> None:
    """A stage that raised is a fault of buzon, not of the mail: the coordinators are
    told once per fault (stage, exception and where it was raised) and day, however
    many mails it sends to quarantine; in the batch's transaction, so a replayed batch
    tells nobody twice. Per day rather than "until it stops": a fault that hits only
    some mails would seem to stop and start again with every batch."""
    day = now.astimezone(rt.settings.zone).date()
    faults: dict[tuple[str, str], list[Recorded]] = {}
    for recorded in failures:
        faults.setdefault((recorded.decision.stage, recorded.decision.failure),
                          []).append(recorded)
    for (stage, failure), hit in faults.items():
        if not claim(session, f"stage:{stage}:{failure}:{day}", now):
            continue
        log.error("stage %s fails (%s): %d mail(s) of %s sent to %s; coordinators told",
                  stage, hit[0].decision.reason, len(hit), mailbox, rt.settings.folders.quarantine)
        if not rt.settings.people.coordinators:
            continue
        plan_mail(rt, session, mailbox=mailbox, template="etapa_fallida", now=now,
                  to=rt.settings.people.coordinators, values={
                      "buzon": rt.settings.mailboxes[mailbox].address,
                      "etapa": stage,
                      "error": hit[0].decision.reason,
                      "correos": len(hit),
                      "carpeta": rt.settings.folders.quarantine,
                  })


def staff_addresses(rt: Runtime) -> frozenset[str]:
    """The agency's own mailboxes, assistants and coordinators: whose forwards are read as
    the original citizen's mail."""
    people = rt.settings.people
    return frozenset(a.lower() for a in (*rt.own_addresses, *people.assistants,
                                         *people.coordinators))


def _count_sent(lookups: BatchLookups, sent: tuple[str, ...], inbound: Inbound,
                mail: FetchedMail) -> None:
    """What a kept mail planned counts toward the caps of the mails after it."""
    for kind in sent:
        lookups.count_sent(kind, acknowledgement_address(inbound), mail.internaldate)


def _record(rt: Runtime, lookups: BatchLookups, mailbox: str, folder: str, uidvalidity: int,
            mail: FetchedMail, inbound: Inbound, decision: Decision,
            found: list[tuple[knowledge.Source, float]], now: datetime) -> Recorded:
    """Plan a decided mail's rows and actions; `found` is what the knowledge suggests
    for it (nothing when drafts are off). Returns what became of it, with what went to
    the citizen's counters: "ack" for an acknowledgement, "draft" for a suggested reply."""
    pending = lookups.pending
    ticket_id = decision.ticket_id
    keywords: list[str] = []
    sent: tuple[str, ...] = ()
    if decision.outcome == "ticket":
        ticket = _open_ticket(rt, lookups, mailbox, inbound, decision, mail, now)
        ticket_id = ticket["id"]
        keywords = _due_soon(rt, lookups, ticket, now)
        if rt.settings.folders.ticket_cards:
            _plan_card(rt, pending, mailbox, ticket, inbound,
                       decision.folder or rt.settings.mailboxes[mailbox].imap.inbox, now)
        if decision.acknowledge:
            _plan_acknowledgement(rt, pending, mailbox, ticket, inbound, mail, now,
                                  echo=decision.echo)
            sent += ("ack",)
        if decision.cap_reached is not None:
            _tell_cap_reached(rt, lookups.session, mailbox, decision.cap_reached, now)
        if (found and decision.draft and ticket["kind"] == "consulta"
                and _plan_draft(rt, lookups, mailbox, ticket, inbound, found, now)):
            sent += ("draft",)
    elif decision.outcome in ("followup", "duplicate") and ticket_id:
        trace(pending, ticket_id, decision.outcome,
              f"{inbound.from_address} wrote again: {inbound.subject[:200]}", now)
        if (decision.outcome == "followup" and inbound.message_id
                and not lookups.has_link(inbound.message_id, ticket_id)):
            pending.add(MessageLink, message_id=inbound.message_id, ticket_id=ticket_id)
        if decision.outcome == "followup":
            keywords += reply_effects(rt, lookups, inbound, mail, ticket_id, now)
    common = {"mailbox": mailbox, "folder": folder, "uidvalidity": uidvalidity, "uid": mail.uid,
              "ticket_id": ticket_id, "created_at": now}
    if keywords:
        pending.add(OutboxAction, action="keywords", keywords=" ".join(keywords), **common)
    destination = decision.folder if decision.folder != folder else ""
    if destination:
        pending.add(OutboxAction, action="move", target=destination, **common)
    pending.add(
        MailRecord, mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, uid=mail.uid,
        message_id=inbound.message_id, sha256=mail.sha256, sha256_scope=mail.sha256_scope,
        size=mail.size, internaldate=mail.internaldate, sender=inbound.from_address,
        subject=inbound.subject[:300], outcome=decision.outcome, reason=decision.reason,
        destination=destination or "", stage=decision.stage, ticket_id=ticket_id,
        recorded_at=now,
    )
    return Recorded(mail.uid, decision, ticket_id, destination or folder, sent)


def _due_soon(rt: Runtime, lookups: BatchLookups, ticket: dict, now: datetime) -> list[str]:
    """A ticket already due today or within the reminder window gets its deadline
    keywords in the same STORE as its others (as the sweep would give them, see
    daemon.flows.sweeps): a backlog would otherwise cost a second STORE per mail."""
    window = timedelta(hours=rt.settings.deadlines.reminder_hours)
    if ticket["kind"] != "consulta" or ticket["deadline"] > lookups.clock + window:
        return []
    zone = rt.settings.zone
    if ticket["deadline"].astimezone(zone).date() == lookups.clock.astimezone(zone).date():
        lookups.pending.add(Notice, key=f"due_today:{ticket['id']}", at=now)
        return ["\\Flagged", DUE_TODAY]
    lookups.pending.add(Notice, key=f"reminder:{ticket['id']}", at=now)
    return ["\\Flagged", DUE_SOON]


def _open_ticket(rt: Runtime, lookups: BatchLookups, mailbox: str, inbound: Inbound,
                 decision: Decision, mail: FetchedMail, now: datetime) -> dict:
    prefix = rt.settings.ticket_prefix(mailbox)
    year = decision.effective_receipt.year
    number = lookups.numbers.take(prefix, year)
    ticket = lookups.pending.add(
        Ticket, id=format_ticket_id(prefix, year, number), mailbox=mailbox,
        kind=rt.settings.mailbox_kind(mailbox), status="open", folder=decision.folder or "",
        citizen_address=acknowledgement_address(inbound), citizen_name=inbound.from_name,
        subject=inbound.subject[:300], received_at=mail.internaldate,
        question=judged_part(inbound).question[:4000],
        effective_receipt=decision.effective_receipt, deadline=decision.deadline,
        classification_source=decision.classification_source,
        classification_confidence=decision.confidence, created_at=now,
        acknowledged=decision.acknowledge, category=decision.category or "",
        linked_ticket=decision.linked_ticket,
    )
    if inbound.message_id:
        lookups.pending.add(MessageLink, message_id=inbound.message_id, ticket_id=ticket["id"])
    details = [f"from {inbound.from_address}", f"folder {decision.folder or 'INBOX'}"]
    if decision.classification_source:
        details.append(f"classified by {decision.classification_source}")
    trace(lookups.pending, ticket["id"], "received", "; ".join(details + list(decision.notes)),
          now)
    if inbound.forwarded_by and decision.linked_ticket:
        _forwarded_on(lookups, decision.linked_ticket, ticket["id"], now)
    return ticket


def _forwarded_on(lookups: BatchLookups, first_id: str, new_id: str, now: datetime) -> None:
    """The consulta staff forwarded to another mailbox goes on there: it leaves the
    deadline sweeps (it is no late answer of this mailbox), and says where it went."""
    first = lookups.session.get(Ticket, first_id)
    if first is None or first.answered_at is not None or first.status not in ("open",
                                                                               "reopened"):
        return
    first.status = "forwarded"
    lookups.session.add(first)
    trace(lookups.pending, first_id, "forwarded", f"forwarded by staff; it goes on as {new_id}",
          now)


def _plan_draft(rt: Runtime, lookups: BatchLookups, mailbox: str, ticket: dict,
                inbound: Inbound, found: list[tuple[knowledge.Source, float]],
                now: datetime) -> bool:
    """A suggested reply into Drafts when the knowledge holds something close enough;
    whether one was planned."""
    pending = lookups.pending
    found = knowledge.fitting(found, ticket["folder"], rt.settings.folders)
    try:
        draft = knowledge.draft_for(rt, ticket, inbound, found, now)
    except Exception as exc:  # noqa: BLE001 - a draft is optional, the ticket is not
        part_failed(rt, "drafts", exc, now, session=lookups.session)
        return False
    if draft is None:
        return False
    message_id, raw, answer = draft
    pending.add(OutboxAction, mailbox=mailbox, action="draft", message_id=message_id, raw=raw,
                ticket_id=ticket["id"], created_at=now)
    pending.add(SuggestedAnswer, ticket_id=ticket["id"], sources=knowledge.sources_line(found),
                similarity=found[0][1], text=answer, created_at=now)
    trace(pending, ticket["id"], "answer suggested",
          f"a draft from {found[0][0].key} ({found[0][1]:.2f}) was put in Drafts", now)
    return True


def spanish_date(moment: datetime) -> str:
    """'martes 24 de noviembre de 2026' (spanish_datetime without the time)."""
    return spanish_datetime(moment).rsplit(", ", 1)[0]


def _tell_cap_reached(rt: Runtime, session: Session, mailbox: str, reached: CapReached,
                      now: datetime) -> None:
    """One mail to the coordinators per domain and day, or per hour, that a cap stopped
    the acknowledgements (planned in the batch's transaction: a replay sends nothing twice)."""
    if not rt.settings.people.coordinators or not claim(session, reached.episode, now):
        return
    by_domain = reached.key != "all"
    log.warning("acknowledgements stopped in %s: cap %s reached (%s)", mailbox, reached.cap,
                reached.episode)
    plan_mail(rt, session, mailbox=mailbox, template="limite_acuses", now=now,
              to=rt.settings.people.coordinators, values={
                  "por_dominio": by_domain,
                  "dominio": reached.key.partition(":")[2],
                  "tope": reached.cap,
                  "buzon": rt.settings.mailboxes[mailbox].address,
                  "dia": spanish_date(reached.start),
                  "desde": f"{reached.start:%H:%M}",
                  "hasta": f"{reached.end:%H:%M}",
                  "clave": "automatic_mail." + ("ack_cap_per_domain_per_day" if by_domain
                                                else "ack_cap_per_hour"),
              })


def _plan_card(rt: Runtime, pending: PendingRows, mailbox: str, ticket: dict,
               inbound: Inbound, folder: str, now: datetime) -> None:
    """The ticket's card, appended to the folder its mail is filed in (daemon.flows.cards)."""
    message_id, raw = cards.render_card(rt, mailbox, ticket, folder, now,
                                        in_reply_to=inbound.message_id,
                                        references=inbound.references)
    pending.add(OutboxAction, mailbox=mailbox, action="card", target=folder,
                message_id=message_id, raw=raw, ticket_id=ticket["id"], created_at=now)


def _plan_acknowledgement(rt: Runtime, pending: PendingRows, mailbox: str, ticket: dict,
                          inbound: Inbound, mail: FetchedMail, now: datetime,
                          echo: bool) -> None:
    """The acknowledgement; with `echo` it repeats the Subject and the sender's name
    (only when the border vouched for the sender, see decide.pipeline.may_echo)."""
    settings = rt.settings
    zone = settings.zone
    box = settings.mailboxes[mailbox]
    message_id = new_message_id(settings.own_message_id_domain(), f"ack.{ticket['id']}")
    received = mail.internaldate.astimezone(zone)
    effective = ticket["effective_receipt"].astimezone(zone)
    values = {
        "ticket_id": ticket["id"],
        "asunto": inbound.subject[:120] if echo else "",
        "nombre": inbound.from_name[:60] if echo else "",
        "recibido": received,
        "recepcion_oficial": effective,
        "plazo": ticket["deadline"].astimezone(zone),
        "fuera_de_horario": effective.date() != received.date(),
        "hora_corte": settings.calendar.cutoff.strftime("%H:%M"),
    }
    outgoing = render_mail(
        rt.templates, f"acuse_{ticket['kind']}", values, sender=(box.display_name, box.address),
        recipient=ticket["citizen_address"], message_id=message_id, now=now,
        in_reply_to=inbound.message_id, references=inbound.references,
    )
    pending.add(OutboxAction, mailbox=mailbox, action="send", target=outgoing.recipient,
                message_id=message_id, raw=outgoing.raw, ticket_id=ticket["id"], created_at=now)
    pending.add(MessageLink, message_id=message_id, ticket_id=ticket["id"], direction="out")
    trace(pending, ticket["id"], "acknowledgement planned", f"to {outgoing.recipient}", now)
