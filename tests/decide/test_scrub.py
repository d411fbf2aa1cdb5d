"""What of a past answer may be offered to the next citizen (issue 15, point 9): no
greeting, closing, signature, names, e-mail addresses, DNI, RUC or phone numbers; and
the suggested draft's note, found and removed however a mail client re-wrote it."""

from __future__ import annotations

import pytest

from daemon.decide.scrub import (
    DNI,
    EMAIL,
    NAME,
    NOTE_END,
    NOTE_START,
    PHONE,
    RUC,
    has_note,
    scrub_answer,
    without_data,
    without_note,
)

FULL = """Estimado señor Pérez:

Buenos días. En atención a su consulta, le informamos que para actualizar los datos
de su empresa en el RNP debe ingresar con su RUC 20512345678 y el DNI 45678912 del
representante legal. Si el sistema muestra un error, puede llamar a la central
(01) 614-3636 o escribir a soporte desde juan.perez@gmail.com; su celular 987 654 321
quedó registrado como contacto.

El trámite se rige por la Directiva N° 003-2020-OSCE/CD y el D.S. N° 344-2018-EF.

Atentamente,

Ana Torres Villanueva
Asistente de la Unidad de Atención a la Usuaria y al Usuario
OECE
Teléfono: 614-3636 anexo 2000
"""


def test_a_full_answer_keeps_only_its_reusable_body():
    scrubbed = scrub_answer(FULL, ["Juan Pérez", "Ana Torres Villanueva"])
    assert scrubbed.startswith("En atención a su consulta, le informamos")
    for leaked in ("Estimado", "Pérez", "Buenos días", "Atentamente", "Ana", "Torres",
                   "Asistente", "20512345678", "45678912", "614-3636", "juan.perez",
                   "987 654 321", "anexo 2000"):
        assert leaked not in scrubbed, leaked
    assert f"RUC {RUC} y el DNI {DNI}" in scrubbed
    assert f"central\n{PHONE} o escribir a soporte desde {EMAIL}; su celular {PHONE}" \
        in scrubbed
    # A norm's number is not a phone, a DNI or a RUC.
    assert scrubbed.endswith("Directiva N° 003-2020-OSCE/CD y el D.S. N° 344-2018-EF.")


@pytest.mark.parametrize(("answer", "body"), [
    ("Estimada Rosa:\nPuede dejar su bicicleta en el sótano 1.\nAna Torres",
     "Puede dejar su bicicleta en el sótano 1."),
    ("Hola Luis, buenos días: el plazo vence el lunes.\n\nSaludos cordiales,\nMaría",
     "El plazo vence el lunes."),
    ("Buenos días, Sra. Quispe. Le confirmamos que su inscripción está vigente.\n\n"
     "Cordialmente, Carlos", "Le confirmamos que su inscripción está vigente."),
    ("Estimada/o Rosa Quispe:\n\nBuenas tardes:\n\nEl SEACE estará disponible mañana.\n\n"
     "Atentamente,\nUnidad de Atención a la Usuaria y al Usuario\nOrganismo Especializado "
     "para las Contrataciones Públicas Eficientes (OECE)",
     "El SEACE estará disponible mañana."),
    ("Señores:\nDe mi consideración:\nLa garantía se presenta antes de firmar el contrato.\n"
     "Quedo atenta a sus consultas.\nLic. Carmen Díaz\nEspecialista legal",
     "La garantía se presenta antes de firmar el contrato."),
    # No greeting and no signature: the answer stays whole.
    ("La garantía de fiel cumplimiento equivale al 10 % del monto del contrato.",
     "La garantía de fiel cumplimiento equivale al 10 % del monto del contrato."),
])
def test_greeting_closing_and_signature_go(answer, body):
    assert scrub_answer(answer) == body


def test_a_sentence_that_opens_like_a_greeting_is_kept():
    answer = ("Hola nuevamente le recordamos que el registro en el RNP es gratuito y se "
              "hace en línea.")
    assert scrub_answer(answer) == answer


def test_names_of_the_earlier_citizen_go_wherever_they_are():
    text = "El señor Pérez Gómez presentó su oferta; la Sra. Quispe no. Juan la firmó."
    assert without_data(text, ["Juan Pérez Gómez"]) == \
        f"El señor {NAME} presentó su oferta; la Sra. {NAME} no. {NAME} la firmó."


@pytest.mark.parametrize(("text", "expected"), [
    ("Mi DNI es 07654321.", f"Mi DNI es {DNI}."),
    ("RUC 10456789012 (persona natural)", f"RUC {RUC} (persona natural)"),
    ("RUC: 17123456789", f"RUC: {RUC}"),
    ("Llame al 999888777 o al +51 987 654 321.", f"Llame al {PHONE} o al {PHONE}."),
    ("Teléfono fijo: 614-3636", f"Teléfono fijo: {PHONE}"),
    ("Central: +51 1 614 3636", f"Central: {PHONE}"),
    ("Escriba a r.quispe+oece@correo.com.pe hoy", f"Escriba a {EMAIL} hoy"),
    # Not personal data: amounts, norms, file numbers, a ticket, a year range.
    ("El monto es S/ 1,234,567.89 y el valor 12345678.50", None),
    ("Resolución N° 123-2020-OSCE/PRE, expediente 2026-12345678", None),
    ("Ticket C-2026-000123, Ley N° 30225, periodo 2019-2020", None),
])
def test_personal_data_becomes_placeholders(text, expected):
    assert without_data(text) == (expected if expected is not None else text)


def draft_body() -> str:
    return (f"{NOTE_START}\nRespuesta sugerida por buzon.\nAntes de enviar, verifique...\n"
            f"{NOTE_END}\n\nEstimada/o Luis Rojas:\n\nPuede dejar su bicicleta en el "
            "sótano 1.\n")


def test_the_note_markers_make_one_block_and_either_marker_is_found():
    body = draft_body()
    assert has_note(body)
    assert without_note(body).strip() == ("Estimada/o Luis Rojas:\n\nPuede dejar su "
                                          "bicicleta en el sótano 1.")
    assert has_note(NOTE_END) and has_note(NOTE_START)
    assert not has_note("Puede dejar su bicicleta. La nota de la sesión fue correcta.")


@pytest.mark.parametrize("rewrite", [
    lambda t: "\n".join(f"> {line}" for line in t.splitlines()),  # quoted
    lambda t: t.lower(),  # re-cased
    lambda t: t.replace("=== ", "==").replace(" ===", "=="),  # frames re-typed
    lambda t: t.replace("NOTA PARA", "NOTA  PARA").replace("á", "a"),  # spacing, accents
    lambda t: t.replace(NOTE_START, "[NOTA PARA LA/EL ASISTENTE - BORRE ESTE RECUADRO ANTES"
                        " DE ENVIAR]").replace(NOTE_END, "[FIN DE LA NOTA]"),  # older drafts
])
def test_the_note_is_found_however_a_mail_client_rewrote_it(rewrite):
    text = rewrite(draft_body())
    assert has_note(text)
    assert "verifique" not in without_note(text).lower()


def test_an_answer_sent_with_its_note_is_stored_without_it():
    sent = draft_body() + "\nAtentamente,\nAna Torres"
    assert scrub_answer(sent, ["Luis Rojas"]) == "Puede dejar su bicicleta en el sótano 1."


def test_a_note_whose_end_marker_was_deleted_ends_at_the_first_blank_line():
    text = f"{NOTE_START}\nRespuesta sugerida por buzon.\n\nEl plazo es de 8 días."
    assert without_note(text).strip() == "El plazo es de 8 días."
