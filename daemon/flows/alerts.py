"""Alerts to the coordinators about buzon itself: a watcher that stopped beating. Each
goes once per episode, from a mailbox still worked, or straight to the relay."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from daemon.mail.compose import new_message_id, render_mail
from daemon.mail.smtp import send_batch
from daemon.runtime import Runtime
from daemon.store.db import as_aware, utcnow
from daemon.store.models import MailboxState
from daemon.store.notify import claim, plan_mail

log = logging.getLogger("daemon.alerts")


def stalled_watchers(rt: Runtime, beats: dict[str, MailboxState], now: datetime) -> None:
    """Once per stall (keyed by the last heartbeat seen): an error line and a mail to the
    coordinators. `beats`: the last heartbeat of each stalled mailbox."""
    with Session(rt.engine) as session:
        stalled = []
        for name in beats:
            beat = as_aware(beats[name].heartbeat_at)
            if claim(session, f"stall:{name}:{beat.isoformat()}", now):
                log.error("watcher of mailbox %s has not reported since %s (over %s s)",
                          name, rt.settings.stamp(beat),
                          rt.settings.watcher.heartbeat_stale_seconds)
                stalled.append({"buzon": name, "latido": beat.astimezone(rt.settings.zone),
                                "nota": beats[name].heartbeat_note})
        # Sent from a mailbox still worked (its outbox is flushed); when none is, at once.
        healthy = [name for name in rt.settings.mailboxes if name not in beats]
        if stalled and rt.settings.people.coordinators and healthy:
            plan_mail(rt, session, mailbox=healthy[0], template="vigilancia_detenida",
                      values={"buzones": stalled}, to=rt.settings.people.coordinators, now=now)
        session.commit()
    if stalled and rt.settings.people.coordinators and not healthy:
        send_now(rt, "vigilancia_detenida", {"buzones": stalled}, now)


def send_now(rt: Runtime, template: str, values: dict, now: datetime) -> None:
    """Straight to the relay, for an alert no outbox would carry (best effort)."""
    box = next(iter(rt.settings.mailboxes.values()))
    outgoing = render_mail(rt.templates, template, values, sender=(box.display_name,
                           box.address), recipient=rt.settings.people.coordinators,
                           message_id=new_message_id(rt.settings.own_message_id_domain(),
                                                     template.replace("_", "-")), now=now)
    try:
        send_batch(rt.settings.smtp, rt.password(rt.settings.smtp.password_env),
                   [(box.address, rt.settings.people.coordinators, outgoing.raw.encode())])
    except Exception:  # noqa: BLE001 - the log line above is the alert of last resort
        log.exception("the alert mail could not be sent")


# The optional parts: without them buzon still takes mail in, acknowledges and files it.
OPTIONAL_PARTS = {
    "classifier": "la clasificación automática por tema (el modelo)",
    "knowledge": "el índice de respuestas, que prepara las respuestas sugeridas",
    "drafts": "las respuestas sugeridas en Borradores",
}


def _part_name(part: str) -> str:
    if part.startswith("folders:"):
        return f"algunas carpetas del buzón {part.partition(':')[2]}, que el servidor no dejó crear"
    return OPTIONAL_PARTS.get(part, part)


def part_failed(rt: Runtime, part: str, exc: BaseException, now: datetime | None = None,
                session: Session | None = None) -> None:
    """An optional part failed: an error line every time, one mail to the coordinators per
    part and day, and the caller goes on without it. In the caller's `session` when it
    holds one (on SQLite a second writer would wait for it)."""
    log.error("%s failed and is bypassed: %s: %s", part, type(exc).__name__, exc,
              exc_info=exc)
    now = now or utcnow()
    try:
        if session is not None:
            _tell_part_failed(rt, session, part, exc, now)
            return
        with Session(rt.engine) as own:
            _tell_part_failed(rt, own, part, exc, now)
            own.commit()
    except Exception:  # noqa: BLE001 - the log line above is the alert of last resort
        log.exception("the alert about %s could not be planned", part)


def _tell_part_failed(rt: Runtime, session: Session, part: str, exc: BaseException,
                      now: datetime) -> None:
    day = now.astimezone(rt.settings.zone).date()
    if not rt.settings.people.coordinators or not claim(session, f"part:{part}:{day}", now):
        return
    plan_mail(rt, session, mailbox=next(iter(rt.settings.mailboxes)), template="parte_omitida",
              values={"parte": _part_name(part),
                      "error": f"{type(exc).__name__}: {exc}"[:500]},
              to=rt.settings.people.coordinators, now=now)
