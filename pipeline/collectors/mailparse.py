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
import codecs
import email.utils
import hashlib
import html
import html.parser
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any

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

# -- charsets -----------------------------------------------------------------------------------

# Labels mail clients use that Python does not know, or that are really a superset in practice
# (the WHATWG encoding standard makes the same choices for the web).
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ansi_x3.4-1968": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "big5": "big5hkscs",
    "iso-8859-8-i": "iso-8859-8",
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
}
# Multi-byte encodings: a few undecodable bytes there mean damage, not a wrong label.
_MULTIBYTE = frozenset(
    {
        "cp932",
        "shift_jis",
        "euc_jp",
        "iso2022_jp",
        "gb18030",
        "gbk",
        "gb2312",
        "big5",
        "big5hkscs",
        "cp949",
        "euc_kr",
        "iso2022_kr",
        "cp950",
        "hz",
        "utf_16",
        "utf_16_le",
        "utf_16_be",
        "utf_32",
    }
)
_MAX_REPLACEMENT_SHARE = 0.02


def _codec(label: str | None) -> str | None:
    """Python's codec name for a MIME charset label, or None if it is unknown or a non-charset."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    if name in ("unknown-8bit", "x-unknown", "unknown", "x-user-defined", "default"):
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None, hints: tuple[str, ...] = ()) -> tuple[str, str]:
    """Decode ``data`` labelled ``charset``; returns (text, codec actually used).

    Order: valid UTF-8 wins over a single-byte label (UTF-8 mislabeled as Latin-1 is the most
    common mistake, and real Latin-1 text is almost never valid UTF-8); then the declared
    charset; a multi-byte charset with a few broken bytes is kept with U+FFFD; then other
    charsets the message declares (``hints``); then windows-1252, which reads almost anything.
    """
    codec = _codec(charset)
    if data.isascii() and not (codec or "").startswith(("iso2022", "utf_7", "hz")):
        return data.decode("ascii"), "ascii"  # 7-bit ISO-2022-JP and UTF-7 still need decoding
    if codec is None or codec not in _MULTIBYTE:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    if codec is not None and codec != "utf-8":
        try:
            return data.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            pass
        if codec in _MULTIBYTE:
            text = data.decode(codec, errors="replace")
            if text.count("\ufffd") <= max(1, len(text) * _MAX_REPLACEMENT_SHARE):
                return text, codec
    for hint in hints:
        hinted = _codec(hint)
        if hinted is None or hinted in (codec, "utf-8"):
            continue
        try:
            return data.decode(hinted), hinted
        except (UnicodeDecodeError, LookupError):
            continue
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "cp1252"


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

_SKIP_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template", "svg"})
_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "tr",
        "li",
        "ul",
        "ol",
        "table",
        "blockquote",
        "pre",
        "hr",
        "section",
        "article",
        "header",
        "footer",
        "dd",
        "dt",
        "dl",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "address",
        "center",
        "form",
        "figure",
    }
)
_VOID_TAGS = frozenset(
    {"br", "img", "hr", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}
)
# Containers in which mail clients put the quoted conversation.
_QUOTE_CLASSES = re.compile(
    r"\b(gmail_quote|gmail_extra|yahoo_quoted|moz-cite-prefix|OutlookMessageHeader)\b",
    re.IGNORECASE,
)
_QUOTE_IDS = re.compile(
    r"^(divRplyFwdMsg|appendonsend|reply-intro|mail-editor-reference-message-container)$",
    re.IGNORECASE,
)


class _HtmlText(html.parser.HTMLParser):
    def __init__(self, drop_quotes: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.drop_quotes = drop_quotes
        self.out: list[str] = []
        self._skip: list[str] = []  # stack of tags whose content is dropped
        self._pre = 0
        self._cut = False  # Outlook: everything after its reply header block is history

    def _is_quote(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if not self.drop_quotes:
            return False
        if tag == "blockquote":
            return True
        values = dict(attrs)
        if _QUOTE_CLASSES.search(values.get("class") or ""):
            return True
        ident = values.get("id") or ""
        if _QUOTE_IDS.match(ident):
            if ident.lower() in ("divrplyfwdmsg", "appendonsend"):
                self._cut = True
            return True
        return False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._cut:
            return
        if self._skip:
            if tag == self._skip[0] and tag not in _VOID_TAGS:
                self._skip.append(tag)
            return
        if tag in _SKIP_TAGS or self._is_quote(tag, attrs):
            if tag not in _VOID_TAGS:
                self._skip.append(tag)
            return
        if tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(f" {alt} ")
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")
        if tag == "pre":
            self._pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self._cut:
            return
        if self._skip:
            if tag == self._skip[0]:
                self._skip.pop()
            return
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in _BLOCK_TAGS and tag not in ("li", "dd", "dt"):
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip or self._cut:
            return
        if not self._pre:
            data = re.sub(r"\s+", " ", data)
        self.out.append(data)

    def text(self) -> str:
        joined = "".join(self.out).replace("\xa0", " ")
        lines = [re.sub(r"[ \t]+", " ", line).strip() for line in joined.split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(markup: str, *, drop_quotes: bool = False) -> str:
    """Readable text from mail HTML: scripts, styles and the head dropped, line breaks kept.

    With ``drop_quotes`` the containers clients put quoted history in (``blockquote``,
    Gmail's ``gmail_quote``, Outlook's reply header and what follows it) are dropped too.
    """
    parser = _HtmlText(drop_quotes)
    try:
        parser.feed(markup)
        parser.close()
    except (AssertionError, ValueError):  # html.parser is forgiving; this is belt and braces
        return re.sub(r"<[^>]*>", " ", html.unescape(markup)).strip()
    return parser.text()


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


def _attribution_at(lines: list[str], i: int) -> int:
    """How many lines (1-3) form a reply attribution starting at ``i``; 0 if none.

    Clients wrap a long "On <date>, <name> <address> wrote:" over two or three lines.
    """
    for span in (1, 2, 3):
        if i + span > len(lines) or (span > 1 and not _WRAPPED_START.match(lines[i])):
            break
        joined = " ".join(line.strip() for line in lines[i : i + span])
        if len(joined) > 400:
            break
        if _ATTRIBUTION.match(joined):
            return span
    return 0


def _outlook_block_at(lines: list[str], i: int) -> bool:
    if not _FROM_LINE.match(lines[i]):
        return False
    following = [line for line in lines[i + 1 : i + 6] if line.strip()]
    return sum(1 for line in following[:4] if _SENT_LINE.match(line)) >= 2


def strip_quotes_and_signature(text: str) -> str:
    """What the sender wrote this time: quoted history and signatures cut.

    A reply attribution followed by ``>`` lines is removed with those lines only (the sender may
    answer below or between them); one followed by unprefixed text (top-posting clients) cuts
    everything after it, as do "-----Original Message-----" and Outlook's header blocks.
    Returns "" when nothing of the sender's own remains (the caller then keeps the full text).
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _ORIGINAL_MESSAGE.match(line) or _outlook_block_at(lines, i):
            break
        if _SEPARATOR.match(line) and i + 1 < len(lines) and _outlook_block_at(lines, i + 1):
            break
        if not _QUOTED_LINE.match(line):
            span = _attribution_at(lines, i)
            if span:
                rest = [x for x in lines[i + span :] if x.strip()]
                if rest and _QUOTED_LINE.match(rest[0]):
                    i += span
                    continue
                break
        if _QUOTED_LINE.match(line):
            i += 1
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

_AUTO_SUBJECT = re.compile(
    r"^\s*(?:Automatic reply|Auto(?:matic)?[- ]?reply|Autosvar|Out of (?:the )?Office|"
    r"Abwesenheitsnotiz|Automatische Antwort|Réponse automatique|Respuesta automática|"
    r"Risposta automatica|自动回复|自動回覆|自動応答)\b\s*[:：]?",
    re.IGNORECASE,
)
_BOUNCE_SENDER = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:Undeliverable|Undelivered Mail Returned|Delivery Status Notification \(Failure\)|"
    r"Mail delivery failed|Returned mail|Delivery failure|Unzustellbar)\b",
    re.IGNORECASE,
)


def machine_generated(headers: dict[str, list[str]], from_addr: str, subject: str) -> str | None:
    """Why this message was written by a machine (auto-reply, bounce), or None.

    Such mail is not someone waiting for an answer, and a brand's auto-acknowledgement is not
    an answer either, so the collector does not store it (see the README).
    """

    def first(name: str) -> str:
        values = headers.get(name.lower())
        return values[0].strip() if values else ""

    auto = first("Auto-Submitted").lower()
    if auto and auto != "no":
        return f"auto-reply (Auto-Submitted: {auto[:40]})"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autogenerated"):
        if first(name):
            return f"auto-reply ({name})"
    precedence = first("Precedence").lower()
    if precedence in ("bulk", "junk", "auto_reply"):
        return f"auto-reply (Precedence: {precedence})"
    content_type = first("Content-Type").lower()
    if "multipart/report" in content_type and "delivery-status" in content_type:
        return "bounce (delivery status report)"
    if _BOUNCE_SENDER.match(from_addr or ""):
        return f"bounce (from {from_addr})"
    if first("Return-Path") == "<>" and _BOUNCE_SUBJECT.match(subject):
        return "bounce (empty return path)"
    if _AUTO_SUBJECT.match(subject):
        return "auto-reply (subject)"
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


def _date(value: str) -> datetime | None:
    """The Date header as UTC, or None when it is missing or garbage (not an error)."""
    if not value:
        return None
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:  # "-0000": the zone is unknown; UTC is the documented reading
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
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


def parse(data: bytes) -> ParsedMail:
    """Parse one message. Never raises; ``problem`` says why nothing usable came out of it."""
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
    out.date = _date(raw_header("Date"))
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
