"""Incidents (manual 9.3). An assistant moves a consulta to "Incidencias/<criticality>":
buzon opens an I- ticket linked to it, tells the citizen the expected response time, and
sends it to the competent second-level organ. The organ answers by replying (the answer
goes to the citizen), or escalates to the third level (IT) with ESCALAR; IT's answer is
validated by the second level before it reaches the citizen. A fix that needs new
development becomes a "requerimiento funcional". Complexity is set by a reply command
(COMPLEJIDAD: alto) or by a keyword on the mail (Complejidad_Alto)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from daemon.flows import cards, relay
from daemon.flows.answered import mark_answered
from daemon.flows.proofs import grant, organ_holder
from daemon.flows.second_level import citizen_thread
from daemon.mail.parsing import folded, own_part
from daemon.runtime import Runtime
from daemon.store.db import add_trace, as_aware, format_ticket_id, reserve_ticket_numbers
from daemon.store.models import OutboxAction, Ticket
from daemon.store.notify import plan_mail

log = logging.getLogger("daemon.incidents")

_COMPLEXITY_WORDS = {"BAJO": "bajo", "BAJA": "bajo", "MEDIO": "medio", "MEDIA": "medio",
                     "ALTO": "alto", "ALTA": "alto", "MUY ALTO": "muy alto",
                     "MUY ALTA": "muy alto", "INDEFINIDA": "indefinida",
                     "INDEFINIDO": "indefinida"}
_COMPLEXITY_LINE = re.compile(r"^COMPLEJIDAD\s*[:=\-]?\s*(.+?)\s*\.?$")
_FIRST_LINE_COMMANDS = (("REQUERIMIENTO FUNCIONAL", "functional"), ("ESCALAR", "escalate"),
                        ("VALIDADO", "validated"), ("VALIDADA", "validated"),
                        ("CONFORME", "validated"), ("OBSERVADO", "observed"),
                        ("OBSERVADA", "observed"), ("DERIVAR", "reroute"))
STATES = {"derived": "En el órgano competente (segundo nivel)",
          "escalated": "En tecnologías de la información (tercer nivel)",
          "validating": "En validación por el segundo nivel",
          "to_relay": "Respuesta recibida, por enviar a la usuaria o al usuario",
          "resolved": "Resuelta", "functional_requirement": "Requerimiento funcional"}


# Pure decisions -------------------------------------------------------------------------

@dataclass(frozen=True)
class OrganReply:
    command: str  # "" (an answer or a comment), escalate, validated, observed, functional, reroute
    argument: str  # reroute: the organ named after DERIVAR
    complexity: str  # "" when not set
    text: str  # what the organ wrote, without the command lines


def complexity_of(word: str) -> str:
    return _COMPLEXITY_WORDS.get(" ".join(folded(word).replace("_", " ").split()), "")


def read_organ_reply(body: str) -> OrganReply:
    """The command on the first line, a COMPLEJIDAD line anywhere, and the rest (pure)."""
    lines = own_part(body).split("\n")
    command, argument, complexity, kept = "", "", "", []
    first = True
    for line in lines:
        upper = " ".join(folded(line).split()).rstrip(" .!")
        match = _COMPLEXITY_LINE.match(upper)
        if match and complexity_of(match.group(1)):
            complexity = complexity_of(match.group(1))
            continue
        if first and upper:
            first = False
            found = next(((word, name) for word, name in _FIRST_LINE_COMMANDS
                          if upper == word or upper.startswith(word + " ")
                          or upper.startswith(word + ":")), None)
            if found:
                command = found[1]
                rest = line.strip()[len(found[0]):].strip(" :.-")
                if command == "reroute":
                    argument = rest.split()[0].upper() if rest else ""
                elif rest:
                    kept.append(rest)
                continue
        kept.append(line)
    return OrganReply(command, argument, complexity, "\n".join(kept).strip())


def criticality_of(rt: Runtime, folder: str) -> str | None:
    """"Incidencias/Alta" -> "Alta"; None for any other folder."""
    prefix = f"{rt.settings.incidents.folder}/"
    if not folder.startswith(prefix):
        return None
    name = folder[len(prefix):]
    return name if name in rt.settings.incidents.response_working_days else None


def incident_folders(rt: Runtime) -> list[str]:
    incidents = rt.settings.incidents
    return [f"{incidents.folder}/{name}" for name in incidents.response_working_days]


def competent_organ(rt: Runtime, category: str) -> str:
    incidents = rt.settings.incidents
    return incidents.organs_by_category.get(category) or incidents.fallback_organ()


# Effects (planned in the caller's transaction) -------------------------------------------

def open_incident(rt: Runtime, session: Session, consulta: Ticket, folder: str,
                  now: datetime) -> Ticket:
    """The consulta moved to an incident folder becomes an I- ticket, or changes the
    criticality of the one it already has."""
    criticality = criticality_of(rt, folder)
    days = rt.settings.incidents.response_working_days[criticality]
    if consulta.incident:
        incident = session.get(Ticket, consulta.incident)
        if incident.criticality != criticality:
            add_trace(session, incident.id, "criticality changed",
                      f"{incident.criticality} -> {criticality}", now, actor="assistant")
            incident.criticality, incident.folder = criticality, folder
            incident.deadline = rt.calendar.add_working_days(incident.effective_receipt, days)
            session.add(incident)
        return incident
    # Reported after the cutoff or on a day off, it counts from the next working day.
    effective = rt.calendar.effective_receipt(now)
    prefix, year = rt.settings.incidents.ticket_prefix, effective.year
    number = reserve_ticket_numbers(session, prefix, year)
    organ = competent_organ(rt, consulta.category)
    incident = Ticket(
        id=format_ticket_id(prefix, year, number), mailbox=consulta.mailbox,
        kind="incidencia", status="derived", folder=folder,
        citizen_address=consulta.citizen_address, citizen_name=consulta.citizen_name,
        subject=consulta.subject, received_at=now, effective_receipt=effective,
        deadline=rt.calendar.add_working_days(effective, days), question=consulta.question,
        category=consulta.category, linked_ticket=consulta.id, criticality=criticality,
        level=2, created_at=now, acknowledged=True)
    session.add(incident)
    session.flush()
    consulta.incident = incident.id
    mark_answered(rt, session, consulta, now, by="", channel="incident")
    consulta.status = "incident"
    session.add(consulta)
    add_trace(session, consulta.id, "incident opened",
              f"turned into incident {incident.id} ({criticality})", now, actor="assistant")
    add_trace(session, incident.id, "opened",
              f"from consulta {consulta.id}, criticality {criticality}: expected response "
              f"within {days} working days, by {incident.deadline.isoformat()}", now,
              actor="assistant")
    in_reply_to, references = citizen_thread(session, consulta)
    if rt.settings.folders.ticket_cards:  # staff see the I- number beside the mail
        message_id, raw = cards.render_card(rt, consulta.mailbox, incident, folder, now,
                                            in_reply_to, references)
        session.add(OutboxAction(mailbox=consulta.mailbox, action="card", target=folder,
                                 message_id=message_id, raw=raw, ticket_id=incident.id,
                                 created_at=now))
    plan_mail(rt, session, mailbox=incident.mailbox, template="incidencia_ciudadano",
              values={"incidencia": incident, "consulta": consulta, "dias": days,
                      "plazo": incident.deadline.astimezone(rt.settings.zone)},
              to=[incident.citizen_address], now=now, ticket_id=incident.id,
              in_reply_to=in_reply_to, references=references)
    _send_to_organ(rt, session, incident, organ, now)
    incident.first_organ = organ
    return incident


def _send_to_organ(rt: Runtime, session: Session, incident: Ticket, organ: str,
                   now: datetime) -> None:
    settings = rt.settings.organs[organ]
    days = settings.deadline_working_days
    incident.organ = incident.competent_organ = organ
    incident.status, incident.level, incident.derived_at = "derived", 2, now
    incident.organ_answered_at = None
    incident.organ_deadline = min(rt.calendar.add_working_days(now, days), incident.deadline)
    session.add(incident)
    plan_mail(rt, session, mailbox=incident.mailbox, template="incidencia_organo",
              values={"incidencia": incident, "organo": organ, "oti": _third(rt),
                      "plazo": incident.organ_deadline.astimezone(rt.settings.zone)},
              to=[settings.address], now=now, ticket_id=incident.id,
              grant=grant(rt, organ_holder(organ), "incident", now))
    add_trace(session, incident.id, "sent to the second level",
              f"{organ} ({settings.address}), due {incident.organ_deadline.isoformat()}", now)


def _third(rt: Runtime) -> str:
    return rt.settings.incidents.third_level


def _escalate(rt: Runtime, session: Session, incident: Ticket, reply: OrganReply,
              organ: str, at: datetime, now: datetime) -> None:
    """Same day to IT, with the assistants in copy (manual 9.3.2). Times count from the
    organ's mail (`at`), not from when buzon read it."""
    third = _third(rt)
    days = rt.settings.incidents.third_level_working_days
    incident.status, incident.level, incident.organ = "escalated", 3, third
    incident.escalated_at = incident.escalated_at or at
    incident.organ_deadline = rt.calendar.add_working_days(at, days)
    session.add(incident)
    _to_third_level(rt, session, incident, "incidencia_escalada",
                    {"incidencia": incident, "organo": organ, "oti": third,
                     "nota": reply.text[:6000], "dias": days,
                     "plazo": incident.organ_deadline.astimezone(rt.settings.zone)}, now)
    add_trace(session, incident.id, "escalated to the third level",
              f"{organ} escalated it to {third}, due {incident.organ_deadline.isoformat()}",
              at, actor=organ)
    _extend_for_third_level(rt, session, incident, now)


def _extend_for_third_level(rt: Runtime, session: Session, incident: Ticket,
                            now: datetime) -> None:
    """IT's term and the second level's validation may run past the incident's own
    deadline: then the deadline moves, and the citizen is told the new date (manual
    9.3.7.1: the citizen hears when response times are extended)."""
    due = rt.calendar.add_working_days(incident.organ_deadline,
                                       rt.settings.incidents.validation_working_days)
    if due <= as_aware(incident.deadline):
        return
    add_trace(session, incident.id, "deadline extended",
              f"{as_aware(incident.deadline).isoformat()} -> {due.isoformat()}: at the third "
              "level", now)
    incident.deadline = due
    session.add(incident)
    in_reply_to, references = _incident_thread(session, incident)
    plan_mail(rt, session, mailbox=incident.mailbox, template="incidencia_ampliacion",
              values={"incidencia": incident, "plazo": due.astimezone(rt.settings.zone)},
              to=[incident.citizen_address], now=now, ticket_id=incident.id,
              in_reply_to=in_reply_to, references=references)


def _to_third_level(rt: Runtime, session: Session, incident: Ticket, template: str,
                    values: dict, now: datetime) -> None:
    """To IT with its capability; the assistants' copy (manual 9.3.2) is a mail of its
    own, so no one but IT holds IT's proof."""
    third = _third(rt)
    plan_mail(rt, session, mailbox=incident.mailbox, template=template, values=values,
              to=[rt.settings.organs[third].address], now=now, ticket_id=incident.id,
              grant=grant(rt, organ_holder(third), "third_level", now))
    if rt.settings.people.assistants:
        plan_mail(rt, session, mailbox=incident.mailbox, template=template, values=values,
                  to=rt.settings.people.assistants, now=now, ticket_id=incident.id)


def _ask_validation(rt: Runtime, session: Session, incident: Ticket, reply: OrganReply,
                    organ: str, at: datetime, now: datetime) -> None:
    days = rt.settings.incidents.validation_working_days
    competent = incident.competent_organ
    incident.proposed_answer = reply.text[:20000]
    incident.status, incident.organ = "validating", competent
    incident.organ_deadline = rt.calendar.add_working_days(at, days)
    session.add(incident)
    plan_mail(rt, session, mailbox=incident.mailbox, template="incidencia_validacion",
              values={"incidencia": incident, "organo": competent, "oti": organ,
                      "respuesta": incident.proposed_answer,
                      "plazo": incident.organ_deadline.astimezone(rt.settings.zone)},
              to=[rt.settings.organs[competent].address], now=now, ticket_id=incident.id,
              grant=grant(rt, organ_holder(competent), "validation", now))
    add_trace(session, incident.id, "third level answered",
              f"{organ} answered; {competent} validates it by "
              f"{incident.organ_deadline.isoformat()}", at, actor=organ)


def _observed(rt: Runtime, session: Session, incident: Ticket, reply: OrganReply,
              organ: str, at: datetime, now: datetime) -> None:
    third = _third(rt)
    incident.status, incident.organ = "escalated", third
    incident.organ_deadline = rt.calendar.add_working_days(
        at, rt.settings.incidents.third_level_working_days)
    session.add(incident)
    _to_third_level(rt, session, incident, "incidencia_observada",
                    {"incidencia": incident, "organo": organ, "oti": third,
                     "observaciones": reply.text[:6000],
                     "plazo": incident.organ_deadline.astimezone(rt.settings.zone)}, now)
    add_trace(session, incident.id, "answer observed",
              f"{organ} did not validate {third}'s answer: back to {third}", at, actor=organ)


def _resolve(rt: Runtime, session: Session, incident: Ticket, answer: str, solved_by: str,
             validated_by: str, at: datetime, now: datetime) -> None:
    """The answer goes to the assistants, who send it on (daemon.flows.relay), or with
    automatic relay to the citizen the same day it is given (or validated)."""
    level = incident.level
    incident.solved_by = solved_by
    if not relay.automatic(rt):
        validated = f", validated by {validated_by}" if validated_by else ""
        add_trace(session, incident.id, "answered",
                  f"level {level}: {solved_by} answered{validated}", at,
                  actor=validated_by or solved_by)
        relay.hand_over(rt, session, incident, validated_by or solved_by, answer,
                        "resolved", at, now)
        return
    mark_answered(rt, session, incident, at, by=solved_by, channel="organ")
    incident.status, incident.solved_by, incident.resolved_level = "resolved", solved_by, level
    incident.organ_answered_at = at
    session.add(incident)
    in_reply_to, references = _incident_thread(session, incident)
    plan_mail(rt, session, mailbox=incident.mailbox, template="incidencia_respuesta",
              values={"incidencia": incident, "respuesta": answer[:20000]},
              to=[incident.citizen_address], now=now, ticket_id=incident.id,
              in_reply_to=in_reply_to, references=references,
              automatic=False)  # the organ's own words, relayed
    validated = f", validated by {validated_by}" if validated_by else ""
    add_trace(session, incident.id, "resolved",
              f"level {level}: {solved_by}'s answer{validated} was sent to the citizen", at,
              actor=validated_by or solved_by)


def _functional_requirement(rt: Runtime, session: Session, incident: Ticket,
                            reply: OrganReply, organ: str, at: datetime,
                            now: datetime) -> None:
    incident.solved_by = organ
    if not relay.automatic(rt):
        relay.hand_over(rt, session, incident, organ, reply.text, "functional_requirement",
                        at, now)
        return
    incident.status, incident.organ_answered_at = "functional_requirement", at
    session.add(incident)
    in_reply_to, references = _incident_thread(session, incident)
    plan_mail(rt, session, mailbox=incident.mailbox, template="incidencia_requerimiento",
              values={"incidencia": incident, "detalle": reply.text[:6000]},
              to=[incident.citizen_address], now=now, ticket_id=incident.id,
              in_reply_to=in_reply_to, references=references,
              automatic=False)  # the organ's own words, relayed
    add_trace(session, incident.id, "functional requirement",
              f"{organ}: the fix needs new development; the citizen was told", at, actor=organ)


def _incident_thread(session: Session, incident: Ticket) -> tuple[str, tuple[str, ...]]:
    consulta = session.get(Ticket, incident.linked_ticket)
    return citizen_thread(session, consulta) if consulta else ("", ())


def set_complexity(session: Session, incident: Ticket, complexity: str, who: str,
                   at: datetime) -> bool:
    if not complexity or complexity == incident.complexity:
        return False
    add_trace(session, incident.id, "complexity",
              f"{incident.complexity or '(none)'} -> {complexity}", at, actor=who)
    incident.complexity = complexity
    session.add(incident)
    return True


def organ_replied(rt: Runtime, session: Session, incident: Ticket, organ: str, at: datetime,
                  body: str, now: datetime) -> str:
    """An organ's reply on an incident; returns what it did, for the log."""
    reply = read_organ_reply(body)
    set_complexity(session, incident, reply.complexity, organ, at)
    closed = incident.status in ("resolved", "functional_requirement")
    if reply.command == "functional" and not closed and organ in (
            incident.competent_organ, _third(rt)):
        _functional_requirement(rt, session, incident, reply, organ, at, now)
        return "functional requirement"
    if organ == incident.competent_organ and incident.status == "derived":
        if reply.command == "escalate":
            _escalate(rt, session, incident, reply, organ, at, now)
            return "escalated"
        if reply.command == "reroute" and reply.argument in rt.settings.organs \
                and reply.argument not in (organ, _third(rt)):
            add_trace(session, incident.id, "rerouted",
                      f"{organ} says {reply.argument} is competent", at, actor=organ)
            _send_to_organ(rt, session, incident, reply.argument, at)
            return f"rerouted to {reply.argument}"
        if reply.text and not reply.command:
            _resolve(rt, session, incident, reply.text, organ, "", at, now)
            return "resolved at the second level"
    if organ == _third(rt) and incident.status == "escalated" and reply.text:
        _ask_validation(rt, session, incident, reply, organ, at, now)
        return "third level answered; validation asked"
    if organ == incident.competent_organ and incident.status == "validating":
        if reply.command == "validated":
            # A corrected text under VALIDADO replaces IT's, as the second level decided.
            answer = reply.text or incident.proposed_answer
            _resolve(rt, session, incident, answer, _third(rt), organ, at, now)
            return "validated and sent"
        if reply.command == "observed":
            _observed(rt, session, incident, reply, organ, at, now)
            return "observed"
    add_trace(session, incident.id, "organ wrote",
              f"{organ}: {(reply.command or reply.text or 'no text')[:200]}", at, actor=organ)
    return "recorded"


def read_complexity_keywords(rt: Runtime, session: Session,
                             flags_per_ticket: list[tuple[str, tuple]], at: datetime) -> int:
    """Complexity keywords (Complejidad_Alto ...) an assistant put on the mail of a
    consulta that became an incident: (the consulta's id, the mail's flags) each."""
    changed = 0
    for consulta_id, flags in flags_per_ticket:
        names = [flag.decode(errors="replace") for flag in flags]
        wanted = [complexity_of(name[len("Complejidad_"):]) for name in names
                  if name.lower().startswith("complejidad_")]
        wanted = [value for value in wanted if value]
        consulta = session.get(Ticket, consulta_id)
        if not wanted or consulta is None or not consulta.incident:
            continue
        incident = session.get(Ticket, consulta.incident)
        if incident is not None and incident.kind == "incidencia":
            changed += set_complexity(session, incident, wanted[-1], "assistant", at)
    return changed
