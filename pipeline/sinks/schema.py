"""The SQL tables careradar stores everything in (SQLAlchemy Core, no ORM).

This module is the *description* of the schema that the store queries against; the Alembic
revisions under ``migrations/versions`` are what actually *create* it, written by hand so every
DDL change is explicit and reviewable. A test compares the two (``alembic compare_metadata``)
so they cannot drift apart silently.

Types are chosen to work the same on SQLite and PostgreSQL:

* surrogate keys are ``BIGINT`` on PostgreSQL but plain ``INTEGER`` on SQLite, because only an
  ``INTEGER PRIMARY KEY`` is SQLite's auto-incrementing rowid alias;
* timestamps go through :class:`UTCDateTime`, which refuses naive datetimes and hands back
  timezone-aware UTC on every backend (SQLite has no time zones and returns naive values);
* enumerations are short strings guarded by ``CHECK`` constraints rather than native ENUM types,
  so adding a value later is a one-line migration on both backends.

Constraint names come from a naming convention so that migrations can refer to them by a name
that is the same on every database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ITEM_STATUSES = ("new", "acknowledged", "responded", "resolved", "ignored")
RUN_STATUSES = ("running", "ok", "partial", "error", "not_configured")
ALERT_STATES = ("firing", "resolved")
CHANNELS = ("chat", "social", "email", "review", "forum")
LABEL_TASKS = ("sentiment", "complaint", "urgency", "topics")


def _in_check(column: str, values: tuple[str, ...]) -> str:
    """SQL text for ``column IN ('a', 'b')``; the values are our own constants, never input."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is timezone-aware UTC in Python on every backend.

    PostgreSQL stores ``timestamptz`` and returns it in the session's zone, which we convert
    to UTC. SQLite stores text without a zone, so values are converted to UTC before they are
    written (making text order equal time order) and UTC is re-attached when they are read.
    A naive datetime is refused on the way in: guessing its zone is how local times leak
    into storage and SLA clocks drift by hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} refused (every stored timestamp must "
                "carry a time zone)"
            )
        utc_value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite's DATETIME renders the wall-clock fields only; stripping the (UTC) zone
            # makes that explicit instead of relying on the formatter ignoring it.
            return utc_value.replace(tzinfo=None)
        return utc_value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def copy(self, **kw: Any) -> UTCDateTime:
        return UTCDateTime()


def _pk_type() -> TypeEngine[int]:
    """BIGINT surrogate key, INTEGER on SQLite (only that aliases the auto-increment rowid)."""
    return BigInteger().with_variant(Integer(), "sqlite")


def _fk_type() -> TypeEngine[int]:
    return BigInteger().with_variant(Integer(), "sqlite")


items = Table(
    "items",
    metadata,
    Column("id", _pk_type(), primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),
    Column("external_id", Text, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("platform", String(64), nullable=False, server_default=""),
    Column("brand", String(200)),
    Column("thread_id", Text),
    Column("parent_id", Text),
    Column("author", Text),
    Column("author_is_brand", Boolean, nullable=False),
    Column("url", Text),
    Column("title", Text),
    Column("text", Text, nullable=False),
    Column("language", String(35)),
    Column("content_hash", String(64), nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column(
        "duplicate_of_id",
        _fk_type(),
        ForeignKey("items.id", ondelete="SET NULL"),
    ),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("collected_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("raw", JSON(none_as_null=True), nullable=False),
    Column("status", String(16), nullable=False, server_default="new"),
    Column("assignee", String(200)),
    Column("needs_reply", Boolean, nullable=False),
    UniqueConstraint("source", "external_id"),
    CheckConstraint(_in_check("status", ITEM_STATUSES), name="status"),
    CheckConstraint(_in_check("channel", CHANNELS), name="channel"),
    Index(None, "platform", "thread_id"),
    # Response detection finds a brand reply by its parent_id (email In-Reply-To, comment
    # parents) as well as by thread.
    Index(None, "platform", "parent_id"),
    Index(None, "fingerprint", "created_at"),
    Index(None, "status"),
    Index(None, "created_at"),
)

classifications = Table(
    "classifications",
    metadata,
    Column("id", _pk_type(), primary_key=True, autoincrement=True),
    Column(
        "item_id",
        _fk_type(),
        ForeignKey("items.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("model_version", String(100), nullable=False),
    Column("sentiment", String(16), nullable=False),
    Column("sentiment_scores", JSON(none_as_null=True), nullable=False),
    Column("is_complaint", Boolean, nullable=False),
    Column("complaint_score", Float, nullable=False),
    Column("urgency", String(16), nullable=False),
    Column("topics", JSON(none_as_null=True), nullable=False),
    Column("entities", JSON(none_as_null=True), nullable=False),
    Column("language", String(35)),
    Column("language_supported", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("item_id", "model_version"),
)

sla = Table(
    "sla",
    metadata,
    Column(
        "item_id",
        _fk_type(),
        ForeignKey("items.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("policy", String(100), nullable=False),
    Column("target_seconds", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("at_risk_at", UTCDateTime(), nullable=False),
    Column("first_response_at", UTCDateTime()),
    Column("breached", Boolean, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "due_at"),
)

events = Table(
    "events",
    metadata,
    Column("id", _pk_type(), primary_key=True, autoincrement=True),
    Column("item_id", _fk_type(), ForeignKey("items.id", ondelete="CASCADE")),
    Column("kind", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("from_value", Text),
    Column("to_value", Text),
    Column("note", Text),
    Index(None, "item_id", "at"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", _pk_type(), primary_key=True, autoincrement=True),
    Column("key", String(300), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("source", String(100)),
    Column("item_id", _fk_type(), ForeignKey("items.id", ondelete="SET NULL")),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", JSON(none_as_null=True), nullable=False),
    Column("first_at", UTCDateTime(), nullable=False),
    Column("last_sent_at", UTCDateTime()),
    Column("resolved_at", UTCDateTime()),
    UniqueConstraint("key"),
    CheckConstraint(_in_check("state", ALERT_STATES), name="state"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("value", JSON(none_as_null=True), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

collector_runs = Table(
    "collector_runs",
    metadata,
    Column("id", _pk_type(), primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("status", String(16), nullable=False),
    Column("items_seen", Integer, nullable=False, server_default="0"),
    Column("items_new", Integer, nullable=False, server_default="0"),
    Column("items_updated", Integer, nullable=False, server_default="0"),
    Column("items_duplicate", Integer, nullable=False, server_default="0"),
    Column("items_bad", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("lag_seconds", Float),
    Column("newest_created_at", UTCDateTime()),
    CheckConstraint(_in_check("status", RUN_STATUSES), name="status"),
    Index(None, "source", "started_at"),
)

bad_inputs = Table(
    "bad_inputs",
    metadata,
    Column("id", _pk_type(), primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),
    Column("run_id", _fk_type(), ForeignKey("collector_runs.id", ondelete="SET NULL")),
    Column("reason", String(500), nullable=False),
    Column("location", Text, nullable=False),
    Column("raw_sha256", String(64), nullable=False),
    Column("excerpt", Text, nullable=False),
    Column("first_seen_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("times_seen", Integer, nullable=False, server_default="1"),
    UniqueConstraint("source", "raw_sha256", "reason"),
)

labels = Table(
    "labels",
    metadata,
    # A person's current label for one item and one task (the triage queue's "this is not
    # negative"); it overrides the model wherever people see the item, and trains the heads
    # (``careradar train --from-store``). Every change is also an ``events`` row (kind "label").
    Column("id", _pk_type(), primary_key=True, autoincrement=True),
    Column(
        "item_id",
        _fk_type(),
        ForeignKey("items.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("task", String(16), nullable=False),
    # sentiment: negative|neutral|positive; complaint: yes|no; urgency: low|normal|high;
    # topics: taxonomy topic names joined by ';' in name order ('' = about none of them).
    Column("value", Text, nullable=False),
    # What the newest classification said when the label was set (same encoding as value),
    # so model-human agreement can be measured later; NULL when the item was not classified.
    Column("model_value", Text),
    Column("model_version", String(100)),
    Column("actor", String(200), nullable=False),
    Column("note", Text),
    Column("labelled_at", UTCDateTime(), nullable=False),
    UniqueConstraint("item_id", "task"),
    CheckConstraint(_in_check("task", LABEL_TASKS), name="task"),
    Index(None, "task"),
)

TABLE_NAMES: tuple[str, ...] = tuple(metadata.tables)
"""Every table the store owns, in creation order (used to whitelist ``Store.count``)."""
