"""Shared fixtures: a migrated ``store`` on SQLite and PostgreSQL, and item factories."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from pipeline.items import (
    Channel,
    Classification,
    Item,
    ProcessedItem,
    Sentiment,
    SlaState,
    Status,
    Urgency,
)
from pipeline.sinks.schema import TABLE_NAMES
from pipeline.sinks.store import Store
from tests.helpers import T0, fresh_postgres_url

ItemFactory = Callable[..., Item]
ProcessedFactory = Callable[..., ProcessedItem]


@pytest.fixture(scope="session")
def postgres_session_url() -> Iterator[str]:
    """One migrated PostgreSQL database per test session (tables are emptied per test)."""
    with fresh_postgres_url() as url:
        Store.open(url, migrate=True).close()
        yield url


def _empty_postgres(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            # Table names are the schema's own constants, not input.
            conn.execute(text(f"TRUNCATE {', '.join(TABLE_NAMES)} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Store]:
    """A migrated, empty store; every test using it runs once per backend."""
    if request.param == "sqlite":
        opened = Store.open(f"sqlite:///{tmp_path / 'careradar.db'}")
    else:
        url = request.getfixturevalue("postgres_session_url")
        _empty_postgres(url)
        opened = Store.open(url, migrate=True)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def item_factory() -> ItemFactory:
    """``item_factory(**overrides) -> Item`` with a unique external_id and created_at per call
    (one second apart from T0), so items are distinct and ordered unless a test says otherwise."""
    counter = itertools.count(1)

    def make(**overrides: Any) -> Item:
        n = next(counter)
        created_at: datetime = overrides.pop("created_at", T0 + timedelta(seconds=n))
        values: dict[str, Any] = {
            "source": "test-source",
            "channel": Channel.SOCIAL,
            "external_id": f"ext-{n}",
            "text": f"customer message number {n}",
            "created_at": created_at,
            "platform": "testnet",
            "author": f"customer{n}",
            "collected_at": created_at + timedelta(minutes=1),
        }
        values.update(overrides)
        return Item(**values)

    return make


@pytest.fixture
def processed_factory(item_factory: ItemFactory) -> ProcessedFactory:
    """``processed_factory(item=None, **options) -> ProcessedItem``.

    Wraps ``item`` (or a new ``item_factory(**item_overrides)``) with a Classification
    (model_version 'test-1') and, unless the author is the brand or ``needs_reply=False``, an
    SlaState whose clock starts at ``created_at`` (at risk at 75% of ``target_seconds``).
    """

    def make(
        item: Item | None = None,
        *,
        classify: bool = True,
        needs_reply: bool | None = None,
        model_version: str = "test-1",
        sentiment: str = Sentiment.NEUTRAL,
        is_complaint: bool = False,
        urgency: str = Urgency.NORMAL,
        target_seconds: int = 3600,
        sla_status: Status = Status.NEW,
        fingerprint: str | None = None,
        duplicate_of: tuple[str, str] | None = None,
        **item_overrides: Any,
    ) -> ProcessedItem:
        if item is None:
            item = item_factory(**item_overrides)
        elif item_overrides:
            raise TypeError("pass either item or item overrides, not both")
        classification = None
        if classify:
            classification = Classification(
                model_version=model_version,
                sentiment=Sentiment(sentiment),
                sentiment_scores={"negative": 0.1, "neutral": 0.8, "positive": 0.1},
                is_complaint=is_complaint,
                complaint_score=0.9 if is_complaint else 0.1,
                urgency=Urgency(urgency),
                topics={"billing": 0.7},
                language="en",
            )
        if needs_reply is None:
            needs_reply = not item.author_is_brand
        state = None
        if needs_reply:
            state = SlaState(
                policy="test-policy",
                target_seconds=target_seconds,
                started_at=item.created_at,
                due_at=item.created_at + timedelta(seconds=target_seconds),
                at_risk_at=item.created_at + timedelta(seconds=target_seconds * 0.75),
                status=sla_status,
            )
        return ProcessedItem(
            item=item,
            classification=classification,
            sla=state,
            fingerprint=fingerprint or f"fp-{item.external_id}",
            duplicate_of=duplicate_of,
        )

    return make
