"""The agency's own knowledge, put to work: the standard answers and every answered
consulta form an index; a new consulta close enough to one of them gets a suggested
reply in the mailbox's Drafts folder, for an assistant to check, edit and send. buzon
never sends it. What the assistant sent is compared with the suggestion afterwards."""

from __future__ import annotations

import difflib
import logging
import threading
from datetime import datetime

from sqlmodel import Session, select

from classifiers.outcomes import OFF_TOPIC
from classifiers.retrieval import Index, Source, load_standard_answers
from daemon.decide.scrub import NOTE_END, NOTE_START, PLACEHOLDERS, scrub_answer, without_data
from daemon.mail.compose import compose_raw, new_message_id, render_text
from daemon.mail.parsing import own_part
from daemon.store.db import as_aware, reading
from daemon.store.models import SuggestedAnswer, Ticket

log = logging.getLogger("daemon.knowledge")

USED, EDITED = 0.9, 0.5  # similarity of the sent reply to the suggestion
SEARCHED = 8  # sources looked up per mail, before those that do not fit its folder go
SUGGESTED = 3  # sources a draft names


def answered_source(ticket: Ticket, writers: tuple[str, ...] = ()) -> Source:
    """An answered consulta as a source, without its citizen's data nor its writer's
    (`writers`: the names the assistants sign with): only this enters the index."""
    names = (ticket.citizen_name, *writers)
    return Source(key=f"ticket:{ticket.id}", title=without_data(ticket.subject, names),
                  category=ticket.category or ticket.folder,
                  questions=(without_data(ticket.question, names),),
                  answer=scrub_answer(ticket.answer_text, names), kind="answered")


class Knowledge:
    """The index of one process, rebuilt when answers were added since it was built."""

    def __init__(self, settings, engine):
        self.settings, self.engine = settings, engine
        self._lock = threading.Lock()
        self._standard = load_standard_answers(settings.answers.directory)
        self._answered: dict[str, Source] = {}
        self._index: Index | None = None
        self._since: datetime | None = None
        self.refresh()

    def refresh(self) -> None:
        """Take in the consultas answered since the last look (the watcher calls this at
        every pass: one query, and a rebuild only when something was answered)."""
        with reading(self.engine) as session:
            query = select(Ticket).where(Ticket.kind == "consulta", Ticket.answer_text != "")
            if self._since is not None:
                query = query.where(Ticket.answered_at >= self._since)
            rows = [t for t in session.exec(query) if t.id not in self._answered]
        writers = tuple(self.settings.people.signatures.values())
        new = {t.id: answered_source(t, writers) for t in rows if t.question.strip()}
        # A reopened ticket keeps its answer text but has no answer time: it sets no mark.
        stamps = [as_aware(t.answered_at) for t in rows if t.answered_at]
        if stamps:
            self._since = max(stamps)
        if new or self._index is None:
            with self._lock:
                self._answered.update(new)
                self._index = Index.build(self._standard + list(self._answered.values()))

    def suggest(self, text: str, limit: int = SUGGESTED) -> list[tuple[Source, float]]:
        with self._lock:
            index = self._index
        return index.search(text, limit) if index is not None else []


def is_orientation(source: Source, folders) -> bool:
    """An answer that points the citizen to someone else (RENIEC, SUNAT...)."""
    return source.category in (OFF_TOPIC, folders.off_topic)


def fitting(found: list[tuple[Source, float]], folder: str | None,
            folders) -> list[tuple[Source, float]]:
    """The sources that fit where the mail was filed: mail filed as off-topic only gets
    an orientation answer, and mail filed in a category never gets one. Mail left for
    review may get either."""
    if folder == folders.off_topic:
        found = [(s, score) for s, score in found if is_orientation(s, folders)]
    elif folder in folders.categories:
        found = [(s, score) for s, score in found if not is_orientation(s, folders)]
    return found[:SUGGESTED]


def close_enough(settings, found: list[tuple[Source, float]]) -> bool:
    """The closest source is similar enough for a draft (answers.min_similarity)."""
    return bool(found) and found[0][1] >= settings.answers.min_similarity


def draft_for(rt, ticket: dict, inbound, found: list[tuple[Source, float]], now: datetime
              ) -> tuple[str, str, str] | None:
    """(Message-ID, raw mail, answer text) of the suggested reply, or None when nothing
    is close enough. The reply is threaded to the citizen's mail, carries the ticket id,
    and opens with a note the assistant deletes before sending."""
    if not close_enough(rt.settings, found):
        return None
    box = rt.settings.mailboxes[ticket["mailbox"]]
    text = suggestion_text(rt, ticket, found)
    subject = f"RE: [{ticket['id']}] {ticket['subject']}"[:250]
    message_id = new_message_id(rt.settings.own_message_id_domain(), f"draft.{ticket['id']}")
    raw = compose_raw(sender=(box.display_name, box.address), recipients=[
        ticket["citizen_address"]], subject=subject, message_id=message_id, now=now,
        text=text, in_reply_to=inbound.message_id,
        references=inbound.references + ((inbound.message_id,) if inbound.message_id else ()))
    return message_id, raw, found[0][0].answer


def suggestion_text(rt, ticket: dict, found: list[tuple[Source, float]]) -> str:
    """The draft's body: the note for the assistant, between its two marker lines, then
    the reply to the citizen, greeted by name."""
    best, similarity = found[0]
    return render_text(rt.templates, "respuesta_sugerida", {
        "nota_inicio": NOTE_START, "nota_fin": NOTE_END,
        "marcadores": [p for p in PLACEHOLDERS if p in best.answer],
        "ticket_id": ticket["id"], "nombre": ticket["citizen_name"], "respuesta": best.answer,
        "fuente": best, "similitud": round(100 * similarity),
        "otras": [(s, round(100 * score)) for s, score in found[1:]],
        "es_legal": ticket.get("category") == "Legal"})


def sources_line(found: list[tuple[Source, float]]) -> str:
    return ", ".join(f"{source.key} ({score:.2f})" for source, score in found)


def judge_use(session: Session, ticket: Ticket, reply_text: str) -> str | None:
    """What became of the suggestion, from the reply that left through Sent."""
    suggestion = session.get(SuggestedAnswer, ticket.id)
    if suggestion is None or suggestion.outcome:
        return None
    sent = " ".join(own_part(reply_text).split())
    proposed = " ".join(suggestion.text.split())
    matcher = difflib.SequenceMatcher(None, proposed, sent, autojunk=False)
    ratio = matcher.ratio() if sent and proposed else 0.0
    # A short reply inside a long suggestion: how much of the suggestion it kept.
    kept = sum(block.size for block in matcher.get_matching_blocks()) / max(len(proposed), 1)
    score = max(ratio, kept)
    suggestion.reply_similarity = round(score, 3)
    suggestion.outcome = "used" if score >= USED else "edited" if score >= EDITED \
        else "discarded"
    session.add(suggestion)
    return suggestion.outcome
