"""IMAP access for one mailbox (imapclient): folders, batched fetch, keywords, moves, IDLE."""

from __future__ import annotations

import hashlib
import logging
import secrets
import ssl
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from daemon.config import ImapSettings
from daemon.mail.oauth2 import access_token
from daemon.mail.ports import wrong_kind_of_port

log = logging.getLogger("daemon.imap")

WHOLE_MESSAGE_LIMIT = 1024 * 1024  # text-only mail up to this size is fetched whole
TEXT_PART_LIMIT = 256 * 1024  # larger text parts are read up to this many bytes
HEADER_LIMIT = 256 * 1024  # a header (the mail's, or a part's) is read up to this many bytes
MAX_TEXT_PARTS = 5
FETCH_BYTES_PER_COMMAND = 32 * 1024 * 1024


@dataclass(frozen=True)
class FetchedMail:
    uid: int
    internaldate: datetime
    size: int
    raw: bytes  # the whole mail, or its header and text parts when it has attachments
    sha256: str
    sha256_scope: str  # raw: of the whole mail; text: of the header and text parts only
    problem: str = ""  # why it cannot be read as it is (a header cut at HEADER_LIMIT)


@dataclass(frozen=True)
class _Leaf:
    section: str
    is_text: bool
    size: int  # its octets as the server stores them (encoded), from BODYSTRUCTURE


@dataclass(frozen=True)
class PlannedFetch:
    """One mail before its body is fetched: what the structures said of it."""

    uid: int
    internaldate: datetime
    size: int  # RFC822.SIZE
    structure: object  # BODYSTRUCTURE
    sections: tuple[str, ...] | None  # None: the whole mail
    cost: int  # the bytes its fetch brings, as far as the server's sizes tell


def _decode(value) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value or "")


def _disposition(leaf) -> str:
    for item in list(leaf)[7:]:
        if isinstance(item, tuple) and item and isinstance(item[0], bytes):
            kind = item[0].upper()
            if kind in (b"ATTACHMENT", b"INLINE"):
                return kind.decode()
    return ""


def _leaves(structure, prefix: str = "") -> Iterator[_Leaf]:
    if structure.is_multipart:
        for index, part in enumerate(structure[0], start=1):
            yield from _leaves(part, f"{prefix}{index}.")
        return
    section = prefix.rstrip(".") or "1"
    main, sub = _decode(structure[0]).lower(), _decode(structure[1]).lower()
    params = structure[2] if isinstance(structure[2], tuple) else ()
    named = any(_decode(params[i]).lower() == "name" for i in range(0, len(params), 2))
    is_text = (main == "text" and sub in ("plain", "html") and not named
               and _disposition(structure) != "ATTACHMENT")
    yield _Leaf(section, is_text, _octets(structure))


def _octets(leaf) -> int:
    try:
        return max(int(leaf[6]), 0)
    except (IndexError, TypeError, ValueError):
        return 0


def plan_sections(structure, size: int) -> list[str] | None:
    """The sections to fetch for one mail; None means the whole mail (no attachments)."""
    return _plan(list(_leaves(structure)), structure, size)[0]


def _plan(leaves: list[_Leaf], structure, size: int) -> tuple[list[str] | None, int]:
    """(the sections to fetch, None for the whole mail; the bytes that brings)."""
    if all(leaf.is_text for leaf in leaves) and size <= WHOLE_MESSAGE_LIMIT:
        return None, size
    sections = [f"BODY.PEEK[HEADER]<0.{HEADER_LIMIT}>"]
    texts = [leaf for leaf in leaves if leaf.is_text][:MAX_TEXT_PARTS]
    # The headers are what the parts leave of the size (boundaries too), each read up to
    # HEADER_LIMIT: a header padded to megabytes costs twenty times its size to parse.
    headers = 1 + (len(texts) if structure.is_multipart else 0)
    cost = min(max(size - sum(leaf.size for leaf in leaves), 0), headers * HEADER_LIMIT)
    for leaf in texts:
        if structure.is_multipart:
            sections.append(f"BODY.PEEK[{leaf.section}.MIME]<0.{HEADER_LIMIT}>")
        sections.append(f"BODY.PEEK[{leaf.section}]<0.{TEXT_PART_LIMIT}>")
        cost += min(leaf.size, TEXT_PART_LIMIT)
    return sections, cost


def by_budget(items: list, cost: Callable[[object], int], budget: int) -> Iterator[list]:
    """Consecutive groups whose costs add up to at most `budget`; an item that alone costs
    more is a group of its own (it is still fetched, by itself)."""
    group: list = []
    total = 0
    for item in items:
        if group and total + cost(item) > budget:
            yield group
            group, total = [], 0
        group.append(item)
        total += cost(item)
    if group:
        yield group


def byte_batches(planned: list[PlannedFetch], budget: int) -> Iterator[list[PlannedFetch]]:
    """The mails of a count batch in batches of at most `budget` fetched bytes."""
    return by_budget(planned, lambda item: item.cost, budget)


def _boundary(structure) -> str:
    if not structure.is_multipart:
        return ""
    for item in list(structure)[2:]:
        if isinstance(item, tuple):
            for i in range(0, len(item) - 1, 2):
                if _decode(item[i]).lower() == "boundary":
                    return _decode(item[i + 1])
    return ""


def assemble_partial(structure, sections: list[str], data: dict) -> tuple[bytes, str]:
    """Rebuild a parseable mail from its header and text parts, attachments left out;
    (the mail, what is wrong with it: a header longer than HEADER_LIMIT)."""

    def got(section: str) -> bytes:
        key = section.replace("BODY.PEEK[", "BODY[").split("<")[0]
        for candidate, value in data.items():
            if _decode(candidate).startswith(key):
                return value or b""
        return b""

    header, problem = got("BODY.PEEK[HEADER]"), ""
    if len(header) >= HEADER_LIMIT and not header.endswith((b"\n\n", b"\r\n\r\n")):
        header += b"\r\n\r\n"  # ends where it was cut, so the text stays the body
        problem = f"header longer than {HEADER_LIMIT // 1024} KiB (only its start was read)"
    if not structure.is_multipart:
        return (header + got(sections[1]) if len(sections) > 1 else header), problem
    boundary = _boundary(structure) or "buzon-partial-boundary"
    chunks = [header]
    for mime, body in zip(sections[1::2], sections[2::2], strict=False):
        chunks += [f"--{boundary}\r\n".encode(), got(mime), got(body), b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), problem


PROBE_MAIL = (b"From: buzon <buzon@localhost>\r\nTo: buzon@localhost\r\n"
              b"Subject: buzon check\r\nMessage-ID: <check@buzon.localhost>\r\n\r\n"
              b"A write probe of buzon check; it deletes itself.\r\n")


def personal_namespace(client: IMAPClient) -> tuple[str, str]:
    """(prefix, separator) of the personal namespace: from NAMESPACE when the server has
    it, else the hierarchy delimiter LIST gives for INBOX."""
    if client.has_capability("NAMESPACE"):
        personal = client.namespace().personal
        if personal:
            prefix, separator = personal[0]
            return _decode(prefix or b""), _decode(separator) if separator else "/"
    folders = client.list_folders("", "INBOX") or client.list_folders()
    delimiter = folders[0][1] if folders else None
    return "", _decode(delimiter) if delimiter else "/"


def uid_set(uids: Iterable[int]) -> str:
    """A UID set with runs collapsed: 1,2,3,7 is "1:3,7" (a short command line)."""
    runs: list[list[int]] = []
    for uid in sorted(set(uids)):
        if runs and uid == runs[-1][1] + 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ",".join(f"{a}:{b}" if a != b else str(a) for a, b in runs)


class MailboxAccessError(ConnectionError):
    """A mailbox that cannot be opened, said with the setting to look at."""


def _logout_quietly(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the server may have closed the connection already
        pass


def server_folder(folder: str, prefix: str, separator: str) -> str:
    """A configured folder's name on the server (pure; see MailboxClient.server_name)."""
    if folder.upper() == "INBOX" or (prefix and folder.startswith(prefix)):
        return folder
    return prefix + (folder.replace("/", separator) if separator != "/" else folder)


class MailboxClient:
    """One authenticated IMAP connection to one mailbox."""

    def __init__(self, name: str, settings: ImapSettings, password: str):
        self.name = name
        self.settings = settings
        self._password = password
        self.client: IMAPClient | None = None
        self.separator = "/"
        self.prefix = ""  # the personal namespace's prefix ("INBOX." on Courier, Cyrus)
        self.custom_keywords = True  # the selected folder's PERMANENTFLAGS has \\*

    def connect(self) -> None:
        security = self.settings.security
        tls = ssl.create_default_context() if security != "none" else None
        client = self._open(tls)
        client.normalise_times = False
        if security == "starttls":
            client.starttls(tls)
        try:
            if self.settings.auth == "password":
                client.login(self.settings.username, self._password)
            else:
                token = access_token(self.settings.oauth2, self._password)
                login = client.oauth2_login if self.settings.auth == "xoauth2" else \
                    client.oauthbearer_login
                login(self.settings.username, token)
        except LoginError as exc:
            _logout_quietly(client)
            raise MailboxAccessError(self._refused_login(exc)) from None
        self.client = client
        self.prefix, self.separator = personal_namespace(client)
        log.info("mailbox %s: connected to %s:%s (%s, %s)", self.name, self.settings.host,
                 self.settings.port, self.settings.security, self.mechanism)

    def _open(self, tls: ssl.SSLContext | None) -> IMAPClient:
        """The connection and the server's greeting; a port of the other kind (TLS from
        the first byte, or plain) is named as such instead of a bare ssl error."""
        host, port, security = self.settings.host, self.settings.port, self.settings.security
        try:
            return IMAPClient(host, port=port, ssl=security == "ssl", ssl_context=tls,
                              timeout=self.settings.timeout_seconds)
        except ssl.SSLCertVerificationError:
            raise  # a real TLS server whose certificate is not trusted: its own message
        except (OSError, IMAPClientError, EOFError) as exc:  # ssl.SSLError, timeouts too
            said = wrong_kind_of_port(f"mailboxes.{self.name}.imap", "IMAP", host, port,
                                      security)
            if said:
                raise MailboxAccessError(f"{said} ({type(exc).__name__}: {exc})") from None
            raise

    def _refused_login(self, exc: LoginError) -> str:
        settings = self.settings
        said = str(exc).strip() or "login refused"
        what = ("the password" if settings.auth == "password"
                else "the OAuth2 settings and the client secret")
        return (f"mailboxes.{self.name}.imap: {settings.host}:{settings.port} refused the login "
                f"of {settings.username} ({said}): check {what} in the environment variable "
                f"{settings.password_env} (or the systemd credential of that name), then "
                "restart buzon")

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.logout()
            except Exception:  # noqa: BLE001 - the connection may already be gone
                pass
            self.client = None

    def __enter__(self) -> MailboxClient:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def mechanism(self) -> str:
        return {"password": "LOGIN", "xoauth2": "XOAUTH2",
                "oauthbearer": "OAUTHBEARER"}[self.settings.auth]

    @property
    def has_idle(self) -> bool:
        return self.client.has_capability("IDLE")

    def profile(self) -> dict[str, object]:
        """What the server says of itself and of the inbox, for `buzon check`."""
        features = [name for name in ("MOVE", "UIDPLUS", "IDLE", "LITERAL+", "MULTIAPPEND",
                                      "CONDSTORE", "SPECIAL-USE", "NAMESPACE")
                    if self.client.has_capability(name)]
        info = self.client.select_folder("INBOX")  # EXAMINE would report no PERMANENTFLAGS
        permanent = [_decode(flag) for flag in info.get(b"PERMANENTFLAGS", ())]
        special = {name: self.client.find_special_folder(flag) or "(none)"
                   for name, flag in (("Sent", b"\\Sent"), ("Drafts", b"\\Drafts"))}
        return {"namespace": f"prefix {self.prefix!r}, separator {self.separator!r}",
                "features": features, "custom keywords": "\\*" in permanent,
                "special folders": special}

    def write_probe(self) -> list[tuple[str, str]]:
        """Every kind of write buzon makes, on scratch folders it then deletes: create,
        append, store a keyword, move, expunge, delete. (step, error) for each refusal."""
        token = secrets.token_hex(4)
        first, second = f"buzon-prueba-{token}", f"buzon-prueba-{token}-b"
        refused: list[tuple[str, str]] = []

        def step(name: str, action) -> bool:
            try:
                action()
                return True
            except Exception as exc:  # noqa: BLE001 - each refusal is reported by name
                refused.append((name, f"{type(exc).__name__}: {exc}"))
                return False

        def keyword_and_move() -> None:
            self.select(first)
            uids = self.client.search()
            # Where no custom keyword is kept, \\Flagged is what buzon stores instead.
            step("store a keyword", lambda: self.add_keywords(
                uids, self.storable(["\\Flagged", "Buzon_prueba"])))
            step("move", lambda: self.move(uids, second))

        if step("create a folder", lambda: (self.client.create_folder(self.server_name(first)),
                                            self.client.create_folder(self.server_name(second)))):
            if step("append a mail", lambda: self.append(first, PROBE_MAIL)):
                step("select", keyword_and_move)
            self._leave_folder()  # Courier refuses to delete the selected folder
            for folder in (first, second):
                step("delete a folder", lambda f=folder: self.client.delete_folder(
                    self.server_name(f)))
        return refused

    def _leave_folder(self) -> None:
        """Deselect the selected folder: UNSELECT where the server has it (RFC 3691),
        else CLOSE (Courier has no UNSELECT). Nothing selected is no error."""
        try:
            if self.client.has_capability("UNSELECT"):
                self.client.unselect_folder()
            else:
                self.client.close_folder()
        except IMAPClientAbortError:
            raise
        except IMAPClientError:
            pass

    def server_name(self, folder: str) -> str:
        """Folder names in settings use '/' and are relative to the personal namespace
        (RFC 2342): "Derivar/DRNP" is "INBOX.Derivar.DRNP" on Courier. INBOX and names
        the server gave (a special-use folder) are left as they are."""
        return server_folder(folder, self.prefix, self.separator)

    def ensure_folders(self, folders: Iterable[str]) -> dict[str, str]:
        """Create the folders buzon files into; returns those the server refused, with
        its answer (a move into one is then refused and parked, the rest goes on)."""
        existing = {name for _flags, _delim, name in self.client.list_folders()}
        refused: dict[str, str] = {}
        for folder in folders:
            path = self.server_name(folder)
            parts = path.split(self.separator)
            for depth in range(1, len(parts) + 1):
                candidate = self.separator.join(parts[:depth])
                if candidate in existing:
                    continue
                try:
                    self.client.create_folder(candidate)
                    self.client.subscribe_folder(candidate)
                except IMAPClientAbortError:
                    raise
                except IMAPClientError as exc:
                    refused[folder] = f"{type(exc).__name__}: {exc}"
                    log.error("mailbox %s: the server refused to create %s: %s", self.name,
                              candidate, exc)
                    break
                existing.add(candidate)
        return refused

    def select(self, folder: str) -> int:
        """Select a folder; returns its UIDVALIDITY."""
        info = self.client.select_folder(self.server_name(folder))
        # No PERMANENTFLAGS: every flag may be stored (RFC 3501, 7.1).
        self.custom_keywords = b"\\*" in info.get(b"PERMANENTFLAGS", (b"\\*",))
        return int(info[b"UIDVALIDITY"])

    def forget_announcements(self) -> None:
        """Drop the EXISTS responses imaplib has kept from the commands so far."""
        self.client._imap.untagged_responses.pop("EXISTS", None)

    def has_unseen_announcement(self) -> bool:
        """An EXISTS kept since forget_announcements(): new mail was announced."""
        return bool(self.client._imap.untagged_responses.pop("EXISTS", None))

    def has_buffered_response(self) -> bool:
        """A response imaplib has already read into its buffer (it came in the same packet
        as IDLE's "+ idling"): the socket will never signal it, so IDLE must not wait."""
        sock = self.client.socket()
        timeout = sock.gettimeout()
        sock.setblocking(False)
        try:
            return bool(self.client._imap.file.peek(1))
        except OSError:
            return False
        finally:
            sock.settimeout(timeout)

    def uids_after(self, last_uid: int) -> list[int]:
        uids = self.client.search(["UID", f"{last_uid + 1}:*"])
        return sorted(uid for uid in uids if uid > last_uid)

    def fetch_mails(self, uids: list[int]) -> list[FetchedMail]:
        """Fetch a batch: one FETCH of structures, then the texts, never the attachments."""
        return self.fetch_planned(self.plan_fetch(uids))

    def plan_fetch(self, uids: list[int]) -> list[PlannedFetch]:
        """One FETCH of structures and sizes: what fetching each mail will bring."""
        if not uids:
            return []
        meta = self.client.fetch(uids, ["INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE"])
        planned = []
        for uid in uids:
            if uid not in meta:
                continue  # expunged meanwhile
            structure, size = meta[uid][b"BODYSTRUCTURE"], int(meta[uid][b"RFC822.SIZE"])
            sections, cost = _plan(list(_leaves(structure)), structure, size)
            internaldate = meta[uid][b"INTERNALDATE"]
            if internaldate.tzinfo is None:
                internaldate = internaldate.replace(tzinfo=UTC)
            planned.append(PlannedFetch(uid, internaldate, size, structure,
                                        tuple(sections) if sections is not None else None,
                                        cost))
        return planned

    def fetch_planned(self, planned: list[PlannedFetch]) -> list[FetchedMail]:
        """The mails themselves: whole when they have no attachments, else their header
        and text parts."""
        whole = [item for item in planned if item.sections is None]
        partial: dict[tuple[str, ...], list[PlannedFetch]] = defaultdict(list)
        for item in planned:
            if item.sections is not None:
                partial[item.sections].append(item)
        bodies: dict[int, tuple[bytes, str, str]] = {}
        for group in by_budget(whole, lambda item: item.size, FETCH_BYTES_PER_COMMAND):
            for uid, data in self.client.fetch([item.uid for item in group],
                                               ["BODY.PEEK[]"]).items():
                bodies[uid] = (data.get(b"BODY[]") or b"", "raw", "")
        for sections, group in partial.items():
            structures = {item.uid: item.structure for item in group}
            for uid, data in self.client.fetch(list(structures), list(sections)).items():
                if uid in structures:  # not an unsolicited FETCH of another mail
                    raw, problem = assemble_partial(structures[uid], list(sections), data)
                    bodies[uid] = (raw, "text", problem)
        mails = []
        for item in planned:
            if item.uid not in bodies:
                continue  # expunged meanwhile
            raw, scope, problem = bodies.pop(item.uid)
            mails.append(FetchedMail(item.uid, item.internaldate, item.size, raw,
                                     hashlib.sha256(raw).hexdigest(), scope, problem))
        return mails

    def add_keywords(self, uids: list[int], keywords: list[str]) -> None:
        if uids and keywords:
            self.client.add_flags(uids, keywords, silent=True)

    def storable(self, keywords: list[str]) -> list[str]:
        """The keywords the selected folder keeps: system flags only (\\Flagged ...) where
        PERMANENTFLAGS has no \\* (Exchange Online, Courier with IMAP_KEYWORDS=0); the
        folders and \\Flagged then carry what the keywords would."""
        if self.custom_keywords:
            return keywords
        return [k for k in keywords if k.startswith("\\")]

    def add_keywords_each(self, items: list[tuple[int, list[str]]], window: int = 64,
                          uids_per_command: int = 500) -> dict[int, str]:
        """One UID STORE per distinct keyword set (a few hundred UIDs each), pipelined
        (RFC 3501 section 5.5); returns the mails whose STORE the server refused, with
        its answer (every answer is read, so one refusal leaves the connection in step).

        imapclient has no pipelining, so this drives the imaplib connection under it,
        which does track several tagged commands in flight.
        """
        by_set: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for uid, keywords in items:
            kept = tuple(sorted(set(self.storable(keywords))))
            if kept:
                by_set[kept].append(uid)
        commands = [(keywords, uids[start:start + uids_per_command])
                    for keywords, uids in by_set.items()
                    for start in range(0, len(uids), uids_per_command)]
        imap = self.client._imap
        refused: dict[int, str] = {}
        for start in range(0, len(commands), window):
            window_commands = commands[start:start + window]
            if any(answer.startswith("UID STORE: BAD") for answer in refused.values()):
                # Some servers (Courier) drop a client after a few BADs in a row: what
                # is left waits for the next pass instead.
                for _keywords, uids in window_commands:
                    refused.update(dict.fromkeys(uids, "not sent after a BAD answer"))
                continue
            tags = [
                imap._command("UID", "STORE", uid_set(uids), "+FLAGS.SILENT",
                              "(" + " ".join(keywords) + ")")
                for keywords, uids in window_commands
            ]
            for (_keywords, uids), tag in zip(window_commands, tags, strict=True):
                try:
                    status, data = imap._command_complete("UID", tag)
                except imap.abort:
                    raise
                except imap.error as exc:  # BAD: read, so the stream stays in step
                    status, data = "BAD", [str(exc).encode()]
                if status != "OK":
                    answer = f"UID STORE: {status} {_decode(b' '.join(data or []))}"
                    refused.update(dict.fromkeys(uids, answer))
            # A new keyword makes the server announce the folder's whole keyword list
            # (untagged FLAGS and PERMANENTFLAGS), which imaplib keeps: drop them.
            for announcement in ("FLAGS", "PERMANENTFLAGS"):
                imap.untagged_responses.pop(announcement, None)
        return refused

    def append_each(self, folder: str, items: list[tuple[bytes, bytes]],
                    window: int = 32, per_command: int = 200,
                    bytes_per_command: int = 8 << 20) -> None:
        """APPENDs of (raw mail, flag). With MULTIAPPEND (RFC 3502) and LITERAL+
        (RFC 7888), a few hundred mails per command, all or none; with LITERAL+ alone,
        one APPEND per mail, pipelined; otherwise one by one. A backlog's drafts and
        cards would otherwise cost two round trips each."""
        if not self.client.has_capability("LITERAL+"):
            for raw, flag in items:
                self.client.append(folder, raw, (flag,))
            return
        multi = self.client.has_capability("MULTIAPPEND")
        imap = self.client._imap
        mailbox = self.client._normalise_folder(folder)
        commands: list[list[tuple[bytes, bytes]]] = []
        for raw, flag in items:
            last = commands[-1] if commands else None
            if (multi and last and len(last) < per_command
                    and sum(len(r) for r, _f in last) + len(raw) <= bytes_per_command):
                last.append((raw, flag))
            else:
                commands.append([(raw, flag)])
        for start in range(0, len(commands), window):
            tags = []
            for command in commands[start:start + window]:
                tag = imap._new_tag()
                line = tag + b" APPEND " + mailbox
                for raw, flag in command:
                    line += (b" (" + flag + b") {" + str(len(raw)).encode() + b"+}\r\n"
                             + raw)
                imap.send(line + b"\r\n")
                imap.tagged_commands[tag] = None
                tags.append(tag)
            for tag in tags:
                status, data = imap._command_complete("APPEND", tag)
                if status != "OK":
                    raise IMAPClientError(f"APPEND failed: {status} {data!r}")

    def move(self, uids: list[int], folder: str) -> None:
        if not uids:
            return
        target = self.server_name(folder)
        if self.client.has_capability("MOVE"):
            self.client.move(uids, target)
        else:
            self.client.copy(uids, target)
            self.client.delete_messages(uids)
            if self.client.has_capability("UIDPLUS"):
                self.client.uid_expunge(uids)
            else:
                self.client.expunge()

    def append(self, folder: str, raw: bytes, flags: tuple = (), when: datetime | None = None):
        return self.client.append(self.server_name(folder), raw, flags, when)
