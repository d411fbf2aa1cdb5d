"""A throwaway Cyrus and a throwaway Courier for the server-compatibility tests.

Debian's cyrus-imapd, courier-imap and dovecot-imapd conflict as packages, so these two
run from their unpacked packages (scripts/extract-imap-servers.sh puts them under
$BUZON_TEST_SERVERS, default /opt/buzon-test-servers), each on a free loopback port with
its own temporary directory, as the unprivileged user `mail` when started by root.
Both speak to buzon as DovecotServer does (host, imap_port, start/stop/remove), but know
only the users made with add_user(), each with its own password.

Cyrus (3.6): master, imapd and ctl_cyrusdb take their configuration files on the command
line; SASL checks passwords against a private sasldb (saslpasswd2, from sasl2-bin);
virtual domains (`virtdomains: userid`) make "consultas@osce.test" a user of the domain
osce.test; an admin creates each user's mailbox (CREATE user.NAME@DOMAIN). Debian's
default `altnamespace: no` shows the folders under "INBOX." with '.'.

Courier (courier-imap 5.0): its authentication library keeps its paths compiled in
(/etc/courier/authdaemonrc, the userdb files, /run/courier/authdaemon/socket, the
modules in /usr/lib/courier-authlib), so couriertcpd and authdaemond run in a private
mount namespace (unshare, hence root) where this server's own directories are mounted
over those paths; outside it nothing changes. Users are in a userdb (authuserdb), built
with Courier's makedatprog. `keywords=False` runs Courier with IMAP_KEYWORDS=0: no
custom keywords, as some installations have.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from imapclient import IMAPClient

from daemon.mail.sandbox import _wait_for_port, free_port

ROOT = Path(os.environ.get("BUZON_TEST_SERVERS", "/opt/buzon-test-servers"))
EXTRACT_SCRIPT = "scripts/extract-imap-servers.sh"
# The special folders a staff client (or the server's own provisioning) makes.
SPECIAL_FOLDERS = (("Sent", b"\\Sent"), ("Drafts", b"\\Drafts"), ("Trash", b"\\Trash"))


class ServerUnavailable(RuntimeError):
    """The server's unpacked binaries are missing, or it cannot run here."""


def _run_as() -> dict:
    """Popen arguments that drop root to `mail` (nothing when not root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "mail", "group": "mail", "extra_groups": []}


def _owner(path: Path) -> None:
    if os.geteuid() == 0:
        for item in [path, *path.rglob("*")]:
            shutil.chown(item, "mail", "mail")


def _stop_group(process: subprocess.Popen | None, seconds: float = 10) -> None:
    """SIGTERM the server's process groups (it was started in a session of its own, and
    couriertcpd makes a group of its own too), then SIGKILL what is left."""
    if process is None:
        return
    groups = {process.pid}  # the session's group, and the group the server may have made
    try:
        groups.add(os.getpgid(process.pid))
    except ProcessLookupError:
        pass

    def signal_all(number: int) -> None:
        for group in groups:
            try:
                os.killpg(group, number)
            except (ProcessLookupError, PermissionError):
                pass

    signal_all(signal.SIGTERM)
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        pass
    signal_all(signal.SIGKILL)  # children that outlived their parent
    process.wait(5)


def _split(address: str) -> tuple[str, str]:
    local, _, domain = address.partition("@")
    return local, domain


CYRUS_IMAPD_CONF = """\
configdirectory: {dir}/conf
defaultpartition: default
partition-default: {dir}/spool
servername: {servername}
cyrus_user: {user}
cyrus_group: {group}
admins: {admin}
altnamespace: {altnamespace}
unixhierarchysep: no
hashimapspool: true
virtdomains: userid
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {dir}/sasldb2
sasl_mech_list: PLAIN LOGIN
idlesocket: {dir}/run/idle
lmtpsocket: {dir}/run/lmtp
notifysocket: {dir}/run/notify
mboxname_lockpath: {dir}/run/lock
proc_path: {dir}/run/proc
syslog_prefix: buzon-cyrus
"""

CYRUS_CONF = """\
START {{
  recover cmd="{bin}/ctl_cyrusdb -C {conf} -r"
}}
SERVICES {{
  imap cmd="{bin}/imapd -C {conf}" listen="127.0.0.1:{port}" prefork=1 maxchild=100
}}
EVENTS {{
  checkpoint cmd="{bin}/ctl_cyrusdb -C {conf} -c" period=30
}}
"""


class _UnpackedServer:
    """What both unpacked servers share: a login as a user, stopping its process group,
    removing its directory (the dataclasses below hold host, imap_port, _process and
    directory)."""

    def _client(self, user: str, password: str) -> IMAPClient:
        client = IMAPClient(self.host, port=self.imap_port, ssl=False, timeout=30)
        client.login(user, password)
        return client

    def stop(self) -> None:
        _stop_group(self._process)
        self._process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class CyrusServer(_UnpackedServer):
    """A private Cyrus IMAP (Debian's 3.6) with the users add_user() makes."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="buzon-cyrus-")))
    # False: Debian's default, folders under "INBOX." with '.'; True: at the top, with '.'.
    altnamespace: bool = False
    imap_port: int = 0
    admin: str = "cyrus"
    admin_password: str = field(default_factory=lambda: os.urandom(9).hex())
    host: str = "127.0.0.1"
    tree: Path = ROOT / "cyrus"
    _process: subprocess.Popen | None = None

    name = "cyrus"
    servername = "buzon-cyrus"

    @property
    def namespace(self) -> tuple[str, str]:
        """The personal namespace's prefix and separator, as NAMESPACE reports them."""
        return ("", ".") if self.altnamespace else ("INBOX.", ".")

    @property
    def bin(self) -> Path:
        return self.tree / "usr/lib/cyrus/bin"

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin",
                "LD_LIBRARY_PATH": str(self.tree / "usr/lib/x86_64-linux-gnu")}

    @property
    def version(self) -> str:
        return _extracted_version("cyrus-imapd")

    def start(self) -> CyrusServer:
        if not (self.bin / "master").exists() or not (self.bin / "imapd").exists():
            raise ServerUnavailable(f"Cyrus is not unpacked in {self.tree} (run {EXTRACT_SCRIPT})")
        if not shutil.which("saslpasswd2"):
            raise ServerUnavailable("saslpasswd2 is missing (apt-get install sasl2-bin, "
                                    f"or run {EXTRACT_SCRIPT})")
        self.imap_port = self.imap_port or free_port()
        os.chmod(self.directory, 0o755)
        for sub in ("conf", "spool", "run"):
            (self.directory / sub).mkdir(exist_ok=True)
        conf = self.directory / "imapd.conf"
        user = "mail" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        conf.write_text(CYRUS_IMAPD_CONF.format(
            dir=self.directory, servername=self.servername, user=user, group=user,
            admin=self.admin, altnamespace="yes" if self.altnamespace else "no"))
        (self.directory / "cyrus.conf").write_text(CYRUS_CONF.format(
            bin=self.bin, conf=conf, port=self.imap_port))
        self._sasl_user(self.admin, self.servername, self.admin_password)
        _owner(self.directory)
        log = open(self.directory / "master.log", "ab")  # noqa: SIM115 - the server keeps it
        self._process = subprocess.Popen(
            [str(self.bin / "master"), "-C", str(conf), "-M", str(self.directory / "cyrus.conf"),
             "-p", str(self.directory / "run/master.pid"), "-D"],
            cwd=self.directory, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=log, start_new_session=True, **_run_as())
        log.close()
        try:
            _wait_for_port(self.imap_port, 20)
        except RuntimeError as exc:
            self.stop()
            raise ServerUnavailable(f"Cyrus did not start: {exc} (it logs to syslog only)") \
                from exc
        return self

    def _sasl_user(self, user: str, realm: str, password: str) -> None:
        subprocess.run(["saslpasswd2", "-p", "-c", "-f", str(self.directory / "sasldb2"),
                        "-u", realm, user], input=password.encode(), check=True,
                       capture_output=True)
        _owner(self.directory / "sasldb2")

    def add_user(self, address: str, password: str) -> None:
        """A user who logs in as `address` with `password`, with INBOX and the special
        folders Sent, Drafts and Trash (special-use, as Cyrus's own provisioning makes)."""
        local, domain = _split(address)
        self._sasl_user(local, domain or self.servername, password)
        with self._client(self.admin, self.admin_password) as admin:
            admin._imap._simple_command("CREATE", f"user.{address}")
        with self._client(address, password) as client:
            prefix = "" if self.altnamespace else "INBOX."
            for folder, use in SPECIAL_FOLDERS:
                client._imap._simple_command(
                    "CREATE", f"{prefix}{folder}", "(USE (" + use.decode() + "))")
                client.subscribe_folder(f"{prefix}{folder}")


COURIER_AUTHDAEMONRC = """\
authmodulelist="authuserdb"
daemons=3
authdaemonvar=/run/courier/authdaemon
DEBUG_LOGIN=0
DEFAULTOPTIONS=""
LOGGEROPTS=""
"""

# Debian's /etc/courier/imapd, less TLS, with the capabilities it ships.
COURIER_IMAPD_ENV = {
    "IMAP_CAPABILITY": "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT "
                       "THREAD=REFERENCES SORT QUOTA IDLE",
    "IMAP_ACL": "1",
    "IMAP_PROXY": "0",
    "IMAP_IDLE_TIMEOUT": "60",
    "IMAP_MAILBOX_SANITY_CHECK": "1",
    "IMAP_DISABLETHREADSORT": "0",
    "IMAP_CHECK_ALL_FOLDERS": "0",
    "IMAP_OBSOLETE_CLIENT": "0",
    "IMAP_UMASK": "022",
    "IMAP_USELOCKS": "1",
    "IMAP_ENHANCEDIDLE": "0",
    "IMAP_TRASHFOLDERNAME": "Trash",
    "IMAP_EMPTYTRASH": "Trash:7",
    "IMAP_MOVE_EXPUNGE_TO_TRASH": "0",
    "SENDMAIL": "/bin/false",
    "HEADERFROM": "X-IMAP-Sender",
}

# The compiled-in paths Courier's programs use, and what is mounted over each one.
COURIER_MOUNTS = (("etc", "/etc/courier"), ("run", "/run/courier"),
                  ("authlib", "/usr/lib/courier-authlib"))

COURIER_START = """\
set -e
mount --bind {dir}/etc /etc/courier
mount --bind {dir}/run /run/courier
mount --bind {tree}/usr/lib/courier-authlib /usr/lib/courier-authlib
set -a
. /etc/courier/authdaemonrc
set +a
{drop}{tree}/usr/lib/courier/courier-authlib/authdaemond &
for _ in $(seq 100); do [ -S /run/courier/authdaemon/socket ] && break; sleep 0.05; done
exec {drop}{tree}/usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=100 -maxperip=100 \
  -nodnslookup -noidentlookup {port} \
  {tree}/usr/lib/courier/courier/imaplogin {tree}/usr/bin/imapd Maildir
"""


@dataclass
class CourierServer(_UnpackedServer):
    """A private Courier IMAP (Debian's courier-imap 5.0) with the users add_user() makes."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="buzon-courier-")))
    keywords: bool = True  # False: IMAP_KEYWORDS=0, no custom keywords
    imap_port: int = 0
    host: str = "127.0.0.1"
    tree: Path = ROOT / "courier"
    _process: subprocess.Popen | None = None
    _users: dict[str, str] = field(default_factory=dict)

    name = "courier"
    namespace = ("INBOX.", ".")  # the personal namespace's prefix and separator

    @property
    def version(self) -> str:
        return _extracted_version("courier-imap")

    def start(self) -> CourierServer:
        if not (self.tree / "usr/bin/imapd").exists():
            raise ServerUnavailable(f"Courier is not unpacked in {self.tree} "
                                    f"(run {EXTRACT_SCRIPT})")
        if os.geteuid() != 0 or not shutil.which("unshare"):
            raise ServerUnavailable("Courier's compiled-in paths are mounted over in a "
                                    "private mount namespace, which needs root and unshare")
        self.imap_port = self.imap_port or free_port()
        os.chmod(self.directory, 0o755)
        for sub in ("etc", "run/authdaemon", "home"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        for _sub, mountpoint in COURIER_MOUNTS:
            os.makedirs(mountpoint, exist_ok=True)  # empty: only mounted over, privately
        (self.directory / "etc/authdaemonrc").write_text(COURIER_AUTHDAEMONRC)
        self._write_userdb()
        drop = "setpriv --reuid=mail --regid=mail --clear-groups "
        script = self.directory / "start.sh"
        script.write_text(COURIER_START.format(dir=self.directory, tree=self.tree,
                                               port=self.imap_port, drop=drop))
        _owner(self.directory)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
               "LD_LIBRARY_PATH": str(self.tree / "usr/lib"),
               "IMAP_KEYWORDS": "1" if self.keywords else "0", **COURIER_IMAPD_ENV}
        log = open(self.directory / "courier.log", "ab")  # noqa: SIM115 - the server keeps it
        self._process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", str(script)],
            cwd=self.directory, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True)
        log.close()
        try:
            _wait_for_port(self.imap_port, 20)
        except RuntimeError as exc:
            self.stop()
            log_text = (self.directory / "courier.log").read_text(errors="replace")[-2000:]
            raise ServerUnavailable(f"Courier did not start: {exc}\n{log_text}") from exc
        return self

    def _write_userdb(self) -> None:
        """userdb.dat and userdbshadow.dat, as makeuserdb builds them from the userdb
        file (its Perl script has the compiled-in paths, so makedatprog is run here)."""
        etc = self.directory / "etc"
        public, shadow = [], []
        for address, password in self._users.items():
            home = self.directory / "home" / address
            public.append(f"{address}\tuid={_mail_id('pw_uid')}|gid={_mail_id('pw_gid')}"
                          f"|home={home}|mail={home}/Maildir")
            digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
            shadow.append(f"{address}\tsystempw={{SHA}}{digest}")
        makedat = self.tree / "usr/lib/courier/courier-authlib/makedatprog"
        env = {"LD_LIBRARY_PATH": str(self.tree / "usr/lib")}
        for name, lines in (("userdb", public), ("userdbshadow", shadow)):
            subprocess.run([str(makedat), "-", str(etc / f"{name}.tmp"), str(etc / f"{name}.dat")],
                           input="".join(line + "\n" for line in lines + ["."]).encode(),
                           env=env, check=True, capture_output=True)
            os.chmod(etc / f"{name}.dat", 0o600)
        _owner(etc)

    def add_user(self, address: str, password: str) -> None:
        """A user who logs in as `address` with `password`: a maildir, and the folders
        Sent, Drafts and Trash (Courier has no special-use attributes)."""
        home = self.directory / "home" / address
        maildir = home / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        for folder, _use in SPECIAL_FOLDERS:
            for sub in ("cur", "new", "tmp"):
                (maildir / f".{folder}" / sub).mkdir(parents=True, exist_ok=True)
            (maildir / f".{folder}" / "maildirfolder").touch()
        (maildir / "courierimapsubscribed").write_text(
            "".join(f"INBOX.{folder}\n" for folder, _use in SPECIAL_FOLDERS))
        _owner(home)
        self._users[address] = password
        self._write_userdb()  # authuserdb reopens userdb.dat when it changes
        deadline = time.monotonic() + 10
        while True:
            try:
                with self._client(address, password):
                    return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def _mail_id(attribute: str) -> int:
    if os.geteuid() != 0:
        return getattr(os, "getuid" if attribute == "pw_uid" else "getgid")()
    import pwd

    return getattr(pwd.getpwnam("mail"), attribute)


def _extracted_version(package: str) -> str:
    """The version of an unpacked package, from the extract script's record."""
    try:
        for line in (ROOT / ".extracted").read_text().splitlines()[1:]:
            name, _, version = line.partition(" ")
            if name == package:
                return version
    except OSError:
        pass
    return "?"
