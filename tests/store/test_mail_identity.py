"""How buzon knows a mail again after a move (daemon.store.mail_identity), on FETCH
answers as servers write them, and the UID sets of the grouped STOREs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from daemon.mail.imap import uid_set
from daemon.store.mail_identity import MailIdentity, identity_of

LIMA = timezone(timedelta(hours=-5))


def test_the_identity_reads_the_message_id_however_the_server_names_the_section():
    arrived = datetime(2026, 11, 24, 10, 0, tzinfo=LIMA)
    for key in (b"BODY[HEADER.FIELDS (MESSAGE-ID)]", b'BODY[HEADER.FIELDS ("Message-ID")]',
                b"BODY[HEADER.FIELDS (Message-ID)]"):
        data = {b"RFC822.SIZE": 1234, b"INTERNALDATE": arrived,
                key: b"Message-ID:\r\n <abc.1@correo.test>\r\n\r\n"}
        assert identity_of(data) == MailIdentity("<abc.1@correo.test>", 1234,
                                                 int(arrived.timestamp()))


def test_the_same_arrival_in_another_zone_is_the_same_identity():
    lima = datetime(2026, 11, 24, 10, 0, tzinfo=LIMA)
    data = {b"RFC822.SIZE": 10, b"INTERNALDATE": lima.astimezone(UTC),
            b"BODY[HEADER.FIELDS (MESSAGE-ID)]": b"\r\n"}
    assert identity_of(data) == MailIdentity("", 10, int(lima.timestamp()))


def test_an_incomplete_answer_is_no_identity():
    assert identity_of({b"RFC822.SIZE": 10}) is None


def test_uid_sets_collapse_runs():
    assert uid_set([7, 1, 2, 3, 3, 9, 10]) == "1:3,7,9:10"
    assert uid_set([5]) == "5"
