"""``kind: reviews``: app-store reviews, from Apple's public feed or from a store's export file.

**Apple App Store.** The public customer-reviews JSON feed
(``{base_url}/{country}/rss/customerreviews/page={n}/id={app_id}/sortby=mostrecent/json``) is
read newest first, page by page (Apple serves at most 10), until a page reaches reviews already
seen. The cursor keeps, per country, the newest review time and a bounded map of review id ->
updated time, so an edited review is read again and an unchanged one is not.

A developer response found in the payload (the ``developerResponse`` object ``{id, body,
modified}`` that Apple's review APIs use; the classic RSS feed usually omits it) becomes a brand
item whose ``parent_id`` is the review id, so the store marks the review responded and sets
``first_response_at``. Because a response is added to an old review without moving it up the
list, paging goes on past the seen reviews while the store still has reviews of this source
waiting for a reply (``ctx.awaiting_response``) that are older than the current page, but
only for a feed that has shown it carries ``developerResponse`` at all (remembered per
country in the cursor). Apple's public feed does not, and paging all ten pages per country on
every run to look for something that is never there would cost ten requests per country per
poll while any review waits.

**A page that is not JSON** (an HTML error page, a truncated body) is recorded in bad_inputs,
so the payload can be inspected, and then fails the country with ``TransientError``. Why not
just skip it as one bad record: the cursor moves to the newest review seen, so skipping page 4
and reading pages 5-10 would step over page 4's reviews for good. These pages are nearly always
a passing server fault, and re-reading is free (upserts are idempotent). Other countries are
still read; the run reports the failure and is retried.

**Export import.** ``path`` (a file or glob) of CSV or JSON exports, e.g. a Google Play Console
reviews CSV (UTF-16 with a BOM), read through the ``kind: file`` collector's machinery with a
column mapping. Review columns (``rating``, ``version``, ``reply_text``, ``reply_created_at``)
are mapped here; a reply becomes a brand item exactly like an App Store developer response.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pipeline.collectors.base import CollectContext, parse_timestamp
from pipeline.collectors.file import CANONICAL, FileCollector, FileSource, ReplayAnchor
from pipeline.collectors.http import (
    HttpClient,
    HttpResult,
    HttpSource,
    check_http_url,
    combine_failures,
    safe_url,
    web_url,
)
from pipeline.collectors.textutil import decode_bytes, sniff_bom
from pipeline.config import Duration, TimeZoneName
from pipeline.errors import BadInput, CareradarError, NotConfigured, TerminalError, TransientError
from pipeline.items import BadInputRecord, Batch, Channel, Cursor, Item, rated_title
from pipeline.registry import register_collector

log = logging.getLogger(__name__)

APPLE_BASE_URL = "https://itunes.apple.com"
APPLE_MAX_PAGES = 10
REVIEW_FIELDS = ("rating", "version", "reply_text", "reply_created_at")
_SEEN_MAX = 500  # review ids remembered per country
_BAD_MAX = 100  # bad entries remembered per country, so they are reported once


class ReviewsSource(HttpSource):
    kind: Literal["reviews"] = "reviews"
    channel: Literal["chat", "social", "email", "review", "forum"] | None = "review"
    # Apple App Store
    app_id: str | None = Field(default=None, description="numeric App Store id (id123456789)")
    countries: list[str] = Field(default_factory=lambda: ["us"], description="storefronts")
    base_url: str = Field(default=APPLE_BASE_URL, description="where the feed is served")
    max_pages: int = Field(default=APPLE_MAX_PAGES, ge=1, le=APPLE_MAX_PAGES)
    response_window: Duration = Field(
        default=30 * 86_400, description="how long to keep looking for developer responses"
    )
    developer_name: str | None = Field(
        default=None, description="author of developer responses (default: brand)"
    )
    # Export import
    path: str | None = Field(default=None, description="export file or glob")
    format: Literal["auto", "csv", "json", "jsonl"] = "auto"
    mapping: dict[str, str] = Field(default_factory=dict)
    encoding: str = Field(default="auto", description="auto: by BOM (UTF-16/UTF-8), else UTF-8")
    timezone: TimeZoneName = "UTC"
    replay_anchor: ReplayAnchor = Field(
        default=None, description="export files: replay mode, as for kind: file"
    )

    @field_validator("app_id")
    @classmethod
    def _numeric(cls, v: str | None) -> str | None:
        if v is None:
            return v
        text = str(v).strip().removeprefix("id")
        if not text.isdigit():
            raise ValueError(f"'{v}' is not an App Store id; use the digits from the app's URL")
        return text

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        return check_http_url(v)

    @field_validator("countries")
    @classmethod
    def _countries(cls, v: list[str]) -> list[str]:
        out = [c.strip().lower() for c in v]
        for c in out:
            if not re.fullmatch(r"[a-z]{2}", c):
                raise ValueError(f"'{c}' is not a two-letter storefront code such as us or gb")
        if not out:
            raise ValueError("give at least one country")
        return list(dict.fromkeys(out))

    @field_validator("mapping")
    @classmethod
    def _fields(cls, v: dict[str, str]) -> dict[str, str]:
        known = (*CANONICAL, *REVIEW_FIELDS)
        unknown = sorted(set(v) - set(known))
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)}; valid fields are: {', '.join(known)}"
            )
        return v

    @model_validator(mode="after")
    def _one_mode(self) -> ReviewsSource:
        if (self.app_id is None) == (self.path is None):
            raise ValueError(
                "give either 'app_id' (App Store reviews) or 'path' (a review export), not both"
            )
        if self.replay_anchor is not None and self.path is None:
            raise ValueError("replay_anchor replays an export file: it needs 'path'")
        return self


# --- App Store payloads -----------------------------------------------------------------------


def _label(value: Any) -> str | None:
    """Apple's JSON wraps every value as ``{"label": ...}``; accept plain values too."""
    if isinstance(value, Mapping):
        value = value.get("label")
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@dataclass(frozen=True)
class _Response:
    id: str | None
    body: str
    at: datetime | None


@dataclass(frozen=True)
class _Review:
    id: str
    updated: datetime
    rating: int
    title: str
    content: str
    author: str | None
    version: str | None
    url: str | None
    votes: tuple[str | None, str | None]
    response: _Response | None


def _rating(value: Any) -> int:
    text = _label(value)
    try:
        rating = int(float(text)) if text is not None else None
    except ValueError:
        rating = None
    if rating is None or not 1 <= rating <= 5:
        raise BadInput(f"rating '{text}' is not 1-5")
    return rating


def _response(entry: Mapping[str, Any]) -> _Response | None:
    raw = entry.get("developerResponse") or entry.get("im:developerResponse")
    if not isinstance(raw, Mapping):
        return None
    body = _label(raw.get("body")) or _label(raw.get("content"))
    if not body:
        return None
    when = _label(raw.get("modified")) or _label(raw.get("updated"))
    at = None
    if when:
        try:
            at = parse_timestamp(when, what="developer response date")
        except BadInput:
            at = None
    return _Response(_label(raw.get("id")), body, at)


def _review(entry: Mapping[str, Any]) -> _Review:
    review_id = _label(entry.get("id"))
    if not review_id:
        raise BadInput("review has no id")
    updated = parse_timestamp(_label(entry.get("updated")), what="updated")
    author = entry.get("author")
    link = entry.get("link")
    href = None
    if isinstance(link, Mapping):
        href = (link.get("attributes") or {}).get("href")
    title = _label(entry.get("title")) or ""
    content = _label(entry.get("content")) or ""
    if not title and not content:
        raise BadInput("review has neither title nor text")
    return _Review(
        id=review_id,
        updated=updated,
        rating=_rating(entry.get("im:rating")),
        title=title,
        content=content,
        author=_label(author.get("name")) if isinstance(author, Mapping) else _label(author),
        version=_label(entry.get("im:version")),
        url=web_url(href),
        votes=(_label(entry.get("im:voteSum")), _label(entry.get("im:voteCount"))),
        response=_response(entry),
    )


class _PageError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _page_entries(result: HttpResult) -> list[Any]:
    """The page's entries; raises _PageError when the page is not the expected JSON."""
    # JSON is UTF-8 (RFC 8259); a BOM (UTF-8 or UTF-16) is honoured, anything else is damage.
    text, codec, fell_back = decode_bytes(result.content, "utf-8")
    try:
        if fell_back:
            raise ValueError(f"the bytes are not UTF-8 (only readable as {codec})")
        doc = json.loads(text)
    except ValueError as e:
        kind = result.media_type or "no content type"
        looks = "an HTML page" if b"<html" in result.content[:2048].lower() else "not JSON"
        raise _PageError(f"page is {looks} ({kind}): {e}") from None
    feed = doc.get("feed") if isinstance(doc, Mapping) else None
    if not isinstance(feed, Mapping):
        raise _PageError("JSON without a 'feed' object: not a customer-reviews page")
    entries = feed.get("entry")
    if entries is None:
        return []
    # A page with exactly one entry carries it as an object, not a one-element list.
    return [entries] if isinstance(entries, Mapping) else list(entries)


# --- the collector -------------------------------------------------------------------------------


@register_collector("reviews", config=ReviewsSource, channel="review")
class ReviewsCollector:
    def __init__(
        self, cfg: ReviewsSource, ctx: CollectContext, *, http: HttpClient | None = None
    ) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.name = cfg.name
        self.channel = Channel(cfg.channel or Channel.REVIEW)
        self._http = http
        self._developer = cfg.developer_name or cfg.brand or "developer"
        self._platform = cfg.platform or ("appstore" if cfg.app_id else "reviews")

    def collect(self, cursor: Cursor | None) -> Iterator[Batch]:
        if self.cfg.path is not None:
            yield from self._collect_export(cursor)
        else:
            yield from self._collect_apple(cursor)

    # -- Apple ------------------------------------------------------------------------------------

    def page_url(self, country: str, page: int) -> str:
        base = self.cfg.base_url.rstrip("/")
        return (
            f"{base}/{country}/rss/customerreviews/page={page}/id={self.cfg.app_id}"
            "/sortby=mostrecent/json"
        )

    def _collect_apple(self, cursor: Cursor | None) -> Iterator[Batch]:
        countries: dict[str, dict[str, Any]] = {
            k: dict(v) for k, v in dict((cursor or {}).get("countries", {})).items()
        }
        since = self.ctx.clock() - timedelta(seconds=self.cfg.response_window)
        awaiting = {a.external_id: a.created_at for a in self.ctx.awaiting_response(since)}
        client = self._http or HttpClient.for_source(self.cfg)
        failures: list[CareradarError] = []
        try:
            for country in self.cfg.countries:
                try:
                    yield from self._country(client, country, countries, awaiting)
                except (TransientError, TerminalError) as e:
                    failures.append(e)  # one storefront's trouble must not starve the others
        finally:
            if self._http is None:
                client.close()
        if failures:
            raise combine_failures(failures, len(self.cfg.countries), what="countries")

    def _country(
        self,
        client: HttpClient,
        country: str,
        countries: dict[str, dict[str, Any]],
        awaiting: Mapping[str, datetime],
    ) -> Iterator[Batch]:
        state = countries.get(country) or {}
        seen: dict[str, str] = dict(state.get("seen") or {})
        # Hashes of entries already reported as bad: paging past them again (to look for
        # developer responses) must not report them on every poll.
        reported: list[str] = list(state.get("bad") or [])
        newest = state.get("newest_updated")
        newest_at = datetime.fromisoformat(newest) if newest else None
        # Has this feed ever carried a developer response? Only then is paging past the seen
        # reviews (for responses to older ones) worth its requests.
        carries_responses = bool(state.get("carries_responses"))
        what = f"source '{self.name}' ({country})"
        for page in range(1, self.cfg.max_pages + 1):
            url = self.page_url(country, page)
            result = client.get(url, accept="application/json", what=what)
            try:
                entries = _page_entries(result)
            except _PageError as e:
                where = f"{safe_url(url)} ({country} page {page})"
                yield Batch(
                    bad=[BadInputRecord.from_raw(self.name, e.reason, where, result.content)]
                )
                raise TransientError(
                    f"{what}: page {page} is unusable: {e.reason}",
                    hint="usually a passing App Store fault; nothing on this country's cursor "
                    "moved, so the next run reads these reviews again",
                ) from None
            if not entries:
                break
            items: list[Item] = []
            bad: list[BadInputRecord] = []
            reached_seen = False
            oldest: datetime | None = None
            for n, entry in enumerate(entries):
                where = f"{safe_url(url)} ({country} page {page} entry {n + 1})"
                if isinstance(entry, Mapping) and "im:rating" not in entry and "im:name" in entry:
                    continue  # the app's own metadata, which page 1 of older feeds starts with
                if isinstance(entry, Mapping) and (
                    "developerResponse" in entry or "im:developerResponse" in entry
                ):
                    carries_responses = True
                try:
                    if not isinstance(entry, Mapping):
                        raise BadInput(f"expected an object, got {type(entry).__name__}")
                    review = _review(entry)
                except BadInput as e:
                    raw = json.dumps(entry, ensure_ascii=False, default=str, sort_keys=True)
                    record = BadInputRecord.from_raw(self.name, e.reason, where, raw)
                    if record.raw_sha256[:16] not in reported:
                        reported.append(record.raw_sha256[:16])
                        bad.append(record)
                    continue
                oldest = review.updated if oldest is None else min(oldest, review.updated)
                stamp = review.updated.isoformat()
                known = seen.get(review.id)
                if known is not None and known >= stamp:
                    reached_seen = True
                    if review.response is not None and review.id in awaiting:
                        items.append(self._response_item(review, country))
                    continue
                if newest_at is not None and review.updated < newest_at:
                    reached_seen = True  # older than anything new: the cursor's territory
                items.append(self._review_item(review, country))
                if review.response is not None:
                    items.append(self._response_item(review, country))
                seen[review.id] = stamp
            # Intermediate pages carry no cursor: if the run stops half-way, the next run
            # starts from the top again instead of skipping what it never read.
            if items or bad:
                yield Batch(items=items, bad=bad)
            if reached_seen and not (carries_responses and _older_awaiting(awaiting, oldest)):
                break
        kept = sorted(seen.items(), key=lambda kv: kv[1])[-_SEEN_MAX:]
        newest = max([*([newest] if newest else []), *(v for _, v in kept)], default=None)
        countries[country] = {
            "newest_updated": newest,
            "seen": dict(kept),
            "bad": reported[-_BAD_MAX:],
            "carries_responses": carries_responses,
        }
        yield Batch(cursor={"countries": {k: dict(v) for k, v in countries.items()}})

    def _review_item(self, review: _Review, country: str) -> Item:
        title = review.title
        text = (
            f"{title}\n\n{review.content}" if title and review.content else title or review.content
        )
        raw: dict[str, Any] = {
            "rating": review.rating,
            "version": review.version,
            "country": country,
            "app_id": self.cfg.app_id,
            "vote_sum": review.votes[0],
            "vote_count": review.votes[1],
        }
        return Item(
            source=self.name,
            channel=self.channel,
            external_id=review.id,
            text=text,
            title=rated_title(review.rating, title),
            created_at=review.updated,
            platform=self._platform,
            brand=self.cfg.brand,
            author=review.author,
            url=review.url,
            collected_at=self.ctx.clock(),
            raw=raw,
        )

    def _response_item(self, review: _Review, country: str) -> Item:
        assert review.response is not None
        response = review.response
        collected = self.ctx.clock()
        return Item(
            source=self.name,
            channel=self.channel,
            external_id=f"response-{response.id}" if response.id else f"{review.id}:response",
            text=response.body,
            created_at=response.at or collected,
            platform=self._platform,
            brand=self.cfg.brand,
            parent_id=review.id,
            author=self._developer,
            author_is_brand=True,
            url=review.url,
            collected_at=collected,
            raw={
                "response_to": review.id,
                "country": country,
                "created_at_from": "response" if response.at else "collected",
            },
        )

    # -- export files ------------------------------------------------------------------------------

    def _collect_export(self, cursor: Cursor | None) -> Iterator[Batch]:
        assert self.cfg.path is not None
        pattern = str(self.ctx.app.resolve_path(self.cfg.path))
        files = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
        if not files:
            raise NotConfigured(
                f"source '{self.name}': no file matches {pattern}",
                hint="check 'path' (relative paths are relative to the config file)",
            )
        latest = cursor
        canonical = {k: v for k, v in self.cfg.mapping.items() if k in CANONICAL}
        for path in files:
            # One file collector per file, so each file gets the encoding its BOM announces.
            # FileCollector keeps every file's entry in the cursor it yields, so handing the
            # latest cursor on keeps them all.
            file_cfg = FileSource(
                name=self.name,
                kind="file",
                channel=self.channel.value,
                platform=self._platform,
                brand=self.cfg.brand,
                batch_size=self.cfg.batch_size,
                path=glob.escape(str(path.resolve())),
                format=self.cfg.format,
                mapping=canonical,
                encoding=self._encoding(path),
                timezone=self.cfg.timezone,
                replay_anchor=self.cfg.replay_anchor,
            )
            for batch in FileCollector(file_cfg, self.ctx).collect(latest):
                latest = batch.cursor if batch.cursor is not None else latest
                items: list[Item] = []
                bad = list(batch.bad)
                for item in batch.items:
                    items.extend(self._export_items(item, bad))
                yield Batch(items=items, bad=bad, cursor=batch.cursor)

    def _encoding(self, path: Path) -> str:
        if self.cfg.encoding != "auto":
            return self.cfg.encoding
        with path.open("rb") as f:
            bom = sniff_bom(f.read(4))
        if bom is None:
            return "utf-8"
        # Codecs that consume the BOM (Play Console exports: UTF-16 with a BOM).
        return "utf-8-sig" if bom[0] == "utf-8" else bom[0][: -len("-le")]

    def _column(self, field: str) -> str:
        return self.cfg.mapping.get(field, field)

    def _export_items(self, item: Item, bad: list[BadInputRecord]) -> list[Item]:
        """The review with its rating in title and raw, plus the reply as a brand item."""
        raw = dict(item.raw)
        where = f"{self.cfg.path} review {item.external_id}"
        rating: int | None = None
        value = raw.get(self._column("rating"))
        if value not in (None, ""):
            try:
                rating = _rating(value)
            except BadInput as e:
                reason = f"{e.reason}; review kept without a rating"
                bad.append(BadInputRecord.from_raw(self.name, reason, where, json.dumps(raw)))
        version = raw.get(self._column("version"))
        raw["rating"] = rating
        raw["version"] = str(version).strip() or None if version not in (None, "") else None
        title = item.title or ""
        text = item.text
        if title and text and title not in text:
            text = f"{title}\n\n{text}"
        review = dataclasses.replace(
            item,
            text=text or title,
            title=rated_title(rating, title) if rating is not None else item.title,
            raw=raw,
        )
        out = [review]
        reply = raw.get(self._column("reply_text"))
        if isinstance(reply, str) and reply.strip():
            at = item.collected_at
            when = raw.get(self._column("reply_created_at"))
            if when not in (None, ""):
                try:
                    at = parse_timestamp(when, default_tz=self.cfg.timezone, what="reply date")
                except BadInput as e:
                    reason = f"{e.reason}; reply dated at collection time"
                    bad.append(BadInputRecord.from_raw(self.name, reason, where, str(when)))
            out.append(
                Item(
                    source=self.name,
                    channel=item.channel,
                    external_id=f"{item.external_id}:reply",
                    text=reply.strip(),
                    created_at=at,
                    platform=item.platform,
                    brand=item.brand,
                    parent_id=item.external_id,
                    author=self._developer,
                    author_is_brand=True,
                    url=item.url,
                    collected_at=item.collected_at,
                    raw={"response_to": item.external_id},
                )
            )
        return out


def _older_awaiting(awaiting: Mapping[str, datetime], oldest: datetime | None) -> bool:
    """Are reviews still waiting for a reply older than this page? Then they are further down,
    and their developer response can only be seen by paging on."""
    return oldest is not None and any(created < oldest for created in awaiting.values())
