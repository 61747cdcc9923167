"""The data model every stage shares.

Everything here is frozen and typed; stages hand these objects to each other and never mutate
them. Timestamps are timezone-aware UTC: ``utc()`` refuses naive datetimes so a local time can
never slip into storage. This module imports nothing from the rest of the package.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

RAW_MAX_BYTES = 16_384
"""Largest ``raw`` payload kept per item, as serialised JSON. Larger payloads are truncated."""

TEXT_MAX_CHARS = 100_000
"""Longest text kept per item; longer text is cut and the item says so in ``raw``."""


class Channel(enum.StrEnum):
    CHAT = "chat"
    SOCIAL = "social"
    EMAIL = "email"
    REVIEW = "review"
    FORUM = "forum"


class Sentiment(enum.StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Urgency(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class Status(enum.StrEnum):
    """Where an item is in the triage workflow."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    RESPONDED = "responded"
    RESOLVED = "resolved"
    IGNORED = "ignored"

    @property
    def is_open(self) -> bool:
        return self in (Status.NEW, Status.ACKNOWLEDGED)


class Flag(enum.StrEnum):
    """Why an item is in the triage queue. Computed, never stored by hand."""

    NEGATIVE = "negative"
    COMPLAINT = "complaint"
    URGENT = "urgent"
    AT_RISK = "at_risk"
    OVERDUE = "overdue"


def utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; a naive datetime is a programming error, not a guess."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value.isoformat()} (every timestamp must carry a zone)")
    return value.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


def cap_raw(raw: Mapping[str, Any] | None, limit: int = RAW_MAX_BYTES) -> dict[str, Any]:
    """Keep ``raw`` JSON-serialisable and at most ``limit`` bytes.

    Values that JSON cannot represent become strings. An oversized payload is replaced by its
    head plus a note, so the store never grows without bound from one huge record.
    """
    if not raw:
        return {}
    text = json.dumps(raw, default=str, ensure_ascii=False, sort_keys=True)
    data = text.encode("utf-8")
    if len(data) <= limit:
        parsed: dict[str, Any] = json.loads(text)
        return parsed
    head = data[: limit - 200].decode("utf-8", errors="ignore")
    return {"_truncated": True, "_original_bytes": len(data), "_head": head}


@dataclass(frozen=True, slots=True)
class Item:
    """One thing a customer (or the brand) said somewhere."""

    source: str
    channel: Channel
    external_id: str
    text: str
    created_at: datetime
    platform: str = ""
    brand: str | None = None
    thread_id: str | None = None
    parent_id: str | None = None
    author: str | None = None
    author_is_brand: bool = False
    url: str | None = None
    title: str | None = None
    language: str | None = None
    collected_at: datetime = field(default_factory=now_utc)
    raw: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError("item has no source")
        if not self.external_id:
            raise ValueError("item has no external_id")
        object.__setattr__(self, "channel", Channel(self.channel))
        object.__setattr__(self, "created_at", utc(self.created_at))
        object.__setattr__(self, "collected_at", utc(self.collected_at))
        if len(self.text) > TEXT_MAX_CHARS:
            raw = dict(self.raw)
            raw["_text_truncated_from"] = len(self.text)
            object.__setattr__(self, "text", self.text[:TEXT_MAX_CHARS])
            object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "raw", cap_raw(self.raw))

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.external_id)

    @property
    def content_hash(self) -> str:
        """Changes when what a classifier sees changes (an edited post is classified again)."""
        h = hashlib.sha256()
        h.update((self.title or "").encode("utf-8"))
        h.update(b"\x00")
        h.update(self.text.encode("utf-8"))
        return h.hexdigest()[:32]


_RATED_TITLE = re.compile(r"\[([1-5])/5\] ?")


def rated_title(rating: int, title: str) -> str:
    """``[2/5] Crashes on launch``: a review's star rating where people and filters look first
    (the review collectors' titles)."""
    return f"[{rating}/5] {title}".strip()


def review_rating(item: Item) -> tuple[int | None, str | None]:
    """A review's star rating and its title without the :func:`rated_title` marker; ``(None,
    title)`` for any other item or a review without a rating."""
    if item.channel is Channel.REVIEW and item.title:
        m = _RATED_TITLE.match(item.title)
        if m is not None:
            return int(m.group(1)), item.title[m.end() :] or None
    return None, item.title


def analysis_text(item: Item) -> str:
    """What a classifier reads of ``item``: the title (without a review's rating marker, which
    the encoder read as noise: "[2/5] Update" turned a negative complaint neutral) above the
    text, unless the text already starts with it (review collectors put the title in the text).
    """
    _rating, title = review_rating(item)
    if not title or item.text.startswith(title):
        return item.text
    return f"{title}\n{item.text}"


@dataclass(frozen=True, slots=True)
class Entity:
    label: str
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Classification:
    """What one model version said about one item."""

    model_version: str
    sentiment: Sentiment
    sentiment_scores: Mapping[str, float]
    is_complaint: bool
    complaint_score: float
    urgency: Urgency
    topics: Mapping[str, float] = field(default_factory=dict)
    entities: Sequence[Entity] = ()
    language: str | None = None
    language_supported: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "sentiment", Sentiment(self.sentiment))
        object.__setattr__(self, "urgency", Urgency(self.urgency))


@dataclass(frozen=True, slots=True)
class SlaState:
    """The response-time promise for one item."""

    policy: str
    target_seconds: int
    started_at: datetime
    due_at: datetime
    at_risk_at: datetime
    status: Status = Status.NEW
    first_response_at: datetime | None = None

    def breached(self, at: datetime | None = None) -> bool:
        """Missed: answered late, or still open after the due time."""
        if self.first_response_at is not None:
            return self.first_response_at > self.due_at
        if not self.status.is_open:
            return False
        return (at or now_utc()) > self.due_at

    def at_risk(self, at: datetime | None = None) -> bool:
        moment = at or now_utc()
        return (
            self.status.is_open
            and self.first_response_at is None
            and self.at_risk_at <= moment <= self.due_at
        )


@dataclass(frozen=True, slots=True)
class BadInputRecord:
    """A record a collector could not turn into an item: kept, explained, never fatal."""

    source: str
    reason: str
    location: str
    raw_sha256: str
    excerpt: str = ""

    @classmethod
    def from_raw(cls, source: str, reason: str, location: str, raw: bytes | str) -> BadInputRecord:
        data = raw.encode("utf-8", errors="surrogateescape") if isinstance(raw, str) else raw
        excerpt = data[:500].decode("utf-8", errors="replace")
        return cls(
            source=source,
            reason=reason,
            location=location,
            raw_sha256=hashlib.sha256(data).hexdigest(),
            excerpt=excerpt,
        )


Cursor = Mapping[str, Any]
"""Where a source left off (ETag, byte offset, last UID...). JSON-serialisable."""


@dataclass(frozen=True, slots=True)
class Batch:
    """One unit of collection: the runner stores it and only then advances the cursor."""

    items: Sequence[Item] = ()
    bad: Sequence[BadInputRecord] = ()
    cursor: Cursor | None = None


@dataclass(frozen=True, slots=True)
class ProcessedItem:
    """An item after normalisation, classification and SLA: what the store writes."""

    item: Item
    classification: Classification | None
    sla: SlaState | None
    fingerprint: str
    duplicate_of: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class AwaitingItem:
    """A stored customer item whose reply has not been seen yet (for reply polling)."""

    external_id: str
    thread_id: str | None
    url: str | None
    created_at: datetime
    due_at: datetime
