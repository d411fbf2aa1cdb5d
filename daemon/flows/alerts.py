"""Alerts to the coordinators about buzon itself: a watcher that stopped beating. Each
goes once per episode, from a mailbox still worked, or straight to the relay."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from daemon.mail.compose import new_message_id, render_mail
from daemon.mail.smtp import send_batch
from daemon.runtime import Runtime
from daemon.store.db import as_aware
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
                          name, beat.isoformat(), rt.settings.watcher.heartbeat_stale_seconds)
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
