"""Every template renders with the values its code passes (StrictUndefined), and its Spanish
follows the manual (issue #15, points 5 and 10): "Estimada/o usuaria/o", "la/el asistente",
"2 días hábiles", "criticidad", dates as "martes 10 de marzo de 2026, a las 08:30", the
unit's name as signature, never "Mesa de consultas", no organ named by its acronym to a
citizen, and acknowledgements that say the mailbox is not the Mesa de Partes Digital."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import pytest

from classifiers.retrieval import Source
from daemon.decide.scrub import DNI, NAME, NOTE_END, NOTE_START
from daemon.mail.compose import DEFAULT_UNIT, build_environment, spanish_datetime
from daemon.reports.incident_reports import IncidentDay, IncidentMonth
from daemon.reports.workbooks import DailyRegister, MonthlyIndicators
from daemon.store.models import OutboxAction, Ticket, TrustRefusal

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
ENV = build_environment(TEMPLATES_DIR)
LIMA = ZoneInfo("America/Lima")
OECE = "Organismo Especializado para las Contrataciones Públicas Eficientes (OECE)"
PARTS = ("subject", "txt", "html")


def lima(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LIMA)


# Realistic values, built as the code builds them -------------------------------------------

def consulta(**changes) -> Ticket:
    values = dict(
        id="C-2026-000123", mailbox="consultas", kind="consulta", status="open",
        folder="SEACE", citizen_address="rosa.quispe@correo.pe", citizen_name="Rosa Quispe",
        subject="No puedo registrar mi oferta en el SEACE",
        received_at=lima("2026-03-09 10:15"), effective_receipt=lima("2026-03-09 10:15"),
        deadline=lima("2026-03-10 10:15"), created_at=lima("2026-03-09 10:15"),
        question="Buenos días, al registrar mi oferta el sistema muestra un error de sesión. "
                 "¿Qué debo hacer?", category="SEACE")
    values.update(changes)
    return Ticket(**values)


def sugerencia(**changes) -> Ticket:
    values = dict(
        id="S-2026-000045", mailbox="sugerencias", kind="sugerencia", folder="INBOX",
        citizen_address="jorge.huaman@correo.pe", citizen_name="Jorge Huamán",
        subject="Buscador de procedimientos por región",
        received_at=lima("2026-03-09 11:00"), effective_receipt=lima("2026-03-09 11:00"),
        deadline=lima("2026-03-23 11:00"), created_at=lima("2026-03-09 11:00"),
        question="Sugiero que el buscador permita filtrar los procedimientos por región.")
    values.update(changes)
    return Ticket(**values)


def incidencia(**changes) -> Ticket:
    values = dict(
        id="I-2026-000007", mailbox="consultas", kind="incidencia", status="derived",
        folder="Incidencias/Alta", citizen_address="rosa.quispe@correo.pe",
        citizen_name="Rosa Quispe", subject="No puedo registrar mi oferta en el SEACE",
        received_at=lima("2026-03-09 12:00"), effective_receipt=lima("2026-03-09 12:00"),
        deadline=lima("2026-03-16 12:00"), created_at=lima("2026-03-09 12:00"),
        question="Al registrar mi oferta el sistema muestra un error de sesión.",
        linked_ticket="C-2026-000123", criticality="Alta", complexity="alto", level=2,
        organ="DSEACE", competent_organ="DSEACE")
    values.update(changes)
    return Ticket(**values)


def acuse(ticket_id: str, named: bool, when: str, deadline: str) -> dict:
    """As intake builds it; `when`: in office hours, after the cutoff, before opening."""
    received = lima({"in_hours": "2026-03-10 10:15", "late": "2026-03-09 17:05",
                     "early": "2026-03-10 07:10"}[when])
    effective = received if when == "in_hours" else lima("2026-03-10 08:30")
    return {"ticket_id": ticket_id, "asunto": "Plazo para presentar ofertas",
            "nombre": "Rosa Quispe" if named else "", "recibido": received,
            "recepcion_oficial": effective, "plazo": lima(deadline),
            "fuera_de_horario": effective.date() != received.date(), "hora_corte": "16:30"}


SOURCE = Source(key="seace-recuperar-contrasena", title="Recuperar la contraseña del SEACE",
                category="SEACE", questions=("¿Cómo recupero mi contraseña?",),
                answer="Ingrese a la opción «Olvidé mi contraseña» y siga los pasos.",
                references=("Directiva 003-2020",), checked="2026-01-15",
                verify="que el enlace siga vigente")
ANSWERED = Source(key="ticket:C-2026-000077", title="Clave del SEACE bloqueada",
                  category="SEACE", questions=("Mi clave está bloqueada",),
                  answer="Puede desbloquearla desde la opción de recuperación.",
                  kind="answered")

REFUSAL = TrustRefusal(ticket_id="C-2026-000123", at=lima("2026-03-09 15:20"),
                       sender="otra.persona@correo.pe", holder="organ:DSEACE",
                       reason="the proof expired")
FAILED = OutboxAction(mailbox="consultas", action="send", target="rosa.quispe@correo.pe",
                      ticket_id="C-2026-000123", attempts=7,
                      last_error="550 5.1.1 mailbox unavailable", created_at=lima(
                          "2026-03-09 10:20"))
MONTH = IncidentMonth(total=12, resolved_level_2=7, resolved_level_3=3,
                      functional_requirements=1, in_process=1, correctly_routed=80.0,
                      by_criticality={"Alta": 4, "Media": 5, "Baja": 3},
                      by_complexity={"alto": 2})
INDICATORS = MonthlyIndicators(
    month="2026-02", received=420, resolved=400, in_process=20, on_time=380,
    average_working_hours=6.5, average_hours=20.1, categories={"SEACE": 250, "RNP": 120,
                                                               "Legal": 50},
    levels={}, correctly_routed=91.2, satisfaction={"SEACE": 4.2}, incidents=MONTH, data=b"")
REGISTER = DailyRegister(day=date(2026, 3, 9), received=35, answered=30, answered_on_time=28,
                         pending=5, per_assistant={"Ana Torres": {"answered": 16, "on_time": 15,
                                                                  "late": 1}}, data=b"")
ZERO = {"entered": 0, "attended": 0, "solved": 0}
INCIDENT_DAY = IncidentDay(
    day=date(2026, 3, 9), totals={"entered": 2, "attended": 3, "solved": 1},
    by_criticality={"Alta": {"entered": 1, "attended": 2, "solved": 1}, "Media": dict(ZERO),
                    "Baja": {"entered": 1, "attended": 1, "solved": 0}},
    by_complexity={}, by_organ={"DSEACE": {"entered": 2, "attended": 3, "solved": 1}},
    open_count=4, data=b"")


WHEN = ("in_hours", "late", "early")


def scenarios() -> dict[str, list[dict]]:
    """For each template, the values its code passes, in the shapes that change the text."""
    plazo = lima("2026-03-16 12:00")
    unnamed = {"citizen_name": ""}
    return {
        "acuse_consulta": [acuse("C-2026-000123", named, when, "2026-03-11 08:30")
                           for named in (True, False) for when in WHEN],
        "acuse_sugerencia": [acuse("S-2026-000045", named, when, "2026-03-24 08:30")
                             for named in (True, False) for when in WHEN],
        "derivacion_ciudadano": [{"ticket": consulta(**c), "organo": "DSEACE", "plazo": plazo,
                                  "dias": 5} for c in ({}, unnamed)],
        "derivacion_organo": [{"ticket": consulta(**c), "organo": "DSEACE", "plazo": plazo,
                               "dias": dias} for c, dias in (({}, 5), (unnamed, 1))],
        "derivacion_sugerencia": [{"ticket": sugerencia(**c), "organo": "DTN",
                                   "plazo": plazo, "dias": dias}
                                  for c, dias in (({}, 5), (unnamed, 1))],
        "resultado_sugerencia": [{"ticket": sugerencia(**c), "organo": "DSEACE",
                                  "respuesta": "IMPLEMENTADA\nDesde abril el buscador filtra "
                                               "los procedimientos por región."}
                                 for c in ({}, unnamed, {"result": "evaluating"})],
        "respuesta_organo": [{"ticket": ticket, "organo": organo, "carpeta": ticket.folder,
                              "respuesta": "Estimados: la usuaria debe renovar su clave."}
                             for ticket, organo in (
                                 (consulta(status="organ_answered"), "DSEACE"),
                                 (incidencia(status="to_relay", result="resolved"), "OTI"),
                                 (sugerencia(status="to_relay", result="implemented"), "DTN"),
                                 (sugerencia(status="derived", result="evaluating"), "DTN"))],
        "recordatorio_organo": [{"ticket": consulta(status="derived"), "organo": "DRNP",
                                 "plazo": plazo}],
        "no_es_sugerencia": [{"ticket": sugerencia(**c)} for c in ({}, unnamed)],
        # Surveys go to answered consultas and resolved incidents only.
        "encuesta": [{"ticket": t} for t in (consulta(), incidencia(status="resolved",
                                                                    citizen_name=""))],
        "incidencia_ampliacion": [{"incidencia": incidencia(**c), "plazo": plazo}
                                  for c in ({}, unnamed)],
        "incidencia_ciudadano": [{"incidencia": incidencia(**c), "consulta": consulta(**c),
                                  "dias": dias, "plazo": plazo}
                                 for c, dias in (({}, 5), (unnamed, 1))],
        "incidencia_organo": [{"incidencia": incidencia(), "organo": "DSEACE", "oti": "OTI",
                               "plazo": plazo}],
        "incidencia_escalada": [{"incidencia": incidencia(status="escalated", level=3,
                                                          organ="OTI", complexity=complexity),
                                 "organo": "DSEACE", "oti": "OTI", "nota": nota,
                                 "dias": dias, "plazo": plazo}
                                for complexity, nota, dias in (
                                    ("alto", "Revisamos la sesión: el error es del servidor.",
                                     5), ("", "", 1))],
        "incidencia_validacion": [{"incidencia": incidencia(status="validating"),
                                   "organo": "DSEACE", "oti": "OTI",
                                   "respuesta": "Corregimos la pasarela de sesión.",
                                   "plazo": plazo}],
        "incidencia_observada": [{"incidencia": incidencia(status="escalated", organ="OTI"),
                                  "organo": "DSEACE", "oti": "OTI",
                                  "observaciones": observations, "plazo": plazo}
                                 for observations in ("Falta indicar el plazo.", "")],
        "incidencia_respuesta": [{"incidencia": incidencia(status="resolved", **c),
                                  "respuesta": "Se restableció su usuario; ya puede "
                                               "registrar su oferta."}
                                 for c in ({}, unnamed)],
        "incidencia_requerimiento": [{"incidencia": incidencia(
            status="functional_requirement", **c), "detalle": detalle}
            for c, detalle in (({}, "Se necesita un nuevo reporte en el sistema."),
                               (unnamed, ""))],
        "revision_solicitud": [{"ticket": consulta(category="Legal", folder="Legal/Revisión"),
                                "borrador": "Estimada Rosa:\n\nLa penalidad por mora...",
                                "plazo": lima("2026-03-10 10:15"), "horas_restantes": 5.5,
                                "vence_token": lima("2026-03-10 10:15")}],
        "revision_ya_decidida": [{"ticket": consulta(), "decision": decision,
                                  "por": "supervisor@oece.gob.pe"}
                                 for decision in ("approved", "observed")],
        "revision_aprobada": [{"ticket": consulta(), "supervisor": "supervisor@oece.gob.pe"}],
        "revision_observada": [{"ticket": consulta(), "supervisor": "supervisor@oece.gob.pe",
                                "observaciones": "Cite el artículo 162 del Reglamento."}],
        "acciones_rechazadas": [{"buzon": "consultas@oece.gob.pe", "acciones": [
            ("keywords", "C-2026-000123", "UID STORE: NO [CANNOT] Keyword length too long"),
            ("move", "", "move failed: [TRYCREATE] Mailbox doesn't exist")]}],
        "parte_omitida": [{"parte": "la clasificación automática por tema (el modelo)",
                           "error": "RuntimeError: no usable model in /var/lib/buzon/model"}],
        "etapa_fallida": [{"buzon": "consultas@oece.gob.pe", "etapa": "receipt",
                           "error": "stage receipt failed: TypeError: can't compare "
                                    "offset-naive and offset-aware times",
                           "correos": correos, "carpeta": "Cuarentena"} for correos in (1, 3)],
        "nueva_referencia": [{"ticket": consulta(status="derived"), "organo": "DSEACE",
                              "motivo": motivo}
                             for motivo in ("refused", "recorded", "evaluating", "sent_back")],
        "ficha": [{"ticket": ticket, "recibido": lima("2026-03-09 17:05"),
                   "recepcion_oficial": lima("2026-03-10 08:30"),
                   "plazo": lima("2026-03-11 08:30"), "carpeta": carpeta}
                  for ticket, carpeta in ((consulta(), "SEACE"), (sugerencia(), "INBOX"),
                                          (consulta(id="I-2026-000007", kind="incidencia",
                                                    criticality="Alta",
                                                    linked_ticket="C-2026-000123"),
                                           "Incidencias/Alta"))],
        "limite_acuses": [{"por_dominio": True, "dominio": "correo.test", "tope": 500,
                           "buzon": "consultas@oece.gob.pe", "dia": "martes 10 de marzo de 2026",
                           "desde": "00:00", "hasta": "23:59",
                           "clave": "automatic_mail.ack_cap_per_domain_per_day"},
                          {"por_dominio": False, "dominio": "", "tope": 300,
                           "buzon": "consultas@oece.gob.pe", "dia": "martes 10 de marzo de 2026",
                           "desde": "10:00", "hasta": "10:59",
                           "clave": "automatic_mail.ack_cap_per_hour"}],
        "comandos_rechazados": [{"rechazos": rechazos, "zona": LIMA}
                                for rechazos in ([REFUSAL], [REFUSAL, REFUSAL])],
        "escalamiento": [{"tickets": [consulta(), consulta(id="C-2026-000124", organ="DRNP",
                                                           status="derived", folder="")],
                          "zona": LIMA, "ahora": lima("2026-03-10 11:00")}],
        "resumen_matutino": [{"vencidas": [consulta()], "por_vencer": [consulta(folder="")],
                              "en_organo": [consulta(status="derived", organ="DRNP")],
                              "en_revision": [consulta(status="in_review")],
                              "por_enviar": [incidencia(status="to_relay", organ="DSEACE")],
                              "zona": LIMA,
                              "dia": lima("2026-03-10 08:00")},
                             {"vencidas": [], "por_vencer": [], "en_organo": [],
                              "en_revision": [], "por_enviar": [], "zona": LIMA,
                              "dia": lima("2026-03-10 08:00")}],
        "vigilancia_detenida": [{"buzones": [{"buzon": "consultas",
                                              "latido": lima("2026-03-10 09:12"),
                                              "nota": nota}]} for nota in ("IDLE", "")],
        "envio_fallido": [{"correos": [FAILED]},
                          {"correos": [OutboxAction(mailbox="consultas", action="send",
                                                    target="coordinador@oece.gob.pe",
                                                    attempts=1, last_error="timeout",
                                                    created_at=lima("2026-03-09 10:20"))]}],
        "registro_diario": [{"registro": REGISTER, "dia": lima("2026-03-09 17:15")}],
        "reporte_incidencias": [{"reporte": INCIDENT_DAY, "dia": lima("2026-03-09 17:15")}],
        "indicadores_mensuales": [
            {"i": INDICATORS, "mes": "febrero de 2026", "graficos": [{
                "nombre": "categorias.png",
                "descripcion": "Gráfico de barras de las consultas recibidas por categoría "
                               "en febrero de 2026. Legal: 50 consultas; RNP: 120 consultas; "
                               "SEACE: 250 consultas."}]},
            {"i": INDICATORS, "mes": "febrero de 2026", "graficos": []}],
        "respuesta_sugerida": [{"ticket_id": "C-2026-000123", "nombre": nombre,
                                "respuesta": source.answer, "fuente": source,
                                "similitud": 87, "otras": otras, "es_legal": legal,
                                "nota_inicio": NOTE_START, "nota_fin": NOTE_END,
                                "marcadores": marcadores}
                               for nombre, source, otras, legal, marcadores in (
                                   ("Rosa Quispe", SOURCE, [(ANSWERED, 61)], False, []),
                                   ("", ANSWERED, [], True, [NAME, DNI]))],
        "nota_en_respuesta": [{"ticket": consulta(), "nota_inicio": NOTE_START,
                               "nota_fin": NOTE_END}],
        "legal_sin_aprobacion": [{"ticket": consulta(category="Legal", folder="Legal"),
                                  "asistente": asistente, "carpeta_revision": "Legal/Revisión"}
                                 for asistente in ("asistente@oece.gob.pe", "")],
    }


SCENARIOS = scenarios()
CITIZEN_FACING = {"acuse_consulta", "acuse_sugerencia", "derivacion_ciudadano", "encuesta",
                  "incidencia_ciudadano", "incidencia_respuesta", "incidencia_requerimiento",
                  "incidencia_ampliacion", "no_es_sugerencia", "resultado_sugerencia",
                  "respuesta_sugerida"}
CASES = [(name, n) for name, values in SCENARIOS.items() for n in range(len(values))]


def template_names() -> set[str]:
    return {path.name.split(".")[0] for path in TEMPLATES_DIR.glob("*.j2")}


def render(name: str, values: dict) -> dict[str, str]:
    """Each part of the template that exists, rendered."""
    parts = {}
    for part in PARTS:
        try:
            template = ENV.get_template(f"{name}.{part}.j2")
        except jinja2.TemplateNotFound:
            continue
        parts[part] = template.render(values)
    return parts


def citizen_part(name: str, text: str) -> str:
    """What reaches the citizen: a suggested answer's note is for the assistant only."""
    if name == "respuesta_sugerida":
        return text.split(NOTE_END, 1)[1]
    return text


# Tests -------------------------------------------------------------------------------------

def test_every_template_is_covered():
    assert template_names() == set(SCENARIOS)
    assert CITIZEN_FACING <= set(SCENARIOS)


@pytest.mark.parametrize(("name", "n"), CASES)
def test_it_renders_with_the_values_its_code_passes(name, n):
    parts = render(name, SCENARIOS[name][n])
    assert "txt" in parts
    for part, text in parts.items():
        assert text.strip(), (name, part)
    if "subject" in parts:
        assert "\n" not in parts["subject"].strip()


STAFF_FORBIDDEN = ("(a)", "(s)", "día(s)", "hábil(es)", "mesa de consultas", "prioridad",
                   "Estimado(a)", "Estimados colegas", "Un(a) ")
CITIZEN_FORBIDDEN = STAFF_FORBIDDEN + ("ciudadano(a)", "Llegó el:")
ACRONYM = re.compile(r"\b(DSEACE|DRNP|DTN|OTI)\b")
COLON_DATE = re.compile(r"\bel:")  # "Se considera recibida el: ..."


def forbidden_in(text: str, forms: tuple[str, ...]) -> list[str]:
    return [form for form in forms if form.lower() in text.lower()]


@pytest.mark.parametrize(("name", "n"), [c for c in CASES if c[0] in CITIZEN_FACING])
def test_citizen_mails_use_the_manuals_forms(name, n):
    for part, text in render(name, SCENARIOS[name][n]).items():
        text = citizen_part(name, text)
        assert not forbidden_in(text, CITIZEN_FORBIDDEN), (name, part, text)
        assert not ACRONYM.search(text), (name, part, ACRONYM.findall(text))
        assert not COLON_DATE.search(text), (name, part, text)


@pytest.mark.parametrize(("name", "n"), [c for c in CASES if c[0] not in CITIZEN_FACING])
def test_staff_mails_use_the_manuals_forms(name, n):
    for part, text in render(name, SCENARIOS[name][n]).items():
        assert not forbidden_in(text, STAFF_FORBIDDEN), (name, part, text)


@pytest.mark.parametrize(("name", "n"), CASES)
def test_every_mail_is_signed_by_the_unit(name, n):
    parts = render(name, SCENARIOS[name][n])
    for part in ("txt", "html"):
        if part in parts:
            assert DEFAULT_UNIT in parts[part], (name, part)
            if name in CITIZEN_FACING:
                assert OECE in parts[part], (name, part)


@pytest.mark.parametrize(("name", "n"), [c for c in CASES if c[0] in CITIZEN_FACING])
def test_citizens_are_greeted_as_the_manual_does(name, n):
    values = SCENARIOS[name][n]
    text = citizen_part(name, render(name, values)["txt"]).lstrip()
    holder = values.get("ticket") or values.get("incidencia")
    named = values["nombre"] if "nombre" in values else holder.citizen_name
    greeting = f"Estimada/o {named}:" if named else "Estimada/o usuaria/o:"
    assert text.startswith(greeting), (name, text[:60])


@pytest.mark.parametrize(("moment", "text"), [
    ("2026-03-10 08:30", "martes 10 de marzo de 2026, a las 08:30"),
    ("2026-11-30 16:30", "lunes 30 de noviembre de 2026, a las 16:30"),
    ("2026-01-01 01:05", "jueves 1 de enero de 2026, a la 01:05"),
])
def test_dates_read_as_the_manual_writes_them(moment, text):
    assert spanish_datetime(lima(moment)) == text


@pytest.mark.parametrize("name", ["acuse_consulta", "acuse_sugerencia"])
def test_the_acknowledgement_in_plain_sentences(name):
    for values in SCENARIOS[name]:
        for part, text in render(name, values).items():
            if part == "subject":
                continue
            flat = " ".join(re.sub(r"<[^>]+>", " ", text).split())
            receipt = spanish_datetime(values["recepcion_oficial"])
            deadline = spanish_datetime(values["plazo"])
            assert f"se considera recibida el {receipt}." in flat, (part, flat)
            assert f"a más tardar el {deadline}." in flat, (part, flat)
            assert "Mesa de Partes Digital" in flat
            assert "de lunes a viernes, de 08:30 a 16:30" in flat
            assert ("fuera del horario" in flat) == values["fuera_de_horario"], (part, flat)
            # When it arrived is said only when it is not the official receipt.
            arrived = f"Su correo llegó el {spanish_datetime(values['recibido'])}"
            assert (arrived in flat) == (values["recibido"] != values["recepcion_oficial"])
            assert "<li>" not in text and "\n- " not in text


def test_a_derived_consulta_tells_the_citizen_its_new_date():
    """Derived, the consulta is due on the organ's term (daemon.flows.second_level)."""
    for values in SCENARIOS["derivacion_ciudadano"]:
        text = " ".join(render("derivacion_ciudadano", values)["txt"].split())
        assert f"a más tardar el {spanish_datetime(values['plazo'])}." in text


@pytest.mark.parametrize(("name", "key"), [("incidencia_ciudadano", "dias"),
                                           ("derivacion_organo", "dias"),
                                           ("derivacion_sugerencia", "dias"),
                                           ("incidencia_escalada", "dias")])
def test_working_days_agree_with_their_number(name, key):
    for values in SCENARIOS[name]:
        text = render(name, values)["txt"]
        days = values[key]
        expected = "1 día hábil" if days == 1 else f"{days} días hábiles"
        assert expected in text, (name, text)
        if days == 1:
            assert "1 días" not in text
