"""``kind: email``: customer mail from IMAP, or imported from a Maildir, an mbox or .eml files.

(The module is ``mail``, not ``email``, so it does not shadow the standard library package.)

**IMAP.** The inbox holds customer mail; the sent folder holds the brand's replies. Both are
read, and a reply is threaded to the customer's message by ``References`` / ``In-Reply-To``, so
the store's response detection (same ``thread_id``, created later, by the brand) sets
``first_response_at`` on the customer's item. The cursor keeps, per folder, the UIDVALIDITY and
the last UID read; a changed UIDVALIDITY means the server renumbered the folder, so it is read
again from ``since`` (idempotent upserts make that safe) and the log says so. Mail is fetched
with ``BODY.PEEK[]`` on a read-only ``EXAMINE``, so collecting never marks anything as read.

**Import.** ``path`` names a Maildir, an mbox file or a folder of ``.eml`` files. The cursor
remembers what was read (a byte offset per mbox; a bounded set of message keys for Maildir and
.eml folders), so a re-run reads only what is new.

**Machine-written mail** (auto-replies, out-of-office notices, bounces, recognised by their
headers, never by a subject alone) is not stored as an item: nobody is waiting for an answer to
it, and a brand's auto-acknowledgement is not an answer, so it must not start or stop an SLA
clock. It is recorded in ``bad_inputs`` with the evidence ("auto-reply not stored
(Auto-Submitted: auto-replied)") and its folder/UID or file, so a wrongly filtered customer mail
can be found; the run log counts it too.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import imaplib
import ipaddress
import logging
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, model_validator

from pipeline.collectors import mailparse
from pipeline.collectors.base import CollectContext
from pipeline.config import Duration, SourceConfig, TimeZoneName
from pipeline.errors import BadInput, NotConfigured, TerminalError, TransientError
from pipeline.items import BadInputRecord, Batch, Channel, Cursor, Item
from pipeline.registry import register_collector

log = logging.getLogger(__name__)

DEFAULT_SINCE = 14 * 86_400
"""First IMAP run (or after a UIDVALIDITY change): only mail from the last 14 days."""

FETCH_GROUP_BYTES = 16 * 1024 * 1024
"""Most message bytes requested in one FETCH, so a batch of huge mails cannot exhaust memory."""

MAX_SEEN_KEYS = 20_000
"""Message keys a Maildir/.eml cursor remembers; older ones fall under its time watermark."""

_SENT_NAMES = (
    "Sent",
    "Sent Items",
    "Sent Messages",
    "Sent Mail",
    "[Gmail]/Sent Mail",
    "INBOX.Sent",
    "INBOX/Sent",
    "Gesendet",
    "Gesendete Elemente",
    "Envoyés",
    "Éléments envoyés",
    "Enviados",
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FUTURE_SLACK = timedelta(hours=1)
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class EmailSource(SourceConfig):
    kind: Literal["email"] = "email"
    channel: Literal["chat", "social", "email", "review", "forum"] | None = "email"
    # IMAP
    host: str | None = Field(default=None, description="IMAP server (or give 'path' instead)")
    port: int | None = Field(default=None, ge=1, le=65_535, description="993 for tls, else 143")
    security: Literal["tls", "starttls", "plain"] = Field(
        default="tls", description="tls (imaps), starttls, or plain (loopback/tests only)"
    )
    allow_insecure: bool = Field(
        default=False, description="allow security: plain to a host that is not loopback"
    )
    ca_file: str | None = Field(default=None, description="CA bundle for a private/self-signed CA")
    username: str | None = None
    password: SecretStr | None = Field(default=None, description="use ${ENV_VAR}, never a literal")
    inbox: str = Field(default="INBOX", description="folder with customer mail")
    sent: str | None = Field(
        default=None, description="folder with the brand's replies; 'auto' finds the \\Sent one"
    )
    since: Duration | None = Field(
        default=None,
        description="only mail from the last N (IMAP default 14d on the first run; "
        "import default: everything)",
    )
    timeout: Duration = Field(default=30, description="network timeout per IMAP operation")
    max_message_bytes: int = Field(
        default=10 * 1024 * 1024, ge=65_536, description="larger messages are read up to this"
    )
    brand_addresses: list[str] = Field(
        default_factory=list,
        description="addresses (or @domain) the brand writes from; their mail counts as replies",
    )
    timezone: TimeZoneName = Field(
        default="UTC", description="zone for Date headers and mbox From_ lines without one"
    )
    # Local import
    path: str | None = Field(default=None, description="Maildir, mbox file or folder of .eml")
    format: Literal["auto", "maildir", "mbox", "eml"] = "auto"

    @model_validator(mode="after")
    def _one_origin(self) -> EmailSource:
        if (self.host is None) == (self.path is None):
            raise ValueError("give either 'host' (IMAP) or 'path' (Maildir, mbox or .eml folder)")
        if self.host is not None:
            if not self.username or self.password is None:
                raise ValueError("an IMAP source needs 'username' and 'password' (${ENV_VAR})")
            if self.security == "plain" and not self.allow_insecure and not _is_loopback(self.host):
                raise ValueError(
                    f"security: plain would send the password to {self.host} unencrypted; "
                    "use tls or starttls, or set allow_insecure: true if you really mean it"
                )
        return self

    def imap_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)


@dataclass(frozen=True)
class _Fetched:
    uid: int
    internaldate: datetime | None
    size: int
    data: bytes


@dataclass(frozen=True)
class _Unparsed:
    """Message bytes (or a UID) the server answered with that could not be tied to a message."""

    uid: int | None
    reason: str
    data: bytes


@dataclass(frozen=True)
class FetchResponse:
    """One untagged FETCH response, read whatever order the server put its items in."""

    seq: int | None
    uid: int | None
    internaldate: datetime | None
    flags: tuple[str, ...] | None
    size: int | None
    body: bytes | None


class _MachineWritten(BadInput):
    """An auto-reply or bounce: not an item, but kept in bad_inputs so it can be audited."""

    def __init__(self, kind: str, reason: str, *, location: str, created_at: datetime) -> None:
        super().__init__(reason, location=location)
        self.kind = kind
        self.created_at = created_at


# -- modified UTF-7 folder names (RFC 3501 5.1.3) ----------------------------------------------


def encode_folder(name: str) -> str:
    """A folder name as IMAP wants it on the wire: modified UTF-7, quoted."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append(
                "&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-"
            )
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    encoded = "".join(out)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def decode_folder(name: str) -> str:
    def repl(m: re.Match[str]) -> str:
        chunk = m.group(1)
        if not chunk:
            return "&"
        data = chunk.replace(",", "/")
        data += "=" * (-len(data) % 4)
        try:
            return base64.b64decode(data).decode("utf-16-be")
        except (ValueError, UnicodeDecodeError):
            return m.group(0)

    return re.sub(r"&([A-Za-z0-9+,]*)-", repl, name)


_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\)\s+(?:"(?:[^"\\]|\\.)*"|NIL)\s+(?P<name>.+)$')


def _parse_list(lines: list[Any]) -> list[tuple[set[str], str]]:
    """LIST response -> [(flags, decoded folder name)]; literals arrive as tuples."""
    out = []
    for entry in lines:
        if isinstance(entry, tuple):
            head, literal = entry[0], entry[1]
            m = _LIST_LINE.match(head.rstrip() + b" x")
            name = literal
        elif isinstance(entry, bytes):
            m = _LIST_LINE.match(entry)
            name = m.group("name") if m else b""
        else:
            continue
        if m is None:
            continue
        flags = {f.lower() for f in m.group("flags").decode("ascii", "replace").split()}
        text = name.decode("utf-8", "replace").strip()
        if text.startswith('"') and text.endswith('"'):
            text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out.append((flags, decode_folder(text)))
    return out


def _imap_date(dt: datetime) -> str:
    return f"{dt.day:02d}-{_MONTHS[dt.month - 1]}-{dt.year}"


_DAY_UNPADDED = re.compile(rb'INTERNALDATE "(\d)-')


def _internaldate(text: bytes) -> datetime | None:
    """INTERNALDATE from a FETCH response as UTC, via :func:`imaplib.Internaldate2tuple`.

    Some servers write the day without RFC 3501's space padding ("7-May-2024"), which the
    stdlib pattern refuses; that is padded first. A garbled date is None, not an error.
    """
    try:
        parts = imaplib.Internaldate2tuple(_DAY_UNPADDED.sub(rb'INTERNALDATE " \1-', text))
    except (KeyError, ValueError, OverflowError):  # KeyError: an unknown month name
        return None
    if parts is None:
        return None
    try:  # Internaldate2tuple answers in local time; mktime takes it back to epoch seconds
        return datetime.fromtimestamp(time.mktime(parts), UTC)
    except (OverflowError, ValueError, OSError):
        return None


_FETCH_START = re.compile(rb"^\s*(\d+) \(")
_UID_ITEM = re.compile(rb"[( ]UID (\d+)")
_SIZE_ITEM = re.compile(rb"[( ]RFC822\.SIZE (\d+)")
_FLAGS_ITEM = re.compile(rb"[( ]FLAGS \(([^)]*)\)")
_BODY_LITERAL = re.compile(rb"BODY\[\](?:<\d+>)? \{\d+\}$")
_BODY_INLINE = re.compile(rb'BODY\[\](?:<\d+>)? (?:NIL|"((?:[^"\\]|\\.)*)")')


def parse_fetch(data: list[Any]) -> list[FetchResponse]:
    """imaplib's FETCH data -> one :class:`FetchResponse` per untagged response.

    imaplib splits a response at each literal: ``(text before the literal, literal)`` tuples,
    then the text after the last literal as a separate ``bytes`` element (``b")"`` or
    ``b" UID 5 FLAGS (\\Seen))"``). RFC 3501 does not fix the order of FETCH items, so UID,
    INTERNALDATE, RFC822.SIZE and FLAGS are looked for in every text part of the response,
    before and after the body. A new response starts with ``<sequence number> (``; anything
    else continues the current one. Unsolicited FETCH responses (flag changes) come out with
    no body and are the caller's to ignore.
    """
    groups: list[tuple[list[bytes], list[tuple[bytes, bytes]]]] = []
    for entry in data:
        if isinstance(entry, tuple) and len(entry) >= 2 and isinstance(entry[0], bytes):
            head, literal = entry[0], entry[1] if isinstance(entry[1], bytes) else b""
            if _FETCH_START.match(head) or not groups:
                groups.append(([], []))
            groups[-1][0].append(head)
            groups[-1][1].append((head, literal))
        elif isinstance(entry, bytes):
            if _FETCH_START.match(entry) or not groups:
                groups.append(([], []))
            groups[-1][0].append(entry)
    out = []
    for texts, literals in groups:
        joined = b" ".join(t.strip(b"\r\n") for t in texts)
        start = _FETCH_START.match(joined)
        uid = _UID_ITEM.search(joined)
        size = _SIZE_ITEM.search(joined)
        flags = _FLAGS_ITEM.search(joined)
        body: bytes | None = None
        for head, literal in literals:
            if _BODY_LITERAL.search(head.rstrip()):
                body = literal
                break
        if body is None and len(literals) == 1:
            body = literals[0][1]
        if body is None:
            inline = _BODY_INLINE.search(joined)
            if inline is not None:
                body = re.sub(rb"\\(.)", rb"\1", inline.group(1) or b"")
        out.append(
            FetchResponse(
                seq=int(start.group(1)) if start else None,
                uid=int(uid.group(1)) if uid else None,
                internaldate=_internaldate(joined),
                flags=(tuple(flags.group(1).decode("ascii", "replace").split()) if flags else None),
                size=int(size.group(1)) if size else None,
                body=body,
            )
        )
    return out


def _uid_set(uids: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1:3,7"``."""
    parts = []
    start = prev = uids[0]
    for uid in uids[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if start != prev else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(parts)


class _ImapSession:
    """One logged-in IMAP connection; every failure leaves as TransientError or TerminalError."""

    def __init__(self, cfg: EmailSource) -> None:
        self.cfg = cfg
        assert cfg.host is not None and cfg.username is not None and cfg.password is not None
        self.host = cfg.host
        self.port = cfg.imap_port()
        self.where = f"{self.host}:{self.port}"
        self._secret = cfg.password.get_secret_value()
        self.conn: imaplib.IMAP4 | None = None

    # -- errors ---------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _transient(self, what: str, e: BaseException) -> TransientError:
        detail = self._scrub(f"{type(e).__name__}: {e}".strip())
        return TransientError(
            f"source '{self.cfg.name}': IMAP {what} at {self.where} failed ({detail})",
            hint="the server is unreachable or dropped the connection; the next run retries",
        )

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cfg.ca_file) if self.cfg.ca_file else None
        return ctx or ssl.create_default_context()

    # -- connection ------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect and log in; on any failure the socket is closed before the error leaves."""
        try:
            self._connect()
            self._login()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> None:
        timeout = self.cfg.timeout
        try:
            if self.cfg.security == "tls":
                self.conn = imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=self._ssl_context(), timeout=timeout
                )
            else:
                self.conn = imaplib.IMAP4(self.host, self.port, timeout=timeout)
                if self.cfg.security == "starttls":
                    self.conn.starttls(ssl_context=self._ssl_context())
        except ssl.SSLCertVerificationError as e:
            raise TerminalError(
                f"source '{self.cfg.name}': the TLS certificate of {self.where} is not trusted "
                f"({e.verify_message})",
                hint="fix the server certificate, or point 'ca_file' at the CA that signed it",
            ) from None
        except imaplib.IMAP4.abort as e:
            raise self._transient("connect", e) from None
        except imaplib.IMAP4.error as e:  # e.g. STARTTLS not offered
            raise TerminalError(
                f"source '{self.cfg.name}': {self.where} refused {self.cfg.security}: {e}",
                hint="check 'security' and 'port' (tls is usually 993, starttls 143)",
            ) from None
        except (OSError, EOFError) as e:
            raise self._transient("connect", e) from None

    def _login(self) -> None:
        conn = self.conn
        assert conn is not None
        user = self.cfg.username or ""
        try:
            if "AUTH=PLAIN" in conn.capabilities:
                # AUTHENTICATE PLAIN carries UTF-8 credentials; LOGIN only ASCII ones.
                token = f"\0{user}\0{self._secret}".encode()
                conn.authenticate("PLAIN", lambda _challenge: token)
            else:
                conn.login(user, self._secret)
        except imaplib.IMAP4.abort as e:
            raise self._transient("login", e) from None
        except imaplib.IMAP4.error as e:
            reason = self._scrub(str(e)) or "no reason given"
            raise TerminalError(
                f"source '{self.cfg.name}': IMAP login as '{user}' at {self.where} was refused "
                f"({reason})",
                hint="check 'username' and the password's environment variable; some providers "
                "need an app password",
            ) from None
        except (OSError, EOFError) as e:
            raise self._transient("login", e) from None
        except UnicodeEncodeError:
            raise TerminalError(
                f"source '{self.cfg.name}': {self.where} offers no AUTH=PLAIN and the "
                "credentials are not ASCII, so IMAP LOGIN cannot send them",
                hint="use an ASCII password or a server that supports AUTHENTICATE PLAIN",
            ) from None

    def close(self) -> None:
        if self.conn is None:
            return
        with contextlib.suppress(imaplib.IMAP4.error, OSError, EOFError):
            self.conn.logout()
        with contextlib.suppress(OSError, AttributeError):
            self.conn.shutdown()  # logout() skips this when the LOGOUT command itself fails
        self.conn = None

    def _call(self, what: str, fn: Any, *args: Any) -> list[Any]:
        """Run one command; NO/BAD answers raise TerminalError, a lost link TransientError."""
        try:
            typ, data = fn(*args)
        except imaplib.IMAP4.abort as e:
            raise self._transient(what, e) from None
        except imaplib.IMAP4.error as e:
            reason = self._scrub(str(e))
            raise TerminalError(
                f"source '{self.cfg.name}': IMAP {what} at {self.where} failed: {reason}"
            ) from None
        except (OSError, EOFError) as e:
            raise self._transient(what, e) from None
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise TerminalError(
                f"source '{self.cfg.name}': IMAP {what} at {self.where} answered {typ}: {text}"
            )
        return list(data)

    # -- commands --------------------------------------------------------------------------------

    def folders(self) -> list[tuple[set[str], str]]:
        assert self.conn is not None
        return _parse_list(self._call("LIST", self.conn.list))

    def examine(self, folder: str) -> int:
        """Open ``folder`` read-only; returns its UIDVALIDITY."""
        conn = self.conn
        assert conn is not None
        try:
            self._call(f"EXAMINE {folder}", conn.select, encode_folder(folder), True)
        except TerminalError as e:
            names = ", ".join(sorted(name for _, name in self.folders()))
            raise TerminalError(
                f"{e.message}; folders on the server: {names}",
                hint="set 'inbox' / 'sent' to one of these folders",
            ) from None
        _, values = conn.response("UIDVALIDITY")
        try:
            return int(values[0])
        except (TypeError, ValueError, IndexError):
            raise TerminalError(
                f"source '{self.cfg.name}': {self.where} gave no UIDVALIDITY for {folder}"
            ) from None

    def search(self, *criteria: str) -> list[int]:
        assert self.conn is not None
        data = self._call("UID SEARCH", self.conn.uid, "SEARCH", None, *criteria)
        found: set[int] = set()
        for line in data:
            if isinstance(line, bytes):
                found.update(int(x) for x in line.split() if x.isdigit())
        return sorted(found)

    def fetch(self, uids: list[int]) -> tuple[list[_Fetched], list[_Unparsed]]:
        """Fetch messages (at most ``max_message_bytes`` each) without setting \\Seen.

        Returns the messages, and what came back but could not be tied to a message (a body
        without a UID) or a UID the server listed but sent no body for: the caller records
        those as bad inputs rather than moving the cursor past them in silence. A UID missing
        from both FETCHes was expunged meanwhile and is only logged.
        """
        assert self.conn is not None
        cap = self.cfg.max_message_bytes
        sizes: dict[int, int] = {}
        size_data = self._call("FETCH", self.conn.uid, "FETCH", _uid_set(uids), "(RFC822.SIZE)")
        for resp in parse_fetch(size_data):
            if resp.uid is not None and resp.size is not None:
                sizes[resp.uid] = resp.size
        groups: list[list[int]] = [[]]
        total = 0
        for uid in uids:
            size = min(sizes.get(uid, cap), cap)
            if groups[-1] and total + size > FETCH_GROUP_BYTES:
                groups.append([])
                total = 0
            groups[-1].append(uid)
            total += size
        out: dict[int, _Fetched] = {}
        problems: list[_Unparsed] = []
        for group in groups:
            if not group:
                continue
            item = f"(UID INTERNALDATE RFC822.SIZE BODY.PEEK[]<0.{cap}>)"
            orphans: list[FetchResponse] = []
            for resp in parse_fetch(
                self._call("FETCH", self.conn.uid, "FETCH", _uid_set(group), item)
            ):
                if resp.body is None:
                    continue  # an unsolicited flag update, or a UID without a body (below)
                if resp.uid is None or resp.uid not in group:
                    orphans.append(resp)
                    continue
                size = sizes.get(resp.uid, resp.size if resp.size is not None else len(resp.body))
                out[resp.uid] = _Fetched(resp.uid, resp.internaldate, size, resp.body)
            missing = [u for u in group if u not in out]
            listed = [u for u in missing if u in sizes]
            for resp in orphans:
                which = f"UID {resp.uid} was not asked for" if resp.uid is not None else "no UID"
                candidates = ", ".join(str(u) for u in missing) or "none"
                problems.append(
                    _Unparsed(
                        None,
                        f"fetched but not parsed: FETCH response for message number "
                        f"{resp.seq if resp.seq is not None else '?'} carried {which}; "
                        f"UIDs without a body: {candidates}",
                        resp.body or b"",
                    )
                )
            if not orphans:
                for uid in listed:
                    problems.append(
                        _Unparsed(
                            uid,
                            f"fetched but not parsed: the server listed UID {uid} "
                            f"({sizes[uid]} bytes) but returned no body for it",
                            b"",
                        )
                    )
            gone = [u for u in missing if u not in sizes]
            if gone:
                log.debug("%s: UIDs %s expunged before FETCH", self.cfg.name, _uid_set(gone))
        return [out[uid] for uid in uids if uid in out], problems


@register_collector("email", config=EmailSource, channel="email")
class EmailCollector:
    def __init__(self, cfg: EmailSource, ctx: CollectContext) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.name = cfg.name
        self.channel = Channel.EMAIL
        addresses = {a.strip().lower() for a in cfg.brand_addresses if a.strip()}
        addresses |= {a.strip().lower() for b in ctx.app.brands for a in b.accounts if "@" in a}
        self._brand_domains = {a[1:] for a in addresses if a.startswith("@") and "." in a}
        self._brand_addresses = {a for a in addresses if not a.startswith("@")}
        self._skipped: dict[str, int] = {}

    # -- shared: one parsed message -> one item ---------------------------------------------------

    def is_brand_address(self, address: str) -> bool:
        address = address.lower()
        return address in self._brand_addresses or address.rpartition("@")[2] in self._brand_domains

    def _created_at(self, parsed: mailparse.ParsedMail, fallback: datetime | None) -> datetime:
        """Date header, unless missing, absurd or in the future; then the fallback, then now."""
        now = self.ctx.clock()
        date = parsed.date
        for candidate in (date, fallback):
            if candidate is not None and _EARLIEST <= candidate <= now + _FUTURE_SLACK:
                return candidate
        return now

    def to_item(
        self,
        data: bytes,
        *,
        location: str,
        from_sent: bool = False,
        fallback_date: datetime | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Item:
        """The item for one message; BadInput if unusable or machine-written (auto-reply, bounce).

        Machine-written mail raises too, so it lands in bad_inputs with its evidence and
        location: filtering must be visible, or a customer mail taken for an auto-reply would
        vanish without trace.
        """
        parsed = mailparse.parse(data, default_tz=self.cfg.timezone)
        if parsed.problem:
            raise BadInput(parsed.problem, location=location)
        if parsed.machine:
            kind, _, evidence = parsed.machine.partition(" ")
            raise _MachineWritten(
                kind,
                f"{kind} not stored {evidence}".strip(),
                location=location,
                created_at=self._created_at(parsed, fallback_date),
            )
        raw = parsed.raw(**(extra or {}))
        if parsed.date is None:
            raw["date_fallback"] = True
        if len(data) >= self.cfg.max_message_bytes:
            raw["read_first_bytes"] = len(data)
        text = parsed.text
        if not text.strip() and parsed.attachments:
            names = ", ".join(a.get("filename") or a["content_type"] for a in parsed.attachments)
            text = f"(attachments only: {names})"
        return Item(
            source=self.name,
            channel=Channel.EMAIL,
            external_id=parsed.id,
            text=text,
            title=parsed.subject or None,
            created_at=self._created_at(parsed, fallback_date),
            platform=self.cfg.platform or "email",
            brand=self.cfg.brand,
            thread_id=parsed.thread_root,
            parent_id=parsed.in_reply_to,
            author=parsed.from_addr or None,
            author_is_brand=from_sent or self.is_brand_address(parsed.from_addr),
            collected_at=self.ctx.clock(),
            raw=raw,
        )

    def _add(
        self,
        data: bytes,
        location: str,
        items: list[Item],
        bad: list[BadInputRecord],
        **kwargs: Any,
    ) -> None:
        try:
            item = self.to_item(data, location=location, **kwargs)
        except _MachineWritten as e:
            if not self._within_since(e.created_at):
                return  # an import's old auto-reply: outside 'since' like any old mail
            self._skipped[e.kind] = self._skipped.get(e.kind, 0) + 1
            log.debug("%s: %s: %s", self.name, location, e.reason)
            bad.append(BadInputRecord.from_raw(self.name, e.reason, location, data))
            return
        except BadInput as e:
            bad.append(BadInputRecord.from_raw(self.name, e.reason, location, data))
            return
        except (TypeError, ValueError) as e:  # Item's own checks; should not happen
            bad.append(BadInputRecord.from_raw(self.name, str(e), location, data))
            return
        if self._within_since(item.created_at):
            items.append(item)

    def _within_since(self, created_at: datetime) -> bool:
        if self.cfg.since is None or self.cfg.host is not None:
            return True  # IMAP applies 'since' in its SEARCH
        return created_at >= self.ctx.clock() - timedelta(seconds=self.cfg.since)

    def collect(self, cursor: Cursor | None) -> Iterator[Batch]:
        self._skipped = {}
        if self.cfg.host is not None:
            yield from self._collect_imap(cursor)
        else:
            yield from self._collect_local(cursor)
        if self._skipped:
            counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self._skipped.items()))
            log.info(
                "%s: not stored (machine-written mail, listed in bad-inputs): %s", self.name, counts
            )

    # -- IMAP ------------------------------------------------------------------------------------

    def _collect_imap(self, cursor: Cursor | None) -> Iterator[Batch]:
        state: dict[str, dict[str, int]] = {
            str(k): {"uidvalidity": int(v["uidvalidity"]), "last_uid": int(v["last_uid"])}
            for k, v in dict((cursor or {}).get("folders", {})).items()
            if isinstance(v, dict) and "uidvalidity" in v and "last_uid" in v
        }
        session = _ImapSession(self.cfg)
        session.open()
        try:
            folders = [(self.cfg.inbox, False)]
            sent = self._sent_folder(session)
            if sent is not None and sent != self.cfg.inbox:
                folders.append((sent, True))
            for folder, from_sent in folders:
                yield from self._read_folder(session, folder, from_sent, state)
        finally:
            session.close()

    def _sent_folder(self, session: _ImapSession) -> str | None:
        wanted = self.cfg.sent
        if wanted is None or wanted.lower() != "auto":
            return wanted
        listed = session.folders()
        for flags, name in listed:
            if "\\sent" in flags:
                return name
        names = {name.lower(): name for _, name in listed}
        for candidate in _SENT_NAMES:
            if candidate.lower() in names:
                return names[candidate.lower()]
        raise TerminalError(
            f"source '{self.name}': sent: auto found no folder flagged \\Sent on {session.where}; "
            f"folders: {', '.join(sorted(n for _, n in listed))}",
            hint="set 'sent' to the folder your replies are saved in",
        )

    def _read_folder(
        self,
        session: _ImapSession,
        folder: str,
        from_sent: bool,
        state: dict[str, dict[str, int]],
    ) -> Iterator[Batch]:
        uidvalidity = session.examine(folder)
        prev = state.get(folder)
        if prev is not None and prev["uidvalidity"] == uidvalidity:
            last = prev["last_uid"]
            # "n:*" also matches the highest UID when it is below n: filter ourselves.
            uids = [u for u in session.search("UID", f"{last + 1}:*") if u > last]
            highest = last
        else:
            since_s = self.cfg.since if self.cfg.since is not None else DEFAULT_SINCE
            since = self.ctx.clock() - timedelta(seconds=since_s)
            if prev is not None:
                log.warning(
                    "%s: UIDVALIDITY of %s changed (%d -> %d): the server renumbered the folder; "
                    "reading it again from %s (stored mail is not duplicated)",
                    self.name,
                    folder,
                    prev["uidvalidity"],
                    uidvalidity,
                    since.date().isoformat(),
                )
            # The highest UID first: a message arriving during the search is then above it.
            highest = max(session.search("UID", "*"), default=0)
            uids = session.search("SINCE", _imap_date(since))
        where = f"{session.host} {folder}"
        for start in range(0, len(uids), self.cfg.batch_size):
            chunk = uids[start : start + self.cfg.batch_size]
            items: list[Item] = []
            bad: list[BadInputRecord] = []
            got_list, problems = session.fetch(chunk)
            fetched = {f.uid: f for f in got_list}
            for problem in problems:
                at = f"imap {where}" + (f" UID {problem.uid}" if problem.uid is not None else "")
                bad.append(
                    BadInputRecord.from_raw(
                        self.name,
                        problem.reason,
                        f"{at} (UIDVALIDITY {uidvalidity})",
                        problem.data,
                    )
                )
            for uid in chunk:
                got = fetched.get(uid)
                if got is None:
                    continue  # expunged, or recorded as a problem above
                self._add(
                    got.data,
                    f"imap {where} UID {uid} (UIDVALIDITY {uidvalidity})",
                    items,
                    bad,
                    from_sent=from_sent,
                    fallback_date=got.internaldate,
                    extra={"folder": folder, "uid": uid, "size": got.size},
                )
            state[folder] = {"uidvalidity": uidvalidity, "last_uid": chunk[-1]}
            yield Batch(items=items, bad=bad, cursor=self._imap_cursor(state))
        done = state.get(folder)
        if done is None or done["uidvalidity"] != uidvalidity or done["last_uid"] < highest:
            # Nothing (more) to read, but remember where the folder stands.
            last_uid = max(highest, uids[-1] if uids else 0)
            state[folder] = {"uidvalidity": uidvalidity, "last_uid": last_uid}
            yield Batch(cursor=self._imap_cursor(state))

    @staticmethod
    def _imap_cursor(state: dict[str, dict[str, int]]) -> dict[str, Any]:
        return {"folders": {k: dict(v) for k, v in state.items()}}

    # -- local import -----------------------------------------------------------------------------

    def _collect_local(self, cursor: Cursor | None) -> Iterator[Batch]:
        assert self.cfg.path is not None
        root = self.ctx.app.resolve_path(self.cfg.path)
        if not root.exists():
            raise NotConfigured(
                f"source '{self.name}': {root} does not exist",
                hint="check 'path' (relative paths are relative to the config file)",
            )
        fmt = self._format(root)
        if fmt == "mbox":
            yield from self._read_mbox(root, cursor)
        else:
            yield from self._read_files(root, fmt, cursor)

    def _format(self, root: Path) -> str:
        if self.cfg.format != "auto":
            return self.cfg.format
        if root.is_dir():
            if (root / "cur").is_dir() and (root / "new").is_dir():
                return "maildir"
            return "eml"
        with root.open("rb") as f:
            head = f.read(5)
        return "mbox" if head == b"From " else "eml"

    def _message_files(self, root: Path, fmt: str) -> list[tuple[str, Path]]:
        """(stable key, file) for every message; keys survive Maildir flag changes."""
        if root.is_file():
            return [(root.name, root)]
        if fmt == "maildir":
            found = []
            for sub in ("new", "cur"):
                for p in (root / sub).iterdir() if (root / sub).is_dir() else ():
                    if p.is_file() and not p.name.startswith("."):
                        found.append((re.split(r"[:!;]2,", p.name)[0], p))
            return found
        return [
            (str(p.relative_to(root)), p)
            for p in root.rglob("*")
            if p.is_file() and p.suffix.lower() in (".eml", ".msg", ".mail")
        ]

    def _read_files(self, root: Path, fmt: str, cursor: Cursor | None) -> Iterator[Batch]:
        prev = dict((cursor or {}).get("files", {}))
        seen: dict[str, float] = {str(k): float(v) for k, v in dict(prev.get("seen", {})).items()}
        watermark = float(prev.get("watermark", 0.0))
        todo = []
        for key, path in self._message_files(root, fmt):
            try:
                st = path.stat()
            except OSError:
                continue
            # Maildir keys are unique by design; an .eml file read again after an edit is new.
            ident = key if fmt == "maildir" else f"{key}\0{st.st_size}\0{st.st_mtime_ns}"
            digest = hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:16]
            if digest in seen or st.st_mtime <= watermark:
                continue
            todo.append((st.st_mtime, key, digest, path))
        todo.sort()
        for start in range(0, len(todo), self.cfg.batch_size):
            items: list[Item] = []
            bad: list[BadInputRecord] = []
            for mtime, key, digest, path in todo[start : start + self.cfg.batch_size]:
                try:
                    data = path.read_bytes()
                except OSError as e:
                    bad.append(BadInputRecord.from_raw(self.name, f"unreadable: {e}", key, b""))
                    continue
                self._add(
                    data,
                    f"{fmt} {key}",
                    items,
                    bad,
                    fallback_date=datetime.fromtimestamp(mtime, UTC),
                    extra={"file": key},
                )
                seen[digest] = mtime
            if len(seen) > MAX_SEEN_KEYS:
                # Forget the oldest keys; the watermark says "everything older is done".
                ordered = sorted(seen.items(), key=lambda kv: kv[1])
                drop = ordered[: len(seen) - MAX_SEEN_KEYS]
                watermark = max(watermark, drop[-1][1])
                seen = dict(ordered[len(drop) :])
            yield Batch(
                items=items,
                bad=bad,
                cursor={"files": {"seen": dict(seen), "watermark": watermark}},
            )

    def _read_mbox(self, path: Path, cursor: Cursor | None) -> Iterator[Batch]:
        prev = dict((cursor or {}).get("mbox", {}))
        size = path.stat().st_size

        def head_hash(length: int) -> str:
            with path.open("rb") as f:
                return hashlib.sha256(f.read(length)).hexdigest()[:16]

        # Compare the same prefix the cursor saw: an appended small file keeps its beginning.
        head_len = min(size, 4096)
        head = head_hash(head_len)
        offset = 0
        seen_len = int(prev.get("head_len", 4096))
        if prev and int(prev.get("size", 0)) <= size and head_hash(seen_len) == prev.get("head"):
            offset = int(prev.get("offset", 0))
            if offset >= size:
                return
        items: list[Item] = []
        bad: list[BadInputRecord] = []
        for start, end, from_line, data in _mbox_messages(path, offset):
            self._add(
                data,
                f"mbox {path.name} message at byte {start}",
                items,
                bad,
                fallback_date=_from_line_date(from_line, self.cfg.timezone),
                extra={"file": path.name, "offset": start},
            )
            if len(items) + len(bad) >= self.cfg.batch_size:
                cur = {"mbox": {"head": head, "head_len": head_len, "offset": end, "size": size}}
                yield Batch(items=items, bad=bad, cursor=cur)
                items, bad = [], []
        done = {"head": head, "head_len": head_len, "offset": size, "size": size}
        yield Batch(items=items, bad=bad, cursor={"mbox": done})


def _mbox_messages(path: Path, offset: int) -> Iterator[tuple[int, int, bytes, bytes]]:
    """(start, end, From_ line, message bytes) from ``offset`` on; ``>From `` lines unescaped."""
    with path.open("rb") as f:
        f.seek(offset)
        pos = offset
        start = -1
        from_line = b""
        lines: list[bytes] = []
        for line in f:
            if line.startswith(b"From "):
                if start >= 0:
                    yield start, pos, from_line, _mbox_body(lines)
                start, from_line, lines = pos, line, []
            elif start >= 0:
                lines.append(line)
            pos += len(line)
        if start >= 0:
            yield start, pos, from_line, _mbox_body(lines)


def _mbox_body(lines: list[bytes]) -> bytes:
    if lines and not lines[-1].strip():
        lines = lines[:-1]  # the separator blank line belongs to the mbox, not the message
    return b"".join(line[1:] if re.match(rb">+From ", line) else line for line in lines)


_FROM_DATE = re.compile(rb"(\w{3})\s+(\d{1,2})\s+(\d{1,2}):(\d\d):(\d\d)\s+(\d{4})")


def _from_line_date(line: bytes, zone: str = "UTC") -> datetime | None:
    """The delivery time on an mbox ``From sender Tue May  7 09:00:00 2024`` line.

    The line has no zone: the delivering system wrote its local time, read here in ``zone``
    (the source's ``timezone``).
    """
    m = _FROM_DATE.search(line)
    if not m:
        return None
    mon, day, hh, mm, ss, year = (g.decode("ascii") for g in m.groups())
    try:
        month = _MONTHS.index(mon.title()) + 1
        local = datetime(int(year), month, int(day), int(hh), int(mm), int(ss))
        return local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    except (ValueError, OverflowError, ZoneInfoNotFoundError):
        return None


__all__ = [
    "EmailCollector",
    "EmailSource",
    "FetchResponse",
    "decode_folder",
    "encode_folder",
    "parse_fetch",
]
