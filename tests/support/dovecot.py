"""A real dovecot IMAP server for tests: temp dir, free ports, passwd-file users, killed after.

Recipe verified in ../shared/TESTING-NOTES.md section 1. As root, mail is stored as uid 65534
(dovecot refuses uid 0) and the temp dir is made world-readable (its auth process runs as the
``dovecot`` user); as another user, dovecot runs entirely as that user. When ``openssl`` is on
the PATH the server also speaks imaps with a throwaway self-signed certificate (``ca_file``), and
STARTTLS on the plain port.

Locally a missing dovecot skips the IMAP tests with the reason; under CI (``CI`` set) it fails
them, like ``require_postgres``, so a broken CI image can never pass silently.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"


def dovecot_unavailable() -> str | None:
    if not os.access(DOVECOT, os.X_OK):
        return f"dovecot is not installed at {DOVECOT} (apt-get install dovecot-imapd)"
    return None


def require_dovecot() -> None:
    reason = dovecot_unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the IMAP tests must run)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Dovecot:
    root: Path
    port: int
    tls_port: int | None
    ca_file: Path | None
    process: subprocess.Popen[bytes]
    users: dict[str, str] = field(default_factory=dict)
    _uid: int = 65534

    host = "127.0.0.1"

    # -- users and mail -------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Add a mailbox user (before the first login of any user; see ``running_dovecot``).

        dovecot caches the passwd-file and does not reliably notice a rewrite within the same
        second, so tests get their users from a pool created before the server starts.
        """
        self.users[name] = password
        lines = [f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()]
        tmp = self.root / "users.tmp"
        tmp.write_text("".join(lines), encoding="utf-8")
        tmp.replace(self.root / "users")

    @contextlib.contextmanager
    def client(self, user: str) -> Iterator[imaplib.IMAP4]:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            conn.login(user, self.users[user])
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    def append(
        self, user: str, folder: str, raw: bytes, when: float | None = None, flags: str = ""
    ) -> int:
        """Append one message; returns its UID (from APPENDUID)."""
        with self.client(user) as c:
            typ, data = c.append(
                f'"{folder}"',
                f"({flags})" if flags else None,
                imaplib.Time2Internaldate(when if when is not None else time.time()),
                raw,
            )
            assert typ == "OK", data
            text = data[0].decode() if isinstance(data[0], bytes) else str(data[0])
            return int(text.split("APPENDUID ", 1)[1].split()[1].rstrip("]"))

    def create_folder(self, user: str, folder: str) -> None:
        with self.client(user) as c:
            typ, data = c.create(f'"{folder}"')
            assert typ == "OK", data

    def delete_folder(self, user: str, folder: str) -> None:
        with self.client(user) as c:
            typ, data = c.delete(f'"{folder}"')
            assert typ == "OK", data

    def flags(self, user: str, folder: str) -> dict[int, str]:
        """UID -> FLAGS of every message (to check the collector set nothing)."""
        with self.client(user) as c:
            c.select(f'"{folder}"', readonly=True)
            typ, data = c.uid("FETCH", "1:*", "(UID FLAGS)")
            assert typ == "OK", data
            out = {}
            for line in data:
                if isinstance(line, bytes) and b"UID" in line:
                    text = line.decode()
                    uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
                    out[uid] = text.split("FLAGS (", 1)[1].split(")", 1)[0]
            return out

    def doveadm(self, *args: str) -> str:
        result = subprocess.run(
            [DOVEADM, "-c", str(self.root / "dovecot.conf"), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"doveadm {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def set_uidvalidity(self, user: str, folder: str, value: int) -> None:
        self.doveadm("mailbox", "update", "--uid-validity", str(value), "-u", user, folder)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- lifecycle ------------------------------------------------------------------------------

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _make_cert(root: Path) -> Path | None:
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    result = subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(root / "key.pem"),
            "-out",
            str(root / "cert.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return root / "cert.pem" if result.returncode == 0 else None


def _config(root: Path, port: int, tls_port: int | None, cert: Path | None) -> tuple[str, int]:
    is_root = os.geteuid() == 0
    uid = 65534 if is_root else os.geteuid()
    gid = 65534 if is_root else os.getegid()
    lines = [
        f"base_dir = {root}/run",
        f"state_dir = {root}/state",
        f"log_path = {root}/dovecot.log",
        "protocols = imap",
        "listen = 127.0.0.1",
        "disable_plaintext_auth = no",
        "auth_mechanisms = plain login",
        "auth_failure_delay = 0",  # a refused login answers at once (tests of bad passwords)
        f"first_valid_uid = {uid}",
        f"mail_location = maildir:{root}/mail/%u/Maildir",
    ]
    if cert is not None:
        lines += ["ssl = yes", f"ssl_cert = <{cert}", f"ssl_key = <{root}/key.pem"]
    else:
        lines += ["ssl = no"]
    if not is_root:
        user = pwd.getpwuid(uid).pw_name
        group = grp.getgrgid(gid).gr_name
        lines += [
            f"default_internal_user = {user}",
            f"default_internal_group = {group}",
            f"default_login_user = {user}",
        ]
    lines += [
        "namespace inbox {",
        "  inbox = yes",
        "  separator = /",
        "  mailbox Sent {",
        "    special_use = \\Sent",
        "    auto = subscribe",
        "  }",
        "}",
        "passdb {",
        "  driver = passwd-file",
        f"  args = scheme=PLAIN username_format=%u {root}/users",
        "}",
        "userdb {",
        "  driver = passwd-file",
        f"  args = username_format=%u {root}/users",
        f"  default_fields = uid={uid} gid={gid} home={root}/mail/%u",
        "}",
        "service imap-login {",
        "  inet_listener imap {",
        "    address = 127.0.0.1",
        f"    port = {port}",
        "  }",
        "  inet_listener imaps {",
        "    address = 127.0.0.1",
        f"    port = {tls_port or 0}",
        "  }",
    ]
    if not is_root:
        lines += ["  chroot ="]
    lines += ["}"]
    if not is_root:
        lines += ["service anvil {", "  chroot =", "}"]
    return "\n".join(lines) + "\n", uid


def _wait_ready(proc: subprocess.Popen[bytes], port: int, root: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (root / "dovecot.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"dovecot exited with {proc.returncode}: {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            if s.recv(64).startswith(b"* OK"):
                return
        time.sleep(0.05)
    raise RuntimeError("dovecot did not greet within 15 s")


@contextlib.contextmanager
def running_dovecot(users: dict[str, str] | None = None) -> Iterator[Dovecot]:
    """Start dovecot in a fresh temp dir with ``users`` (name -> password); stop and clean up."""
    require_dovecot()
    root = Path(tempfile.mkdtemp(prefix="careradar-dovecot-"))
    server: Dovecot | None = None
    try:
        root.chmod(0o755)  # dovecot's auth process (user dovecot) must read the users file
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir()
        cert = _make_cert(root)
        port = free_port()
        tls_port = free_port() if cert is not None else None
        conf, uid = _config(root, port, tls_port, cert)
        (root / "dovecot.conf").write_text(conf, encoding="utf-8")
        if os.geteuid() == 0:
            os.chown(root / "mail", uid, uid)
        lines = [f"{u}:{{PLAIN}}{p}::::::\n" for u, p in (users or {}).items()]
        (root / "users").write_text("".join(lines), encoding="utf-8")
        proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = Dovecot(root, port, tls_port, cert, proc, users=dict(users or {}), _uid=uid)
        _wait_ready(proc, port, root)
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
