"""What a collector is, and the helpers every collector shares."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.config import AppConfig
from pipeline.errors import BadInput
from pipeline.items import AwaitingItem, Batch, Channel, Cursor, now_utc


class Collector(Protocol):
    """Yields batches; the runner stores each one and only then moves the cursor on.

    A bad record never raises out of ``collect``: it becomes a ``BadInputRecord`` in the batch.
    ``collect`` raises only for the whole source: ``NotConfigured`` (skip it), ``TransientError``
    (retry later) or ``TerminalError`` (unhealthy until someone acts).
    """

    name: str
    channel: Channel

    def collect(self, cursor: Cursor | None) -> Iterator[Batch]: ...


def _nothing_awaiting(since: datetime) -> list[AwaitingItem]:
    return []


@dataclass(frozen=True)
class CollectContext:
    """What the runner hands every collector.

    ``awaiting_response(since)`` lists this source's stored customer items created after
    ``since`` that still wait for a reply (newest first). Collectors that can see replies made
    outside careradar poll those threads and yield the brand's reply as an ordinary item
    (``author_is_brand`` or a configured brand account, ``parent_id``/``thread_id`` pointing at
    the customer item); the store then sets ``first_response_at``.
    """

    app: AppConfig
    clock: Callable[[], datetime] = field(default=now_utc)
    awaiting_response: Callable[[datetime], list[AwaitingItem]] = field(default=_nothing_awaiting)


_TRUE = frozenset({"1", "true", "yes", "y", "t", "on"})
_FALSE = frozenset({"0", "false", "no", "n", "f", "off", ""})


def parse_bool(value: Any, *, what: str = "value") -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadInput(f"{what} '{value}' is not a yes/no value")


def parse_timestamp(value: Any, *, default_tz: str = "UTC", what: str = "created_at") -> datetime:
    """A UTC datetime from ISO-8601, RFC 2822, or epoch seconds/milliseconds.

    A time without a zone is read in ``default_tz`` (the source's configured zone), because
    guessing UTC for a local export silently shifts every SLA clock.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadInput(f"{what} is missing")
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) / 1000 if value > 1e11 else float(value)
        return datetime.fromtimestamp(seconds, UTC)
    else:
        text = str(value).strip()
        if re.fullmatch(r"\d{9,13}(\.\d+)?", text):
            return parse_timestamp(float(text), what=what)
        try:
            dt = datetime.fromisoformat(text.replace(" UTC", "+00:00"))
        except ValueError:
            try:
                dt = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                raise BadInput(f"{what} '{text[:60]}' is not a date and time") from None
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        try:
            dt = dt.replace(tzinfo=ZoneInfo(default_tz))
        except ZoneInfoNotFoundError:
            raise BadInput(f"unknown time zone '{default_tz}'") from None
    return dt.astimezone(UTC)
