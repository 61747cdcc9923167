"""``kind: feed``: RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and JSON Feed 1.0/1.1 as items.

The HTTP is ours (:mod:`pipeline.collectors.http`: conditional GET, size cap, rate limit ...);
feedparser only ever sees bytes we fetched, and JSON Feed, which feedparser does not read, is
parsed here. With keyword rules any search feed (a Mastodon tag, Hacker News, a news-alert
Atom feed, a forum's RSS) becomes brand listening: entries that do not match are skipped,
never stored.

Following feedparser, a broken feed never raises: every entry that parsed is kept and the
feed is recorded in bad_inputs with feedparser's reason (its "bozo" flag). The cursor keeps,
per URL, the ETag/Last-Modified for conditional GET, a bounded list of hashed entry ids already
yielded, so a re-poll yields only what is new and a 304 yields nothing, and the problems
already reported: a feed that is permanently ill-formed (an ``&nbsp;`` XML does not define) but
rewrites its ``lastBuildDate`` on every poll is reported once, not on every run, until its
problem changes or goes away.

feedparser only ever gets a file object (``io.BytesIO``): handed bytes or a string it first
tries them as a *file name* (and a string as a URL to fetch), so a response body reading
``/etc/passwd`` would make it read a local file.

Charsets: feeds often lie about their encoding (an HTTP header says UTF-8 over windows-1252
bytes; an XML declaration and the header disagree). Bytes are decoded here, before feedparser,
by what they are rather than by what they claim (:func:`textutil.decode_bytes`: a BOM, strict
UTF-8, the declared charsets, windows-1252). UTF-8 under a latin-1 label, the commonest
misconfiguration, is simply read as UTF-8 and not reported. The feed is handed to feedparser
re-encoded as UTF-8, so no entry is lost to a wrong label.

Item links must be http(s): a ``javascript:`` or ``data:`` link is dropped (the item is kept).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

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
    web_url,
)
from pipeline.collectors.textutil import decode_bytes, html_to_text
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
_REPORTED_MAX = 200  # problems remembered per feed, so each is reported once


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

_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")


def decode_feed(content: bytes, http_charset: str | None) -> tuple[str, str, str | None]:
    """Text of a feed, the codec used, and a note when the labels were wrong (else None).

    The HTTP charset wins over the XML declaration (RFC 7303); the other label is a hint.
    No note when the bytes are what a label says, or valid UTF-8 whatever the labels say.
    """
    m = _XML_DECL.match(content[:400])
    xml_label = m.group(1).decode("ascii") if m else None
    declared = http_charset or xml_label
    hints = (xml_label,) if http_charset and xml_label else ()
    text, codec, fell_back = decode_bytes(content, declared, hints=hints)
    if not fell_back:
        return text, codec, None
    labels = list(dict.fromkeys(c.lower() for c in (http_charset, xml_label) if c))
    said = " and ".join(f"'{x}'" for x in labels) if labels else "no charset (so UTF-8)"
    return text, codec, f"declared {said} but the bytes do not decode as that; read as {codec}"


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


def _problem_key(record: BadInputRecord, feed_where: str) -> str:
    """What makes a problem "the same one again" across versions of a feed.

    A whole-feed problem (ill-formed, wrong charset, not a feed) is its reason with the
    numbers taken out (line/column and "kept N entries" move whenever the feed changes); an
    entry's problem is its reason and the entry's own bytes.
    """
    reason = re.sub(r"\d+", "#", record.reason)
    if record.location == feed_where:
        basis = f"feed\0{reason}"
    else:
        basis = f"entry\0{reason}\0{record.raw_sha256}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]


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
        where_feed = safe_url(result.url)
        before = set(state.get("reported") or [])
        now: list[str] = []  # problems present in this version of the feed

        def fresh(records: list[BadInputRecord]) -> list[BadInputRecord]:
            out = []
            for record in records:
                k = _problem_key(record, where_feed)
                if k in now:
                    continue
                now.append(k)
                if k in before:
                    log.debug("%s: %s already reported", self.name, record.reason)
                else:
                    out.append(record)
            return out

        def reported() -> list[str]:
            keep = [k for k in state.get("reported") or [] if k not in now]
            return [*keep, *now][-_REPORTED_MAX:]

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
                bad = fresh(bad)
                state["seen"] = seen[-self._keep(len(parsed.entries)) :]
                state["reported"] = reported()
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
        bad = fresh(bad)
        # Only what this version of the feed still has: a problem that went away and comes
        # back later is reported again.
        state["reported"] = now[-_REPORTED_MAX:]
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
        # A file object, never bytes or str: feedparser tries those as a file name or URL.
        d = feedparser.parse(io.BytesIO(_as_utf8_xml(text)), response_headers=headers)
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
                url=web_url(entry.link, result.url),
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
