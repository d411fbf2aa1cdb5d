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
