"""The IMAP client's own bookkeeping, on the real Dovecot."""

from __future__ import annotations

from datetime import UTC, datetime

from conftest import PASSWORD, fixture_bytes

from daemon.config import ImapSettings
from daemon.mail.imap import MailboxClient


def test_the_keyword_lists_announced_after_new_keywords_are_not_kept(deployment):
    """Each new keyword makes the server announce the folder's whole keyword list; a
    backlog of tickets, each with a keyword of its own, would pile those lists up."""
    d = deployment
    for _ in range(3):
        d.deliver(fixture_bytes("plain_consulta_rnp.eml"), datetime(2026, 11, 26, tzinfo=UTC))
    settings = ImapSettings(host="127.0.0.1", port=d.dovecot.imap_port, security="none",
                            username=d.address("consultas"), password_env="UNUSED")
    with MailboxClient("consultas", settings, PASSWORD) as client:
        client.select("INBOX")
        uids = client.uids_after(0)
        client.add_keywords_each([(uid, [f"C-2026-{uid:06d}"]) for uid in uids], window=2)
        kept = client.client._imap.untagged_responses
        assert "FLAGS" not in kept and "PERMANENTFLAGS" not in kept
        fetched = client.client.fetch(uids, ["FLAGS"])
    assert all(f"C-2026-{uid:06d}".encode() in fetched[uid][b"FLAGS"] for uid in uids)


def client_for(d) -> MailboxClient:
    settings = ImapSettings(host="127.0.0.1", port=d.dovecot.imap_port, security="none",
                            username=d.address("consultas"), password_env="UNUSED")
    return MailboxClient("consultas", settings, PASSWORD)


def test_one_store_per_keyword_set_reaches_every_mail_and_a_refusal_names_its_mails(deployment):
    d = deployment
    for _ in range(7):
        d.deliver(fixture_bytes("plain_consulta_rnp.eml"), datetime(2026, 11, 26, tzinfo=UTC))
    with client_for(d) as client:
        client.select("INBOX")
        uids = client.uids_after(0)
        sent: list[bytes] = []
        imap = client.client._imap
        original = imap._command
        imap._command = lambda *args: (sent.append(args[1]), original(*args))[1]
        refused = client.add_keywords_each(
            [(uid, ["\\Flagged", "Por_vencer"] if uid % 2 else ["Vencido"]) for uid in uids]
            + [(uids[0], ["K" * 80])], uids_per_command=3)
        imap._command = original
        fetched = client.client.fetch(uids, ["FLAGS"])
    assert sent.count("STORE") == 2 + 1 + 1  # 4 odd UIDs by 3, 3 even ones, the long one
    assert refused == {uids[0]: refused[uids[0]]} and "too long" in refused[uids[0]].lower()
    for uid in uids:
        wanted = {b"\\Flagged", b"Por_vencer"} if uid % 2 else {b"Vencido"}
        assert wanted <= set(fetched[uid][b"FLAGS"])


def test_multiappend_puts_every_copy_in_place_with_its_flag(deployment):
    d = deployment
    drafts = [fixture_bytes("plain_consulta_rnp.eml").replace(
        b"Message-ID: <", f"Message-ID: <n{n}.".encode()) + b"x" * (n * 97)
        for n in range(450)]
    with client_for(d) as client:
        assert client.client.has_capability("MULTIAPPEND")
        client.client.create_folder("Copias")
        sent: list[bytes] = []
        imap = client.client._imap
        original = imap.send
        imap.send = lambda data: (sent.append(data), original(data))[1]
        client.append_each("Copias", [(raw, b"\\Draft") for raw in drafts],
                           per_command=200, bytes_per_command=4 << 20)
        imap.send = original
        client.client.select_folder("Copias", readonly=True)
        found = client.client.fetch(client.client.search(), ["FLAGS", "BODY.PEEK[]"])
    appends = [line for line in sent if b" APPEND " in line[:40]]
    assert len(appends) == 3  # 200 + 200 + 50
    assert sorted(item[b"BODY[]"] for item in found.values()) == sorted(
        raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for raw in drafts)
    assert all(b"\\Draft" in item[b"FLAGS"] for item in found.values())
