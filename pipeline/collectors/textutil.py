"""Text from the outside world: bytes in a charset nobody got right, and HTML nobody asked for.

One implementation shared by every collector that meets these (feeds, app-store reviews,
e-mail), so a fix to how a mislabeled charset or a ``<br>`` is read applies everywhere.

**Charsets** (:func:`decode_bytes`). Labels lie more often than bytes do. The order is:

1. a byte-order mark: unambiguous, it wins over any label;
2. a declared UTF-16/UTF-32 when the bytes really have NULs in them;
3. pure ASCII is ASCII, whatever the label (except 7-bit ISO-2022 and UTF-7, which need decoding);
4. strict UTF-8, unless a multi-byte legacy charset (Shift-JIS, GB18030, Big5, EUC-KR ...) is
   declared: text in a single-byte charset is almost never valid UTF-8, so valid UTF-8 non-ASCII
   text under a ``latin-1`` label (the commonest misconfiguration on the web and in mail) is
   UTF-8, and that is *not* counted as a fallback. Short CJK strings, on the other hand, are
   valid UTF-8 by accident often enough that a multi-byte label is trusted first;
5. the declared charset; a multi-byte one with a few broken bytes is kept with U+FFFD;
6. other charsets the document mentions (``hints``: an XML declaration, a sibling MIME part);
7. windows-1252, reading any byte (the five bytes it leaves undefined become the C1 controls
   of the same value, as browsers do).

Labels are read as the WHATWG encoding standard does: ``latin-1``/``ascii`` mean windows-1252,
``gb2312``/``gbk`` mean GB18030, ``shift_jis`` means cp932 ... (their supersets in practice).

**HTML** (:func:`html_to_text`): readable text, never markup: script, style, the head and other
non-content dropped, block elements as line breaks with a blank line between paragraphs, list
items as ``- `` lines, table cells side by side, entities decoded, ``&nbsp;`` as a space,
whitespace collapsed. Optionally the containers mail clients put quoted history in are dropped.
"""

from __future__ import annotations

import codecs
import html
import html.parser
import re

__all__ = ["codec_for", "decode_bytes", "html_to_text", "sniff_bom"]

# --- charsets ------------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Labels that Python does not know, or that are a superset in practice (WHATWG makes the same
# choices for the web; mail clients label the same way).
_ALIASES = {
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
# After codecs.lookup(): names of what is really windows-1252 on the wire.
_AS_CP1252 = frozenset({"latin_1", "iso8859-1", "ascii"})
_NOT_A_CHARSET = frozenset({"unknown-8bit", "x-unknown", "unknown", "x-user-defined", "default"})
# Multi-byte legacy encodings: their label is trusted before UTF-8, and a few undecodable bytes
# there mean damage, not a wrong label.
_MULTIBYTE = frozenset(
    {
        *("cp932", "shift_jis", "shift_jis_2004", "shift_jisx0213", "euc_jp", "euc_jis_2004"),
        *("iso2022_jp", "iso2022_jp_2", "iso2022_kr", "gb18030", "gbk", "gb2312", "hz"),
        *("big5", "big5hkscs", "cp950", "cp949", "euc_kr", "johab"),
    }
)
_SEVEN_BIT = ("iso2022", "utf-7", "hz")  # ASCII bytes that still need decoding
_WIDE = ("utf-16", "utf-32")
_MAX_REPLACEMENT_SHARE = 0.02


def _c1_controls(err: UnicodeError) -> tuple[str, int]:
    """windows-1252's five undefined bytes decode to the C1 control of the same value."""
    if not isinstance(err, UnicodeDecodeError):
        raise err
    return err.object[err.start : err.end].decode("latin-1"), err.end


codecs.register_error("careradar-c1", _c1_controls)


def sniff_bom(data: bytes) -> tuple[str, int] | None:
    """``(codec, BOM length)`` when ``data`` starts with a byte-order mark, else None.

    The codec is the byte-order-specific one (``utf-16-le``), which does *not* strip the BOM:
    slice ``data[length:]`` first, or open files with ``utf-8-sig``/``utf-16``/``utf-32``.
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom)
    return None


def codec_for(label: str | None) -> str | None:
    """Python's codec name for a charset label (MIME, HTTP, XML), None if unknown or no charset.

    Read the WHATWG way: ``iso-8859-1``/``latin1``/``us-ascii`` give ``cp1252``, ``gb2312``
    gives ``gb18030``, ``shift_jis`` gives ``cp932``.
    """
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if not name or name in _NOT_A_CHARSET:
        return None
    name = _ALIASES.get(name, name)
    try:
        found = codecs.lookup(name).name
    except LookupError:
        return None
    return "cp1252" if found in _AS_CP1252 else found


def _wide(codec: str, data: bytes) -> str:
    """A BOM-less UTF-16/32 label made byte-order specific from where the NULs are."""
    if codec not in ("utf-16", "utf-32"):
        return codec
    unit = 2 if codec == "utf-16" else 4
    big = data[:1] == b"\0" and data[unit - 1 : unit] != b"\0"
    return f"{codec}-{'be' if big else 'le'}"


def decode_bytes(
    data: bytes, declared: str | None, *, hints: tuple[str, ...] | list[str] = ()
) -> tuple[str, str, bool]:
    """``(text, codec used, fell_back)`` for ``data`` labelled ``declared`` (see module doc).

    ``fell_back`` is True when the result is a guess: the bytes did not decode as declared (or
    as UTF-8 / a BOM / ASCII) and a hinted charset or windows-1252 was used, or a multi-byte
    text had broken bytes replaced. Callers record it as a data problem; UTF-8 under a wrong
    single-byte label is not one. Never raises.
    """
    bom = sniff_bom(data)
    if bom is not None:
        name, size = bom
        return data[size:].decode(name, "replace"), name, False
    codec = codec_for(declared)
    has_nul = b"\0" in data[:400]
    if codec is not None and codec.startswith(_WIDE):
        if has_nul:
            name = _wide(codec, data)
            try:
                return data.decode(name), name, False
            except UnicodeDecodeError:
                pass
        codec = None  # a wide label over narrow bytes says nothing useful
    if data.isascii() and not (codec or "").startswith(_SEVEN_BIT):
        return data.decode("ascii"), "ascii", False
    if codec not in _MULTIBYTE:
        try:
            return data.decode("utf-8"), "utf-8", False
        except UnicodeDecodeError:
            pass
    if codec is not None and codec != "utf-8":
        try:
            return data.decode(codec), codec, False
        except (UnicodeDecodeError, LookupError):
            pass
        if codec in _MULTIBYTE:
            text = data.decode(codec, errors="replace")
            if text.count("\ufffd") <= max(1, len(text) * _MAX_REPLACEMENT_SHARE):
                return text, codec, True
    for hint in hints:
        hinted = codec_for(hint)
        if hinted is None or hinted in (codec, "utf-8"):
            continue
        if hinted.startswith(_WIDE):
            if not has_nul:
                continue
            hinted = _wide(hinted, data)
        try:
            return data.decode(hinted), hinted, True
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("cp1252", errors="careradar-c1"), "cp1252", True


# --- HTML -> text ------------------------------------------------------------------------------

_SKIP_TAGS = frozenset(
    {"script", "style", "head", "title", "noscript", "template", "svg", "iframe", "object"}
)
_BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "center", "dd", "details", "div", "dl"),
        *("dt", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary"),
        *("table", "tbody", "thead", "tfoot", "tr", "ul"),
    }
)
_LINE_TAGS = frozenset({"li", "dd", "dt"})  # start a line; their end does not add one
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
_CUT_IDS = frozenset({"divrplyfwdmsg", "appendonsend"})  # Outlook: all after it is history
_WS = re.compile(r"\s+")


class _HtmlText(html.parser.HTMLParser):
    """Collects text; block boundaries become ``\\n`` (two in a row make a paragraph break)."""

    def __init__(self, drop_quotes: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.drop_quotes = drop_quotes
        self.out: list[str] = []
        self._skip: list[str] = []  # the dropped element's tag, once per nesting level
        self._pre = 0
        self._cut = False

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
            self._cut = self._cut or ident.lower() in _CUT_IDS
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
            alt = (dict(attrs).get("alt") or "").strip()
            if alt:
                self.out.append(f" {alt} ")
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")
        if tag == "pre":
            self._pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <img/>; a self-closed <script/> or <div class="gmail_quote"/> encloses nothing.
        if self._cut or self._skip or tag in _SKIP_TAGS or self._is_quote(tag, attrs):
            return
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._cut:
            return
        if self._skip:
            if tag == self._skip[0]:
                self._skip.pop()
            return
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in _BLOCK_TAGS and tag not in _LINE_TAGS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip or self._cut:
            return
        self.out.append(data if self._pre else _WS.sub(" ", data))

    def text(self) -> str:
        return _tidy("".join(self.out))


def _tidy(text: str) -> str:
    """Lines stripped and their inner runs of spaces collapsed; at most one blank line."""
    text = text.replace("\xa0", " ").replace("\r\n", "\n").replace("\r", "\n")
    lines = [re.sub(r"[ \t\f\v]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(markup: str, *, drop_quotes: bool = False) -> str:
    """Readable text from HTML (a feed entry, a review, a mail body); never raises.

    With ``drop_quotes`` the containers mail clients put quoted history in are dropped too
    (``blockquote``, Gmail's ``gmail_quote``, Outlook's reply header and all that follows it).
    A string without any tag or entity is taken as plain text: its line breaks are kept.
    """
    if not markup or ("<" not in markup and "&" not in markup):
        return _tidy(markup or "")
    parser = _HtmlText(drop_quotes)
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # html.parser is forgiving; this is the last line of defence
        return _tidy(_WS.sub(" ", re.sub(r"<[^>]*>", " ", html.unescape(markup))))
    return parser.text()
