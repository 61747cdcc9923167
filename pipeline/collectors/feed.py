"""``kind: feed``: RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and JSON Feed 1.0/1.1 as items.

The HTTP is ours (:mod:`pipeline.collectors.http`: conditional GET, size cap, rate limit ...);
feedparser only ever sees bytes we fetched, and JSON Feed, which feedparser does not read, is
parsed here. With keyword rules any search feed (a Mastodon tag, Hacker News, a news-alert
Atom feed, a forum's RSS) becomes brand listening: entries that do not match are skipped,
never stored.

Following feedparser, a broken feed never raises: every entry that parsed is kept and the
feed is recorded once in bad_inputs with feedparser's reason (its "bozo" flag). The cursor
keeps, per URL, the ETag/Last-Modified for conditional GET and a bounded list of hashed entry
ids already yielded, so a re-poll yields only what is new and a 304 yields nothing.

Charsets: feeds often lie about their encoding (an HTTP header says UTF-8 over windows-1252
bytes; an XML declaration and the header disagree). Bytes are decoded here, before feedparser,
by what they are rather than by what they claim: a BOM first, then strict UTF-8 (text in any
other charset is almost never valid UTF-8), then each declared charset, then windows-1252.
The feed is handed to feedparser re-encoded as UTF-8, so no entry is lost to a wrong label.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import urljoin

import feedparser
import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.collectors.base import CollectContext, parse_timestamp
from pipeline.collectors.http import (
    HttpClient,
    HttpResult,
    HttpSource,
    check_http_url,
    combine_failures,
    safe_url,
)
from pipeline.errors import BadInput, CareradarError, TerminalError, TransientError
from pipeline.items import BadInputRecord, Batch, Channel, Cursor, Item
from pipeline.registry import register_collector

log = logging.getLogger(__name__)

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, application/json;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
JSON_FEED_PREFIX = "https://jsonfeed.org/version/"
_ID_MAX = 500  # longer entry ids are replaced by their hash


# --- HTML -> text -----------------------------------------------------------------------------

_BLOCK = frozenset(
    {
        *("address", "article", "aside", "blockquote", "dd", "details", "div", "dl", "dt"),
        *("figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary"),
        *("table", "tbody", "thead", "tfoot", "tr", "ul"),
    }
)
_LINE = frozenset({"li", "tr", "dt", "dd"})  # a line of its own, not a paragraph
_SKIP = frozenset({"script", "style", "noscript", "template", "head", "iframe", "svg", "object"})
_WS = re.compile(r"\s+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK:
            self.parts.append("\n" if tag in _LINE else "\n\n")
            self._pre += tag == "pre"
        elif tag == "img" and not self._skip:
            alt = dict(attrs).get("alt")
            if alt and alt.strip():
                self.parts.append(f" {alt.strip()} ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIP:  # <br/>, <img/>; a self-closed <script/> opens nothing
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK:
            self.parts.append("" if tag in _LINE else "\n\n")  # the next <li> breaks the line
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.parts.append(data if self._pre else _WS.sub(" ", data))


def html_to_text(html: str) -> str:
    """Readable text from an HTML fragment: tags stripped, entities decoded, script and style
    dropped, paragraphs and line breaks kept as blank lines and newlines.

    Never raises: a fragment the parser chokes on is returned with its tags removed crudely.
    """
    if not html or ("<" not in html and "&" not in html):
        return (html or "").strip()
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # HTMLParser is lenient; this is the last line of defence
        text = re.sub(r"<[^>]*>", " ", html)
    text = re.sub(r"[ \t\f\v]*\n[ \t\f\v]*", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


# --- keyword rules ------------------------------------------------------------------------------

# Scripts written without spaces between words: a keyword in them matches inside a run of text,
# and next to them a Latin keyword needs no boundary ("用Acme手机" contains "acme").
_NO_SPACE = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3100-\u312f\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_WORDCHAR = f"[^\\W{_NO_SPACE}]"


def _fold(text: str) -> str:
    """Compatibility-normalised, case-folded: 'ＡＣＭＥ', 'Acme' and 'ACME' compare equal."""
    return unicodedata.normalize("NFKC", text).casefold()


def _term_pattern(term: str) -> str:
    t = _fold(term).strip()
    if len(t) >= 2 and t[0] in "\"'\u201c\u2018" and t[-1] in "\"'\u201d\u2019":
        t = t[1:-1].strip()
    prefix = t.endswith("*")
    t = t.rstrip("*").strip()
    if not t:
        raise ValueError(f"keyword '{term}' is empty")
    body = r"\s+".join(re.escape(word) for word in t.split())
    start = f"(?<!{_WORDCHAR})" if re.match(_WORDCHAR, t[0]) else ""
    end = f"(?!{_WORDCHAR})" if re.match(_WORDCHAR, t[-1]) and not prefix else ""
    return start + body + end


class KeywordRules(BaseModel):
    """Which entries to keep. Terms are case-insensitive whole words or phrases ("battery
    drain"; quotes optional), ``refund*`` matches a prefix, and CJK terms match inside text
    written without spaces. Include: at least one must match (when any are given). Exclude: none
    may match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _plain_list(cls, data: Any) -> Any:
        return {"include": data} if isinstance(data, list) else data

    @field_validator("include", "exclude")
    @classmethod
    def _compilable(cls, v: list[str]) -> list[str]:
        for term in v:
            _term_pattern(term)
        return v


class KeywordMatcher:
    """:class:`KeywordRules` compiled once; ``matches(text)`` is what the collector asks."""

    def __init__(self, rules: KeywordRules) -> None:
        self._include = self._compile(rules.include)
        self._exclude = self._compile(rules.exclude)

    @staticmethod
    def _compile(terms: Sequence[str]) -> re.Pattern[str] | None:
        if not terms:
            return None
        return re.compile("|".join(f"(?:{_term_pattern(t)})" for t in terms))

    def why_skipped(self, text: str) -> str | None:
        """None when the text is kept; otherwise which rule dropped it."""
        folded = _fold(text)
        if self._include is not None and not self._include.search(folded):
            return "no include keyword"
        if self._exclude is not None:
            m = self._exclude.search(folded)
            if m:
                return f"exclude keyword '{m.group(0)}'"
        return None


# --- config ---------------------------------------------------------------------------------------


class FeedSource(HttpSource):
    kind: Literal["feed"] = "feed"
    channel: Literal["chat", "social", "email", "review", "forum"] | None = "social"
    url: str | None = Field(default=None, description="the feed's URL")
    urls: list[str] = Field(default_factory=list, description="several feeds in one source")
    keywords: KeywordRules = Field(default_factory=KeywordRules)
    seen_max: int = Field(
        default=1_000, ge=10, le=100_000, description="entry ids remembered per feed"
    )

    @model_validator(mode="after")
    def _some_url(self) -> FeedSource:
        if not self.url and not self.urls:
            raise ValueError("give 'url' (or a list 'urls') with the feed address")
        for u in self.all_urls():
            check_http_url(u)
        return self

    def all_urls(self) -> list[str]:
        out = ([self.url] if self.url else []) + list(self.urls)
        return list(dict.fromkeys(out))


# --- charsets -------------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
_WIDE = ("utf-16", "utf-32")


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        found = codecs.lookup(name).name
    except LookupError:
        return None
    # WHATWG: a page labelled latin-1 or ascii is decoded as windows-1252 (its superset).
    return "cp1252" if found in ("latin_1", "iso8859-1", "ascii") else found


def decode_feed(content: bytes, http_charset: str | None) -> tuple[str, str, str | None]:
    """Text of a feed, the codec used, and a note when the labels were wrong (else None).

    Order: a BOM; UTF-16/32 when declared and the bytes have NULs; strict UTF-8; each declared
    charset; windows-1252; latin-1 (which cannot fail).
    """
    for bom, name in _BOMS:
        if content.startswith(bom):
            return content[len(bom) :].decode(name, "replace"), name, None
    m = _XML_DECL.match(content[:400])
    found = (http_charset, m.group(1).decode("ascii") if m else None)
    labels = list(dict.fromkeys(c.lower() for c in found if c))
    declared = [c for c in (_codec(x) for x in labels) if c]
    wide = [c for c in declared if c.startswith(_WIDE)] if b"\0" in content[:400] else []
    narrow = [c for c in declared if not c.startswith(_WIDE)]
    for name in dict.fromkeys([*wide, "utf-8", *narrow, "cp1252", "latin-1"]):
        try:
            text = content.decode(name)
        except UnicodeDecodeError:
            continue
        if content.isascii() and not wide:
            return text, name, None
        if all(c == name for c in declared):
            return text, name, None
        said = " and ".join(f"'{x}'" for x in labels)
        return text, name, f"declared {said} but the bytes are {name}; decoded as {name}"
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def _as_utf8_xml(text: str) -> bytes:
    """The decoded feed as UTF-8 bytes whose XML declaration says so."""
    text = re.sub(
        r"^(\s*<\?xml[^>]*?encoding\s*=\s*)[\"'][^\"']*[\"']", r'\1"utf-8"', text, count=1
    )
    return text.encode("utf-8", "surrogatepass")


# --- one entry, whatever the format ------------------------------------------------------------


@dataclass
class _Entry:
    id: str | None
    link: str | None
    title: str
    body: str
    author: str | None
    published: datetime | None
    updated: datetime | None
    date_raw: str | None
    tags: list[str] = field(default_factory=list)
    language: str | None = None


def _struct_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        year, month, day, hour, minute, second = (int(v) for v in value[:6])
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _detail_text(detail: Mapping[str, Any] | None, value: str | None) -> str:
    """Plain text from a feedparser text construct (HTML is converted, plain text kept)."""
    if not value:
        return ""
    kind = str((detail or {}).get("type") or "text/html")
    return html_to_text(value) if "html" in kind else value.strip()


def _from_feedparser(entry: Mapping[str, Any]) -> _Entry:
    # Plain dict access: FeedParserDict maps a missing updated* to published* with a warning.
    e = dict(entry)
    body = ""
    for content in e.get("content") or []:
        text = _detail_text(content, content.get("value"))
        if len(text) > len(body):
            body = text
    if not body:
        body = _detail_text(e.get("summary_detail"), e.get("summary"))
    # author_detail.name: "Mia K." rather than RSS's "mia@example.net (Mia K.)".
    author = (e.get("author_detail") or {}).get("name") or e.get("author")
    tags = [str(t.get("term")) for t in e.get("tags") or [] if t.get("term")]
    return _Entry(
        id=(str(e["id"]).strip() or None) if e.get("id") else None,
        link=e.get("link") or None,
        title=_detail_text(e.get("title_detail"), e.get("title")),
        body=body,
        author=str(author) if author else None,
        published=_struct_time(e.get("published_parsed")),
        updated=_struct_time(e.get("updated_parsed")),
        date_raw=e.get("published") or e.get("updated") or e.get("created"),
        tags=tags,
        language=(e.get("title_detail") or {}).get("language"),
    )


def _json_date(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value, what="date")
    except BadInput:
        return None


def _from_json_feed(it: Mapping[str, Any]) -> _Entry:
    if it.get("content_html"):
        body = html_to_text(str(it["content_html"]))
    else:
        body = str(it.get("content_text") or "").strip()
    if not body and it.get("summary"):
        body = str(it["summary"]).strip()
    authors = it.get("authors") or ([it["author"]] if isinstance(it.get("author"), dict) else [])
    names = [str(a["name"]) for a in authors if isinstance(a, dict) and a.get("name")]
    tags = [str(t) for t in it.get("tags") or [] if isinstance(t, str | int)]
    raw_id = it.get("id")
    return _Entry(
        id=str(raw_id).strip() or None if raw_id is not None else None,
        link=str(it.get("url") or it.get("external_url") or "") or None,
        title=str(it.get("title") or "").strip(),
        body=body,
        author=", ".join(names) or None,
        published=_json_date(it.get("date_published")),
        updated=_json_date(it.get("date_modified")),
        date_raw=str(it.get("date_published") or it.get("date_modified") or "") or None,
        tags=tags,
        language=str(it["language"]) if it.get("language") else None,
    )


def entry_identity(entry: _Entry) -> str:
    """id -> link -> sha256 of title and date (of the text when there is neither)."""
    if entry.id:
        key = entry.id
    elif entry.link:
        key = entry.link
    else:
        basis = entry.title + "\x00" + (entry.date_raw or "")
        if not entry.title and not entry.date_raw:
            basis = entry.body
        if not basis.strip():
            raise BadInput("entry has no id, link, title, date or text to identify it")
        return "sha256:" + hashlib.sha256(basis.encode("utf-8")).hexdigest()
    if len(key) > _ID_MAX:
        return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()
    return key


def _seen_key(entry_id: str) -> str:
    return hashlib.sha256(entry_id.encode("utf-8")).hexdigest()[:16]


def _url_key(url: str) -> str:
    """Cursor key for a feed URL: a hash, so a token in its query is never stored."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


# --- the collector ------------------------------------------------------------------------------


@dataclass
class _Parsed:
    entries: list[tuple[str, Mapping[str, Any] | _Entry]]  # (location, entry or raw JSON item)
    title: str
    version: str
    bad: list[BadInputRecord]


@register_collector("feed", config=FeedSource)
class FeedCollector:
    """One source, one or more feed URLs."""

    def __init__(
        self, cfg: FeedSource, ctx: CollectContext, *, http: HttpClient | None = None
    ) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.name = cfg.name
        self.channel = Channel(cfg.channel or Channel.SOCIAL)
        self.keywords = KeywordMatcher(cfg.keywords)
        self._http = http

    def collect(self, cursor: Cursor | None) -> Iterator[Batch]:
        feeds: dict[str, dict[str, Any]] = {
            k: dict(v) for k, v in dict((cursor or {}).get("feeds", {})).items()
        }
        client = self._http or HttpClient.for_source(self.cfg)
        failures: list[CareradarError] = []
        try:
            for url in self.cfg.all_urls():
                try:
                    yield from self._one_feed(client, url, feeds)
                except (TransientError, TerminalError) as e:
                    # One broken feed must not starve the others; the run still fails below.
                    failures.append(e)
        finally:
            if self._http is None:
                client.close()
        if failures:
            raise combine_failures(failures, len(self.cfg.all_urls()), what="feeds")

    def _one_feed(
        self, client: HttpClient, url: str, feeds: dict[str, dict[str, Any]]
    ) -> Iterator[Batch]:
        key = _url_key(url)
        state = dict(feeds.get(key) or {"url": safe_url(url)})
        result = client.get(
            url,
            etag=state.get("etag"),
            last_modified=state.get("last_modified"),
            accept=ACCEPT,
            what=f"source '{self.name}'",
        )
        if result.not_modified:
            log.debug("%s: %s not modified", self.name, safe_url(url))
            return
        # A server without validators sends the same bytes again: treat it as a 304 too, so
        # an ill-formed feed is reported once per version, not once per poll.
        digest = hashlib.sha256(result.content).hexdigest()[:16]
        if digest == state.get("content"):
            log.debug("%s: %s unchanged", self.name, safe_url(url))
            return
        parsed = self._parse(result)
        seen: list[str] = list(state.get("seen") or [])
        seen_set = set(seen)
        items: list[Item] = []
        bad = list(parsed.bad)
        for where, raw_entry in parsed.entries:
            try:
                entry = raw_entry if isinstance(raw_entry, _Entry) else _from_json_feed(raw_entry)
                entry_id = entry_identity(entry)
            except BadInput as e:
                bad.append(self._bad(e.reason, where, raw_entry))
                continue
            except (TypeError, ValueError, AttributeError) as e:
                bad.append(self._bad(f"entry cannot be read: {e}", where, raw_entry))
                continue
            marker = _seen_key(entry_id)
            if marker in seen_set:
                continue
            seen.append(marker)
            seen_set.add(marker)
            item = self._item(entry, entry_id, result, parsed, where, bad)
            if item is None:
                continue
            items.append(item)
            if len(items) + len(bad) >= self.cfg.batch_size:
                state["seen"] = seen[-self._keep(len(parsed.entries)) :]
                feeds[key] = dict(state)
                yield Batch(items=items, bad=bad, cursor={"feeds": _copy(feeds)})
                items, bad = [], []
        state.update(
            url=safe_url(url),
            etag=result.etag or state.get("etag"),
            last_modified=result.last_modified or state.get("last_modified"),
            seen=seen[-self._keep(len(parsed.entries)) :],
            content=digest,
        )
        feeds[key] = state
        yield Batch(items=items, bad=bad, cursor={"feeds": _copy(feeds)})

    def _keep(self, entries: int) -> int:
        # Never forget ids still in the feed: a feed longer than seen_max would re-yield.
        return max(self.cfg.seen_max, 2 * entries)

    def _bad(self, reason: str, where: str, raw: Any) -> BadInputRecord:
        if isinstance(raw, _Entry):
            raw = raw.__dict__
        text = json.dumps(raw, default=str, ensure_ascii=False, sort_keys=True)
        return BadInputRecord.from_raw(self.name, reason, where, text)

    # -- parsing ------------------------------------------------------------------------------

    def _parse(self, result: HttpResult) -> _Parsed:
        where = safe_url(result.url)
        head = result.content[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
        if result.media_type in ("application/feed+json", "application/json") or head[:1] == b"{":
            return self._parse_json(result, where)
        text, codec, note = decode_feed(result.content, result.charset)
        media = result.media_type
        if not any(x in media for x in ("xml", "rss", "atom", "rdf")):
            media = "application/xml"  # a feed served as text/html or text/plain is still XML
        # No content-location: feedparser would resolve a relative RSS guid against the feed
        # URL, making the entry's identity depend on where the feed is served from.
        headers = {"content-type": f"{media}; charset=utf-8"}
        d = feedparser.parse(_as_utf8_xml(text), response_headers=headers)
        entries: list[tuple[str, Mapping[str, Any] | _Entry]] = []
        bad: list[BadInputRecord] = []
        for n, e in enumerate(d.entries):
            try:
                entries.append((f"{where} entry {n + 1}", _from_feedparser(e)))
            except (TypeError, ValueError, AttributeError, KeyError) as exc:
                bad.append(self._bad(f"entry cannot be read: {exc}", f"{where} entry {n + 1}", {}))
        reasons = [note] if note else []
        if d.get("bozo"):
            problem = d.get("bozo_exception")
            reasons.append(f"{type(problem).__name__}: {problem}" if problem else "ill-formed")
        if not entries and not d.get("version"):
            # Parsed without complaint yet no RSS/Atom in sight: an HTML page, a login wall.
            said = f" ({'; '.join(reasons)})" if reasons else ""
            reason = f"not a feed: no RSS or Atom document found{said}"
        elif reasons:
            reason = f"ill-formed feed ({'; '.join(reasons)}); kept {len(entries)} entries"
        else:
            reason = ""
        if reason:
            bad.append(BadInputRecord.from_raw(self.name, reason, where, result.content))
            log.info("%s: %s at %s", self.name, reason, where)
        title = _detail_text(d.feed.get("title_detail"), d.feed.get("title"))
        return _Parsed(entries, title, str(d.get("version") or "") or f"xml-{codec}", bad)

    def _parse_json(self, result: HttpResult, where: str) -> _Parsed:
        text, _codec_name, note = decode_feed(result.content, result.charset or "utf-8")
        bad: list[BadInputRecord] = []
        try:
            doc = json.loads(text)
        except ValueError as e:
            bad.append(
                BadInputRecord.from_raw(self.name, f"not valid JSON: {e}", where, result.content)
            )
            return _Parsed([], "", "json", bad)
        version = doc.get("version") if isinstance(doc, dict) else None
        if not isinstance(version, str) or not version.startswith(JSON_FEED_PREFIX):
            reason = f"JSON but not a JSON Feed (no '{JSON_FEED_PREFIX}...' version)"
            bad.append(BadInputRecord.from_raw(self.name, reason, where, result.content))
            return _Parsed([], "", "json", bad)
        if note:
            bad.append(
                BadInputRecord.from_raw(
                    self.name, f"ill-formed feed ({note})", where, result.content
                )
            )
        raw_items = doc.get("items")
        if not isinstance(raw_items, list):
            reason = "JSON Feed without an 'items' list"
            bad.append(BadInputRecord.from_raw(self.name, reason, where, result.content))
            raw_items = []
        entries: list[tuple[str, Mapping[str, Any] | _Entry]] = []
        for n, it in enumerate(raw_items):
            loc = f"{where} items[{n}]"
            if isinstance(it, dict):
                entries.append((loc, it))
            else:
                bad.append(self._bad(f"expected an object, got {type(it).__name__}", loc, it))
        tag = "json" + version.removeprefix(JSON_FEED_PREFIX)
        return _Parsed(entries, str(doc.get("title") or ""), tag, bad)

    # -- one entry -> one item ----------------------------------------------------------------

    def _item(
        self,
        entry: _Entry,
        entry_id: str,
        result: HttpResult,
        parsed: _Parsed,
        where: str,
        bad: list[BadInputRecord],
    ) -> Item | None:
        text = entry.body or entry.title
        if not text:
            bad.append(self._bad("entry has neither text nor a title", where, entry))
            return None
        skipped = self.keywords.why_skipped(f"{entry.title}\n{entry.body}")
        if skipped is not None:
            log.debug("%s: skipped %s (%s)", self.name, where, skipped)
            return None
        collected = self.ctx.clock()
        raw: dict[str, Any] = {
            "feed_url": safe_url(result.url),
            "feed_title": parsed.title or None,
            "format": parsed.version,
            "entry_id": entry_id,
        }
        if entry.tags:
            raw["tags"] = entry.tags[:50]
        created = entry.published or entry.updated
        raw["created_at_from"] = (
            "published" if entry.published else "updated" if entry.updated else "collected"
        )
        if created is None:
            created = collected
            if entry.date_raw:
                raw["date_unparsed"] = entry.date_raw[:100]
        try:
            return Item(
                source=self.name,
                channel=self.channel,
                external_id=entry_id,
                text=text,
                title=entry.title or None,
                created_at=created,
                platform=self.cfg.platform or _host(result.url),
                brand=self.cfg.brand,
                author=entry.author,
                url=urljoin(result.url, entry.link) if entry.link else None,
                language=entry.language,
                collected_at=collected,
                raw=raw,
            )
        except (TypeError, ValueError) as e:
            bad.append(self._bad(f"entry cannot be stored: {e}", where, entry))
            return None


def _host(url: str) -> str:
    try:
        host = httpx.URL(url).host.lower()
    except (httpx.InvalidURL, TypeError):
        return "feed"
    return host.removeprefix("www.") or "feed"


def _copy(feeds: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in feeds.items()}
