"""One e-mail message (bytes) -> clean text and metadata, never raising on bad input.

Real mail is messy: charsets are mislabeled or unknown, multipart boundaries are wrong, headers
carry raw 8-bit bytes, bodies are HTML only, and every reply drags the whole conversation along
as quoted history. The collector needs two texts from each message:

* ``body``: everything the sender's client put in the message body, as text. It is kept (capped)
  in the item's ``raw`` so a human can read the full context.
* ``text``: only what the sender wrote *this time*: quoted history ("On ... wrote:", ``>``
  lines, Outlook's "-----Original Message-----" and "From: ... Sent: ..." blocks, and their
  French, German, Spanish, Chinese ... forms) and signatures ("-- ", "Sent from my iPhone") are
  cut. This is what gets classified: a polite reply quoting an angry thread is not angry.

Parsing uses :mod:`email` with ``policy.default`` but decodes every header and body part itself
with a forgiving charset chain (declared charset, UTF-8, windows-1252), so a wrong label costs a
few odd characters at worst, never the message. :func:`parse` returns a :class:`ParsedMail`
whose ``problem`` is set only when nothing usable remains (the collector then records a bad
input); lesser damage is listed in ``defects`` and the rest is kept.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any

from pipeline.collectors.base import parse_timestamp
from pipeline.collectors.textutil import codec_for, html_to_text
from pipeline.collectors.textutil import decode_bytes as _decode_bytes
from pipeline.errors import BadInput

__all__ = [
    "BODY_RAW_MAX_BYTES",
    "ParsedMail",
    "decode_bytes",
    "decode_header_value",
    "html_to_text",
    "machine_generated",
    "normalize_message_id",
    "parse",
    "strip_quotes_and_signature",
]

BODY_RAW_MAX_BYTES = 8_000
"""Most of the full body kept in ``raw``, in UTF-8 bytes (an item's raw is capped at 16 KiB)."""

MAX_ATTACHMENTS = 30
"""Attachment metadata entries kept per message (a mail with 500 inline images is not rare)."""

_PARSER = BytesParser(policy=policy.default)

# -- charsets ---------------------------------------------------------------------------------
# The rules (BOM, valid UTF-8 over a single-byte label, trusted multi-byte labels, windows-1252
# last) are shared with feeds and reviews in pipeline.collectors.textutil.

_codec = codec_for


def decode_bytes(data: bytes, charset: str | None, hints: tuple[str, ...] = ()) -> tuple[str, str]:
    """Decode ``data`` labelled ``charset``, other charsets of the message as ``hints``;
    returns (text, codec actually used). See :func:`textutil.decode_bytes` for the order."""
    text, used, _fell_back = _decode_bytes(data, charset, hints=hints)
    return text, used


# -- headers ------------------------------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+?)(?:\*[^?\s]*)?\?([QqBb])\?([^?\s]*)\?=")
_SURROGATES = re.compile("[\udc80-\udcff]")


def _unescape_8bit(value: str) -> str:
    """Header bytes that were not ASCII arrive as surrogate escapes: decode them for real."""
    if not _SURROGATES.search(value):
        return value
    data = value.encode("utf-8", errors="surrogateescape")
    return decode_bytes(data, None)[0]


def _word_bytes(encoding: str, payload: str) -> bytes:
    if encoding.upper() == "Q":
        return binascii.a2b_qp(payload.replace("_", " ").encode("ascii", "replace"), header=True)
    data = payload.encode("ascii", "replace")
    data += b"=" * (-len(data) % 4)
    try:
        return base64.b64decode(data)
    except (binascii.Error, ValueError):
        return b""


def decode_header_value(value: str | None, hints: tuple[str, ...] = ()) -> str:
    """RFC 2047 and raw 8-bit header text -> str, whatever the charset labels say.

    Adjacent encoded words in one charset are joined before decoding, because clients split
    multi-byte characters (CJK, emoji) across words.
    """
    if not value:
        return ""
    value = _unescape_8bit(value)
    pieces: list[tuple[str, str | None, bytes]] = []  # (plain text, charset, encoded bytes)
    pos = 0
    for m in _ENCODED_WORD.finditer(value):
        between = value[pos : m.start()]
        if between and not (between.isspace() and pieces and pieces[-1][1] is not None):
            pieces.append((between, None, b""))
        charset, data = m.group(1), _word_bytes(m.group(2), m.group(3))
        if pieces and pieces[-1][1] is not None and pieces[-1][1].lower() == charset.lower():
            prev = pieces[-1]
            pieces[-1] = ("", prev[1], prev[2] + data)
        else:
            pieces.append(("", charset, data))
        pos = m.end()
    tail = value[pos:]
    if tail:
        pieces.append((tail, None, b""))
    out = []
    for text, charset, data in pieces:
        out.append(text if charset is None else decode_bytes(data, charset, hints)[0])
    return re.sub(r"\s+", " ", "".join(out)).strip()


def _raw_headers(msg: Message) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        out.setdefault(name.lower(), []).append(str(value))
    return out


def normalize_message_id(value: str | None) -> str | None:
    """``<abc@example.com>`` -> ``abc@example.com``; None when there is nothing id-like."""
    if not value:
        return None
    m = re.search(r"<([^<>\s]+)>", value)
    if m:
        return m.group(1)
    token = value.strip().strip("<>").split()
    return token[0] if token and len(token[0]) <= 998 else None


def _message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    found = re.findall(r"<([^<>\s]+)>", value)
    if found:
        return found
    return [t.strip("<>,") for t in value.split() if "@" in t]


# -- HTML ---------------------------------------------------------------------------------------
# html_to_text (with drop_quotes for Gmail/Outlook/Apple quoted history) is imported from
# pipeline.collectors.textutil, shared with feeds and reviews.


# -- quoted history and signatures --------------------------------------------------------------

_ATTRIBUTION = re.compile(
    r"""^\s*(?:
        On\b.{0,300}\bwrote\s*:? |
        Le\b.{0,300}\ba\s+[ée]crit\s*: |
        Am\b.{0,300}\bschrieb\b.{0,200}: |
        .{0,300}\bschrieb\s*: |
        El\b.{0,300}\bescribi[óo]\s*: |
        Em\b.{0,300}\bescreveu\s*: |
        Il\b.{0,300}\bha\s+scritto\s*: |
        Op\b.{0,300}\bschreef\b.{0,200}: |
        Pada\b.{0,300}\bmenulis\s*: |
        .{0,300}\b(?:пишет|написал|написала|написал\(а\))\s*: |
        .{0,300}\bskrev\s*: |
        在.{0,300}写道\s*[:：]? |
        .{0,300}於.{0,300}寫道\s*[:：]? |
        .{0,300}님이\s*작성\s*[:：]? |
        \d{4}年\d{1,2}月\d{1,2}日.{0,300}[:：]
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# Attributions that clients wrap over lines start with a keyword or a date; only those are
# joined with the next lines (else any sentence followed by an attribution would match).
_WRAPPED_START = re.compile(r"^\s*(?:(?:On|Le|Am|El|Em|Il|Op|Pada)\s|在|\d)", re.IGNORECASE)
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*[-_=]{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine|"
    r"Mensaje original|Messaggio originale|Oorspronkelijk bericht|Mensagem original|"
    r"Originalmeddelande|Оригинальное сообщение|Исходное сообщение|原始邮件|原始郵件|"
    r"元のメッセージ|Pesan Asli|Mesej Asal)\s*[-_=]{2,}\s*$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r"^\s*_{10,}\s*$")
_FROM_LINE = re.compile(
    r"^\s*\*?(?:From|De|Von|Van|Da|Från|Fra|Od|От|Dari|发件人|寄件者|差出人|보낸 사람)"
    r"\s*\*?\s*[:：]",
    re.IGNORECASE,
)
_SENT_LINE = re.compile(
    r"^\s*\*?(?:Sent|Date|Envoyé|Gesendet|Datum|Enviado|Fecha|Inviato|Data|Verzonden|Skickat|"
    r"Sendt|Отправлено|Дата|Dikirim|Tanggal|Tarikh|发送时间|日期|寄件日期|送信日時|보낸 날짜|"
    r"To|À|An|Para|Subject|Objet|Betreff|Asunto)\s*\*?\s*[:：]",
    re.IGNORECASE,
)
_SIG_DELIMITER = re.compile(r"^--\s?$")
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(?:Sent from my\b.{1,40}|Sent from (?:Outlook|Mail|Yahoo|Gmail|Samsung)\b.{0,40}|"
    r"Get Outlook for\b.{1,30}|Envoy[ée] de mon\b.{1,30}|Envoy[ée] depuis\b.{1,40}|"
    r"Von meinem\b.{1,30}\bgesendet|Gesendet von\b.{1,40}|Enviado desde mi\b.{1,30}|"
    r"Enviado do meu\b.{1,30}|Inviato da\b.{1,30}|Verzonden (?:vanaf|met) mijn\b.{1,30}|"
    r"Dikirim dari\b.{1,40}|Dihantar dari\b.{1,40}|发自我的.{1,30}|從我的.{1,30}傳送|"
    r".{1,20}から送信)\s*$",
    re.IGNORECASE,
)
_QUOTED_LINE = re.compile(r"^\s*>")


# What makes a line that ends in "wrote:" a client's attribution rather than the customer's own
# sentence ("Ваш оператор написал:", "your agent wrote:"): clients put the date, the time or the
# quoted person's address in it, or start it with the "On <date>, <name> wrote:" keyword.
_ATTRIBUTION_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ATTRIBUTION_TIME = re.compile(
    r"\b\d{1,2}:\d{2}\b|\b(?:19|20)\d{2}\b|\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b|"
    r"\d{1,4}\s*[年月日년월일]"
)
_ATTRIBUTION_KEYWORD = re.compile(r"^\s*(?:On|Le|Am|El|Em|Il|Op|Pada)\s+\S", re.IGNORECASE)


def _looks_like_attribution(text: str) -> bool:
    return bool(
        _ATTRIBUTION_ADDRESS.search(text)
        or _ATTRIBUTION_TIME.search(text)
        or _ATTRIBUTION_KEYWORD.match(text)
    )


def _attribution_at(lines: list[str], i: int) -> int:
    """How many lines (1-3) form a reply attribution starting at ``i``; 0 if none.

    Clients wrap a long "On <date>, <name> <address> wrote:" over two or three lines. A line
    only counts when it has the shape *and* a date, time, address or leading keyword, so a
    customer's "your operator wrote:" is not taken for one. The caller also checks what follows.
    """
    for span in (1, 2, 3):
        if i + span > len(lines) or (span > 1 and not _WRAPPED_START.match(lines[i])):
            break
        joined = " ".join(line.strip() for line in lines[i : i + span])
        if len(joined) > 400:
            break
        if _ATTRIBUTION.match(joined) and _looks_like_attribution(joined):
            return span
    return 0


def _history_block_at(lines: list[str], i: int) -> bool:
    """Does quoted history in header form (Outlook block, "Original Message") start at ``i``?"""
    if _ORIGINAL_MESSAGE.match(lines[i]) or _outlook_block_at(lines, i):
        return True
    return bool(
        _SEPARATOR.match(lines[i]) and i + 1 < len(lines) and _outlook_block_at(lines, i + 1)
    )


def _outlook_block_at(lines: list[str], i: int) -> bool:
    if not _FROM_LINE.match(lines[i]):
        return False
    following = [line for line in lines[i + 1 : i + 6] if line.strip()]
    return sum(1 for line in following[:4] if _SENT_LINE.match(line)) >= 2


def strip_quotes_and_signature(text: str) -> str:
    """What the sender wrote this time: quoted history and signatures cut.

    ``>`` lines are dropped (the sender may answer below or between them), and so is a reply
    attribution ("On <date>, <name> wrote:") that is followed by ``>`` lines, or by nothing
    when it carries a date, time or address (an HTML quote container dropped after it).
    An attribution followed by a header block ("From: ... Sent: ...", "-----Original
    Message-----") cuts everything after it, as those blocks do on their own. An attribution-like
    line followed by ordinary text is kept with that text: it may be the customer quoting
    someone ("Ваш оператор написал:\n... я подам в суд"), and losing a complaint is worse than
    classifying some unprefixed history with it (the full body is in ``raw`` either way).
    Returns "" when nothing of the sender's own remains (the caller then keeps the full text).
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _history_block_at(lines, i):
            break
        if _QUOTED_LINE.match(line):
            i += 1
            continue
        span = _attribution_at(lines, i)
        if span:
            after = next((j for j in range(i + span, len(lines)) if lines[j].strip()), None)
            if after is not None and _QUOTED_LINE.match(lines[after]):
                i += span
                continue
            if after is not None and _history_block_at(lines, after):
                break
            # Last line (its HTML quote container was dropped): only a dated or addressed one
            # goes, so a closing "On the form I wrote" stays.
            joined = " ".join(line.strip() for line in lines[i : i + span])
            if after is None and (
                _ATTRIBUTION_ADDRESS.search(joined) or _ATTRIBUTION_TIME.search(joined)
            ):
                i += span
                continue
        kept.append(line)
        i += 1
    for n, line in enumerate(kept):
        if n > 0 and (_SIG_DELIMITER.match(line) or _MOBILE_SIGNATURE.match(line)):
            kept = kept[:n]
            break
        if n == 0 and _MOBILE_SIGNATURE.match(line):
            kept = []
            break
    out = "\n".join(kept)
    return re.sub(r"\n{3,}", "\n\n", out).strip()


# -- machine-written mail -----------------------------------------------------------------------

# A subject alone never decides: "Out of office hours my card was charged twice" and "Auto reply
# not working on my account" are customers. Only these prefixes, ended by a colon the way clients
# write them, count, and only next to a supporting header (see machine_generated).
_AUTO_SUBJECT = re.compile(
    r"^\s*(Automatic reply|Auto(?:-| )?reply|Out of Office|Abwesenheitsnotiz|"
    r"Réponse automatique|Respuesta automática|自动回复)\s*[:：]",
    re.IGNORECASE,
)
_BOUNCE_SENDER = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon)@", re.IGNORECASE)
_REPORT_TYPE = re.compile(r"""(?:^|;)\s*report-type\s*=\s*"?([^";\s]+)""", re.IGNORECASE)
_NEGATIVE = frozenset({"", "no", "false", "0", "off"})


def machine_generated(headers: dict[str, list[str]], from_addr: str, subject: str) -> str | None:
    """Why this message was written by a machine (auto-reply, bounce), or None.

    Such mail is not someone waiting for an answer, and a brand's auto-acknowledgement is not
    an answer either, so the collector does not store it as an item; it records it as a bad
    input with this reason instead, so an operator can audit what was filtered.

    Only header evidence decides, because a customer's own words can look like an autoresponder
    subject and contact-form relays send real complaints with ``Precedence: bulk``:

    * decisive: ``Auto-Submitted`` other than ``no`` (RFC 3834), ``X-Autoreply``,
      ``X-Autorespond``, ``Precedence: auto_reply``; bounces: a ``multipart/report`` with
      ``report-type=delivery-status``, or mail from MAILER-DAEMON / postmaster;
    * supporting only: ``X-MS-Exchange-Inbox-Rules-Loop``, ``X-Auto-Response-Suppress`` and an
      empty ``Return-Path: <>`` (RFC 3834 responses go out with a null sender) count together
      with an autoresponder subject prefix ("Automatic reply:", "Out of Office:" ...), never
      alone. ``Precedence: bulk`` / ``list`` count for nothing.
    """

    def first(name: str) -> str:
        values = headers.get(name.lower())
        return values[0].strip() if values else ""

    auto = first("Auto-Submitted").split(";", 1)[0].strip().lower()
    if auto and auto != "no":
        return f"auto-reply (Auto-Submitted: {auto[:40]})"
    for name in ("X-Autoreply", "X-Autorespond"):
        value = first(name)
        if value and value.lower() not in _NEGATIVE:
            return f"auto-reply ({name}: {value[:40]})"
    if first("Precedence").lower() == "auto_reply":
        return "auto-reply (Precedence: auto_reply)"
    content_type = first("Content-Type")
    report = _REPORT_TYPE.search(content_type)
    if (
        content_type.lower().startswith("multipart/report")
        and report is not None
        and report.group(1).lower() == "delivery-status"
    ):
        return "bounce (delivery status report)"
    if _BOUNCE_SENDER.match(from_addr or ""):
        return f"bounce (from {from_addr[:80]})"
    m = _AUTO_SUBJECT.match(subject or "")
    if m:
        support = [
            f"{name}: {first(name)[:40]}"
            for name in ("X-MS-Exchange-Inbox-Rules-Loop", "X-Auto-Response-Suppress")
            if first(name)
        ]
        if first("Return-Path") == "<>":
            support.append("Return-Path: <>")
        if support:
            return f"auto-reply (subject '{m.group(1)}:' with {', '.join(support)})"
    return None


# -- the message --------------------------------------------------------------------------------


@dataclass
class ParsedMail:
    """What one message says, decoded. ``problem`` set = nothing usable (a bad input)."""

    message_id: str | None = None
    synthetic_id: str = ""
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    subject: str = ""
    from_addr: str = ""
    from_name: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    date: datetime | None = None
    body: str = ""
    text: str = ""
    attachments: list[dict[str, Any]] = field(default_factory=list)
    charsets: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    machine: str | None = None
    problem: str | None = None

    @property
    def id(self) -> str:
        return self.message_id or self.synthetic_id

    @property
    def thread_root(self) -> str:
        """The first message of the conversation: References' first, else In-Reply-To, else self."""
        if self.references:
            return self.references[0]
        return self.in_reply_to or self.id

    def raw(self, **extra: Any) -> dict[str, Any]:
        """The JSON kept with the item: headers that matter, the full body (capped), attachments."""
        body = self.body.encode("utf-8")
        out: dict[str, Any] = {
            "message_id": self.message_id,
            "from": self.from_addr,
            "from_name": self.from_name,
            "to": self.to[:20],
            "cc": self.cc[:20],
            "subject": self.subject,
            "in_reply_to": self.in_reply_to,
            "references": self.references[-20:],
            "body": body[:BODY_RAW_MAX_BYTES].decode("utf-8", errors="ignore"),
        }
        if len(body) > BODY_RAW_MAX_BYTES:
            out["body_truncated_from_bytes"] = len(body)
        if self.attachments:
            out["attachments"] = self.attachments
        if self.charsets:
            out["charsets"] = self.charsets
        if self.defects:
            out["defects"] = self.defects[:10]
        out.update(extra)
        return out


def _addresses(value: str) -> list[tuple[str, str]]:
    try:
        pairs = email.utils.getaddresses([value])
    except (TypeError, ValueError, IndexError):
        return []
    return [(name, addr) for name, addr in pairs if addr and "@" in addr]


_MINUS_ZERO = re.compile(r"[\d\s]-0000\s*(?:\([^)]*\))?\s*$")


def _date(value: str, default_tz: str) -> datetime | None:
    """The Date header as UTC, or None when it is missing or garbage (not an error).

    One reader for every source (:func:`pipeline.collectors.base.parse_timestamp`): a Date
    without a zone is read in the source's ``timezone``. RFC 5322's ``-0000`` is not "no zone"
    but "UTC, local zone unknown", so it stays UTC whatever the source's zone.
    """
    if not value or not value.strip():
        return None
    zone = "UTC" if _MINUS_ZERO.search(value) else default_tz
    try:
        return parse_timestamp(value, default_tz=zone, what="Date")
    except (BadInput, TypeError, ValueError, IndexError, OverflowError):
        return None


_BOUNDARY_LINE = re.compile(rb"^--([^\s\"]{1,70}?)\s*$", re.MULTILINE)


def _repair_boundary(data: bytes, msg: Message) -> Message | None:
    """A multipart whose declared boundary never occurs: reparse with the one the body uses."""
    payload = msg.get_payload()
    if not isinstance(payload, str):
        return None
    body = payload.encode("utf-8", errors="surrogateescape")
    m = _BOUNDARY_LINE.search(body)
    declared = msg.get_param("boundary")
    if m is None or not isinstance(declared, str):
        return None
    found = m.group(1).decode("ascii", errors="replace")
    if found.endswith("--"):
        found = found[:-2]
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, rest = data.partition(b"\n\n")
    fixed_head = head.replace(declared.encode("ascii", "replace"), found.encode("ascii"), 1)
    if fixed_head == head:
        return None
    repaired = _PARSER.parsebytes(fixed_head + sep + rest)
    return repaired if repaired.is_multipart() else None


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:  # a header the parser chokes on is no disposition
        return None


def _filename(part: Message, hints: tuple[str, ...]) -> str | None:
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = part.get_param(param, header=header)
        if raw is None:
            continue
        if isinstance(raw, tuple):  # RFC 2231: (charset, language, value)
            charset, _lang, value = raw
            data = value.encode("latin-1", errors="replace") if isinstance(value, str) else b""
            return decode_bytes(data, charset, hints)[0] or None
        return decode_header_value(str(raw), hints) or None
    return None


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", errors="surrogateescape")
    return b""


_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)


class _Walker:
    """Collects body text and attachment metadata from a (possibly broken) MIME tree."""

    def __init__(self, hints: tuple[str, ...]) -> None:
        self.hints = hints
        self.attachments: list[dict[str, Any]] = []
        self.attachment_count = 0
        self.charsets: list[str] = []

    def _attachment(self, part: Message, content_type: str) -> None:
        self.attachment_count += 1
        if len(self.attachments) >= MAX_ATTACHMENTS:
            return
        name = _filename(part, self.hints)
        if content_type == "message/rfc822" and not name:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                subject = _raw_headers(inner[0]).get("subject", [""])[0]
                name = (decode_header_value(subject, self.hints) or "message") + ".eml"
                size = len(inner[0].as_bytes(policy=policy.compat32))
                self.attachments.append(
                    {"filename": name, "content_type": content_type, "size": size}
                )
                return
        self.attachments.append(
            {"filename": name, "content_type": content_type, "size": len(_payload_bytes(part))}
        )

    def _text(self, part: Message, content_type: str) -> str:
        data = _payload_bytes(part)
        charset = part.get_param("charset")
        label = charset if isinstance(charset, str) else None
        if label is None and content_type == "text/html":
            m = _META_CHARSET.search(data[:2048])
            if m:
                label = m.group(1).decode("ascii", errors="replace")
        text, used = decode_bytes(data, label, self.hints)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        declared = _codec(label)
        if used not in ("ascii", declared) and not (used == "utf-8" and declared is None):
            self.charsets.append(f"{label or 'none'} read as {used}")
        return text

    def visit(self, part: Message) -> tuple[list[str], list[str]]:
        """(plain texts, html texts) in this subtree; attachments are recorded on the side."""
        try:
            content_type = part.get_content_type()
        except Exception:
            content_type = "text/plain"
        maintype = content_type.split("/", 1)[0]
        payload = part.get_payload()
        if maintype == "multipart":
            if not isinstance(payload, list):
                # Broken multipart that could not be split: its text is still text.
                return [self._text(part, "text/plain")], []
            children = [self.visit(p) for p in payload if isinstance(p, Message)]
            if content_type == "multipart/alternative":
                for plain, _ in children:
                    if any(t.strip() for t in plain):
                        return plain, []
                for _, htmls in children:
                    if any(t.strip() for t in htmls):
                        return [], htmls
                return [], []
            plains = [t for c in children for t in c[0]]
            htmls = [t for c in children for t in c[1]]
            return plains, htmls
        if content_type == "message/rfc822":
            self._attachment(part, content_type)
            return [], []
        if _disposition(part) == "attachment":
            self._attachment(part, content_type)
            return [], []
        if content_type == "text/html":
            return [], [self._text(part, content_type)]
        if content_type in ("text/plain", "text/enriched"):
            return [self._text(part, content_type)], []
        self._attachment(part, content_type)  # images, PDFs, calendars, vCards ...
        return [], []


def parse(data: bytes, *, default_tz: str = "UTC") -> ParsedMail:
    """Parse one message. Never raises; ``problem`` says why nothing usable came out of it.

    ``default_tz`` is the zone a Date header without one is read in (the source's timezone).
    """
    out = ParsedMail(synthetic_id=synthetic_id(data))
    if not data.strip():
        out.problem = "empty message"
        return out
    try:
        msg: Message = _PARSER.parsebytes(data)
    except Exception as e:  # the email package can still trip on pathological input
        out.problem = f"unparseable message: {type(e).__name__}: {e}"
        return out
    headers = _raw_headers(msg)
    if not any(h in headers for h in ("from", "date", "subject", "message-id", "to")):
        out.problem = "not an e-mail message: no From, To, Date, Subject or Message-ID header"
        return out
    out.defects = sorted({type(d).__name__ for d in msg.defects})
    if (
        isinstance(msg, EmailMessage)
        and msg.get_content_maintype() == "multipart"
        and not msg.is_multipart()
    ):
        repaired = _repair_boundary(data, msg)
        if repaired is not None:
            msg = repaired
            out.defects.append("boundary repaired")

    hints = tuple(
        sorted({c for c in (p.get_param("charset") for p in _safe_walk(msg)) if isinstance(c, str)})
    )

    def header(name: str) -> str:
        values = headers.get(name.lower())
        return decode_header_value(values[0], hints) if values else ""

    def raw_header(name: str) -> str:
        values = headers.get(name.lower())
        return _unescape_8bit(values[0]) if values else ""

    out.subject = header("Subject")
    senders = _addresses(raw_header("From")) or _addresses(raw_header("Sender"))
    if senders:
        name, addr = senders[0]
        out.from_name = decode_header_value(name, hints)
        out.from_addr = addr.strip().lower()
    out.to = [a.lower() for _, a in _addresses(raw_header("To"))]
    out.cc = [a.lower() for _, a in _addresses(raw_header("Cc"))]
    out.message_id = normalize_message_id(raw_header("Message-ID"))
    in_reply_to = _message_ids(raw_header("In-Reply-To"))
    out.in_reply_to = in_reply_to[0] if in_reply_to else None
    out.references = _message_ids(raw_header("References"))
    out.date = _date(raw_header("Date"), default_tz)
    out.machine = machine_generated(headers, out.from_addr, out.subject)

    walker = _Walker(hints)
    try:
        plains, htmls = walker.visit(msg)
    except Exception as e:  # keep the headers; say what broke
        plains, htmls = [], []
        out.defects.append(f"body unreadable: {type(e).__name__}")
    out.attachments = walker.attachments
    if walker.attachment_count > len(walker.attachments):
        out.defects.append(f"{walker.attachment_count} attachments, first {MAX_ATTACHMENTS} kept")
    out.charsets = walker.charsets
    plain = "\n\n".join(t.strip() for t in plains if t.strip())
    if plain:
        out.body = plain
        clean = strip_quotes_and_signature(plain)
    else:
        markup = "\n".join(htmls)
        out.body = html_to_text(markup)
        clean = strip_quotes_and_signature(html_to_text(markup, drop_quotes=True))
    out.text = clean or out.body
    if not out.text.strip() and not out.subject and not out.attachments:
        out.problem = "no text, subject or attachment could be read"
    return out


def _safe_walk(msg: Message) -> list[Message]:
    try:
        return list(msg.walk())
    except Exception:
        return [msg]


def synthetic_id(data: bytes) -> str:
    """A stable id for a message without Message-ID: a hash of its headers and body.

    Transport headers added on delivery (Received, Return-Path, Delivered-To, X-*) differ
    between copies of one message, so they are left out.
    """
    head, _, body = data.replace(b"\r\n", b"\n").partition(b"\n\n")
    kept = []
    for line in re.split(rb"\n(?![ \t])", head):
        name = line.split(b":", 1)[0].strip().lower()
        if name in (b"received", b"return-path", b"delivered-to") or name.startswith(b"x-"):
            continue
        kept.append(line)
    h = hashlib.sha256(b"\n".join(kept) + b"\n\n" + body)
    return "synthetic-" + h.hexdigest()[:32]
