"""Memory bounded by bytes, not by mail count: what a fetch will bring is known from the
server's sizes before it, batches split by watcher.fetch_bytes, a mail larger than the
budget is a batch of its own, and a header padded past its limit is quarantined."""

from __future__ import annotations

from email.message import EmailMessage

from conftest import PASSWORD, at, deliver_many, run, sqlite_rows

from daemon.config import ImapSettings
from daemon.flows.judging import JUDGED_TEXT_CHARS, judged_part
from daemon.mail.imap import HEADER_LIMIT, TEXT_PART_LIMIT, MailboxClient, by_budget
from daemon.mail.parsing import Inbound

QUESTION = "Buenos días, ¿cómo renuevo mi inscripción en el RNP?\n"


def text_mail(number: int, size: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"vecino{number}@correo{number}.test"
    message["To"] = "consultas@osce.test"
    message["Subject"] = f"Consulta {number}"
    message.set_content(QUESTION + "Detalle de la consulta.\n" * (size // 24), cte="8bit")
    return bytes(message)


def with_attachment(number: int, size: int, padding: int = 0) -> bytes:
    message = EmailMessage()
    message["From"] = f"vecino{number}@correo.test"
    message["To"] = "consultas@osce.test"
    message["Subject"] = f"Oferta {number}"
    message.set_content(QUESTION)
    message.add_attachment(bytes(size), maintype="application", subtype="pdf",
                           filename="oferta.pdf")
    return b"".join(b"X-Relleno-%d: %s\n" % (n, b"x" * 80) for n in range(padding // 100)) \
        + bytes(message)


def test_groups_keep_within_the_budget_and_a_larger_item_goes_alone():
    groups = list(by_budget([10, 10, 100, 5, 5, 20], lambda size: size, 20))
    assert groups == [[10, 10], [100], [5, 5], [20]]
    assert list(by_budget([], lambda size: size, 20)) == []


def test_the_plan_knows_what_each_fetch_brings(dovecot):
    address = "plan-bytes@osce.test"
    small, big = text_mail(1, 2_000), with_attachment(2, 3_000_000)
    long_text = text_mail(3, 2_000_000)
    settings = ImapSettings(host="127.0.0.1", port=dovecot.imap_port, security="none",
                            username=address, password_env="UNUSED")
    with MailboxClient("plan", settings, PASSWORD) as client:
        for raw in (small, big, long_text):
            client.client.append("INBOX", raw)
        client.select("INBOX")
        planned = client.plan_fetch(client.uids_after(0))
        by_uid = {item.uid: item for item in planned}
        assert [item.sections is None for item in planned] == [True, False, False]
        assert planned[0].cost == planned[0].size
        assert planned[1].size > 4_000_000 and planned[1].cost < 2_000  # attachment left
        assert TEXT_PART_LIMIT <= planned[2].cost < TEXT_PART_LIMIT + 2_000
        mails = client.fetch_planned(planned)
        # The estimate holds (assembling adds only the boundary lines of a multipart).
        assert [len(m.raw) <= by_uid[m.uid].cost + 100 for m in mails] == [True] * 3


def test_batches_split_by_bytes_and_nothing_is_lost(deployment):
    d = deployment
    d.write_config(watcher={"fetch_bytes": 65536})
    # 30 kB + 30 kB fit in one batch; the third does not; 200 kB is a batch of its own.
    mails = [text_mail(1, 30_000), text_mail(2, 30_000), text_mail(3, 30_000),
             text_mail(4, 200_000)]
    deliver_many(d, mails, at("2026-11-24 10:00"))
    run(d, "2026-11-24 10:05")
    assert len(d.acknowledgements()) == 4
    assert d.folder_uids("INBOX") == []
    [(batches,)] = sqlite_rows(d, "select count(distinct recorded_at) from mail")
    assert batches == 3


def test_a_header_padded_past_its_limit_is_quarantined_with_the_reason(deployment):
    d = deployment
    deliver_many(d, [with_attachment(1, 2_000_000, padding=HEADER_LIMIT + 50_000),
                     with_attachment(2, 2_000_000)], at("2026-11-24 10:00"))
    run(d, "2026-11-24 10:05")
    assert len(d.folder_uids("Cuarentena")) == 1
    assert len(d.acknowledgements("vecino2@correo.test")) == 1
    [(reason,)] = sqlite_rows(d, "select reason from mail where outcome = 'quarantine'")
    assert reason == "header longer than 256 KiB (only its start was read)"


def test_only_the_start_of_a_long_text_is_judged():
    short = Inbound(subject="Consulta", text="hola")
    assert judged_part(short) is short
    long = Inbound(subject="Consulta", text="a" * (JUDGED_TEXT_CHARS + 10))
    assert len(judged_part(long).text) == JUDGED_TEXT_CHARS
    assert judged_part(long).subject == "Consulta" and len(long.text) > JUDGED_TEXT_CHARS
