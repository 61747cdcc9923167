"""The SQL store: careradar's single source of truth.

Everything the pipeline learns ends up here, and everything downstream (alerts, digests, the
triage board, exports) reads from here; nothing is kept only in memory. Three rules shape the
code:

* **One batch, one transaction.** Items, classifications, SLA rows, bad inputs, the source's
  cursor and response detection are written together or not at all, so a crash can never
  advance a cursor past items that were not stored (at-least-once in, idempotent upsert =>
  exactly-once effect).
* **Idempotent upserts keyed by (source, external_id).** Writing the same batch twice changes
  nothing. Human decisions (status, assignee) are never overwritten by a re-collected item.
* **The database enforces what matters.** Unique constraints are the final guard against
  concurrent writers; a writer that loses a race retries its batch once and then sees the
  winner's rows as existing.

SQLite and PostgreSQL are supported. SQLite writers take the write lock up front
(``BEGIN IMMEDIATE``) so read-then-write inside a batch is serialised; PostgreSQL writers take
transaction-scoped advisory locks on the conversation threads a batch touches, so response
detection cannot miss a customer post and its brand reply committed at the same moment.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    RowMapping,
    Select,
    Table,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from pipeline.errors import ConfigError, NotFound, StoreError, TransientError
from pipeline.items import (
    AwaitingItem,
    BadInputRecord,
    Channel,
    Classification,
    Entity,
    Flag,
    Item,
    ProcessedItem,
    Sentiment,
    SlaState,
    Status,
    Urgency,
    now_utc,
    utc,
)
from pipeline.sinks.schema import (
    LABEL_TASKS,
    RUN_STATUSES,
    TABLE_NAMES,
    alerts,
    bad_inputs,
    classifications,
    collector_runs,
    cursors,
    events,
    items,
    labels,
    metadata,
    sla,
)

__all__ = [
    "LABEL_TASKS",
    "LABEL_VALUES",
    "Existing",
    "ItemRow",
    "Label",
    "LabelledItem",
    "SourceStatus",
    "Store",
    "WriteResult",
    "redact_url",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
CHUNK = 500
"""Largest IN-list sent in one statement (SQLite's default variable limit is far above this,
but long IN-lists plan badly everywhere)."""

_CONVERSATION_CHANNELS = (Channel.CHAT, Channel.EMAIL)
"""Channels where a thread is one customer's conversation with the brand."""

ANALYZE_AFTER_NEW = 1_000
"""A run that adds at least this many items refreshes PostgreSQL planner statistics."""

LANGUAGE_MAX = 35
"""Longest BCP 47 tag worth keeping; anything longer is not a language code."""

REASON_MAX = 500
"""bad_inputs.reason is part of a unique key, so it is cut to a bounded length."""

_ALEMBIC_LOCK = threading.Lock()
_MIGRATION_LOCK = 0x6361726572616472  # "careradr": serialises concurrent `db upgrade` runs
_OPEN = (Status.NEW.value, Status.ACKNOWLEDGED.value)
_REPLY_CHANNELS = (Channel.CHAT.value, Channel.EMAIL.value)
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected

LABEL_VALUES: Final[dict[str, tuple[str, ...]]] = {
    "sentiment": tuple(s.value for s in Sentiment),
    "complaint": ("no", "yes"),  # the classifier's complaint head labels (and train's)
    "urgency": tuple(u.value for u in Urgency),
}
"""The values a person may give each single-label task; ``topics`` takes taxonomy names."""

TOPICS_SEPARATOR: Final = ";"
"""How a topics label is stored (names in name order; the empty string means none of them)."""

_TOPIC_SPLIT = re.compile(r"[;,|]")
_LABEL_JOINS = {task: labels.alias(f"label_{task}") for task in LABEL_TASKS}
"""One outer join of ``labels`` per task: the row readers' human overrides."""
_LABEL_COLUMNS = ("value", "actor", "labelled_at", "model_value", "model_version", "note")


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one ``write_batch`` did. Every distinct processed item lands in exactly one of
    ``new``/``updated``/``unchanged``; ``duplicate`` counts the new items among them that are
    cross-posts of an earlier item (they are stored, but never queued). ``bad`` counts the bad
    records passed in and ``responded`` the stored items that response detection newly marked
    as answered."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicate: int = 0
    bad: int = 0
    responded: int = 0


@dataclass(frozen=True, slots=True)
class Existing:
    """What the pipeline needs to know about an already stored item to skip work: its content
    hash (unchanged content is not classified again) and the model versions that labelled it."""

    id: int
    content_hash: str
    model_versions: frozenset[str]
    author_is_brand: bool = False


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Label:
    """A person's current label for one item and task (``triage label``).

    ``value`` is the label (``topics``: a tuple of taxonomy names, empty for "none of them");
    ``model_value``/``model_version`` are what the newest classification said when the label
    was set (None when the item was not classified), kept to measure model-human agreement.
    """

    task: str
    value: str | tuple[str, ...]
    actor: str
    labelled_at: datetime
    model_value: str | tuple[str, ...] | None
    model_version: str | None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "value": list(self.value) if isinstance(self.value, tuple) else self.value,
            "actor": self.actor,
            "labelled_at": _iso(self.labelled_at),
            "model_value": (
                list(self.model_value) if isinstance(self.model_value, tuple) else self.model_value
            ),
            "model_version": self.model_version,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class ItemRow:
    """One stored item as readers see it: the item, its newest classification, its SLA row and
    the flags that put it in the triage queue (computed for a given ``now``).

    Where a person labelled the item (``labels``), ``sentiment``, ``is_complaint``, ``urgency``
    and ``topics`` (each human topic at 1.0) are the person's, and so are the flags; the
    model's own output stays in ``sentiment_scores``/``complaint_score`` and in each
    :class:`Label`'s ``model_value``."""

    id: int
    source: str
    external_id: str
    channel: Channel
    platform: str
    brand: str | None
    thread_id: str | None
    parent_id: str | None
    author: str | None
    author_is_brand: bool
    url: str | None
    title: str | None
    text: str
    language: str | None
    content_hash: str
    fingerprint: str
    duplicate_of_id: int | None
    created_at: datetime
    collected_at: datetime
    updated_at: datetime
    raw: Mapping[str, Any]
    status: Status
    assignee: str | None
    needs_reply: bool
    # newest classification (None when the item was never classified)
    model_version: str | None
    sentiment: Sentiment | None
    sentiment_scores: Mapping[str, float] | None
    is_complaint: bool | None
    complaint_score: float | None
    urgency: Urgency | None
    topics: Mapping[str, float] | None
    entities: tuple[Entity, ...]
    language_supported: bool | None
    # SLA (None when the item needs no reply)
    policy: str | None
    target_seconds: int | None
    due_at: datetime | None
    at_risk_at: datetime | None
    first_response_at: datetime | None
    breached: bool | None
    flags: tuple[str, ...]
    # human labels by task (empty when nobody labelled the item)
    labels: Mapping[str, Label] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; timestamps are ISO 8601 in UTC with a ``Z`` suffix."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = _iso(value)
            elif f.name == "entities":
                value = [
                    {"label": e.label, "text": e.text, "start": e.start, "end": e.end}
                    for e in value
                ]
            elif f.name == "labels":
                value = {task: label.to_json() for task, label in value.items()}
            elif isinstance(value, tuple):
                value = [str(v) for v in value]
            elif isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, str):
                value = str(value)  # StrEnum -> plain str
            out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class LabelledItem:
    """One human label with the item it labels, for training and export
    (:meth:`Store.iter_labels`).

    ``item`` carries what the classifier was given (cleaned title and text, language; ``raw``
    is left out); build the classifier's input from it with the classifier's own function
    (``pipeline.nlp.train.store_examples`` does). ``language`` is the item's, else the one its
    newest classification detected.
    """

    item_id: int
    item: Item
    language: str | None
    task: str
    value: str | tuple[str, ...]
    labelled_at: datetime
    actor: str
    model_value: str | tuple[str, ...] | None
    model_version: str | None


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """Collector health for one source, from ``collector_runs`` plus item/bad-input counts.

    ``last_success_at`` is the finish time of the newest ``ok``/``partial`` run;
    ``consecutive_failures`` counts ``error`` runs since then (running and not_configured runs
    neither break nor extend the streak); ``last_error`` is the newest non-empty error text;
    ``items_last_run`` is ``items_seen`` of the newest finished run; ``bad_total`` counts
    distinct bad records; ``lag_seconds`` comes from the newest run that measured it."""

    source: str
    last_run_at: datetime | None
    last_status: str | None
    last_success_at: datetime | None
    last_error: str | None
    runs: int
    consecutive_failures: int
    items_total: int
    items_last_run: int | None
    bad_total: int
    lag_seconds: float | None


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _chunks(values: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _first_line(exc: BaseException) -> str:
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(inner).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(inner).__name__


def _sqlstate(exc: DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _is_conflict(exc: BaseException) -> bool:
    """A lost race with a concurrent writer: retrying the whole batch is the fix."""
    if isinstance(exc, IntegrityError):
        return True
    return isinstance(exc, DBAPIError) and _sqlstate(exc) in _RETRYABLE_SQLSTATES


def _lock_id(key: str) -> int:
    """A stable signed 64-bit id for a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big", signed=True)


def _redact_unparsed(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: the only form a URL is ever shown in."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _redact_unparsed(url)


def _floats(values: Mapping[str, Any]) -> dict[str, float]:
    # Classifiers hand out numpy scalars; JSON wants plain floats.
    return {str(k): float(v) for k, v in values.items()}


def _entities_json(values: Iterable[Entity]) -> list[dict[str, Any]]:
    return [
        {"label": str(e.label), "text": str(e.text), "start": int(e.start), "end": int(e.end)}
        for e in values
    ]


def _language(value: str | None) -> str | None:
    if not value or len(value) > LANGUAGE_MAX:
        return None
    return value


def _topic_key(value: str) -> str:
    """'Late Delivery' and 'late-delivery' name the topic ``late_delivery``."""
    return re.sub(r"[\s\-]+", "_", value.strip().casefold())


def _label_task(task: str) -> str:
    if task not in LABEL_TASKS:
        raise ConfigError(
            f"unknown label task {task!r}; valid values are: {', '.join(LABEL_TASKS)}",
            hint="label one of: --sentiment, --complaint, --urgency, --topics",
        )
    return task


def _label_value(task: str, value: Any, taxonomy: Iterable[str] | None) -> str:
    """``value`` checked and in its stored form; a ConfigError names the valid values."""
    if task == "topics":
        return _topics_value(value, taxonomy)
    allowed = LABEL_VALUES[task]
    if task == "complaint" and isinstance(value, bool):
        value = "yes" if value else "no"
    text = str(value).strip().casefold() if isinstance(value, str) else None
    if text not in allowed:
        raise ConfigError(
            f"{value!r} is not a {task} label; valid values are: {', '.join(allowed)}",
            hint=f"e.g. careradar triage label ITEM --{task} {allowed[-1]}",
        )
    return text


@functools.cache
def _builtin_topic_names() -> tuple[str, ...]:
    from pipeline.nlp.taxonomy import load_taxonomy  # the built-in one: the store has no config

    return tuple(t.name for t in load_taxonomy())


def _topics_value(value: Any, taxonomy: Iterable[str] | None) -> str:
    names = list(_builtin_topic_names() if taxonomy is None else taxonomy)
    known = {_topic_key(n): n for n in names}
    if isinstance(value, str):
        parts = [p for p in _TOPIC_SPLIT.split(value) if p.strip()]
    elif isinstance(value, Iterable):
        parts = [str(p) for p in value if str(p).strip()]
    else:
        raise ConfigError(f"topics label must be a list of topic names, got {value!r}")
    picked: set[str] = set()
    for part in parts:
        name = known.get(_topic_key(part))
        if name is None:
            raise ConfigError(
                f"unknown topic {part.strip()!r}; valid topics are: {', '.join(names)}",
                hint="use the names of the configured taxonomy (classifier.taxonomy), or add "
                "the topic to the taxonomy first",
            )
        picked.add(name)
    return TOPICS_SEPARATOR.join(sorted(picked))


def _decode_label(task: str, stored: str) -> str | tuple[str, ...]:
    if task == "topics":
        return tuple(n for n in stored.split(TOPICS_SEPARATOR) if n)
    return stored


def _decode_optional(task: str, stored: str | None) -> str | tuple[str, ...] | None:
    return None if stored is None else _decode_label(task, stored)


def _model_label(task: str, m: RowMapping) -> str | None:
    """What a classification row says for ``task``, in the labels table's encoding."""
    if task == "sentiment":
        return None if m["sentiment"] is None else str(m["sentiment"])
    if task == "complaint":
        return None if m["is_complaint"] is None else ("yes" if m["is_complaint"] else "no")
    if task == "urgency":
        return None if m["urgency"] is None else str(m["urgency"])
    if m["topics"] is None:
        return None
    return TOPICS_SEPARATOR.join(sorted(m["topics"]))


def _row_labels(m: RowMapping) -> dict[str, Label]:
    """The human labels joined onto an item row by ``_row_select``."""
    found: dict[str, Label] = {}
    for task in LABEL_TASKS:
        stored = m[f"label_{task}_value"]
        if stored is None:
            continue
        found[task] = Label(
            task=task,
            value=_decode_label(task, stored),
            actor=m[f"label_{task}_actor"],
            labelled_at=m[f"label_{task}_labelled_at"],
            model_value=_decode_optional(task, m[f"label_{task}_model_value"]),
            model_version=m[f"label_{task}_model_version"],
            note=m[f"label_{task}_note"],
        )
    return found


LIVE_WINDOW_MAX = 3_600
"""An overdue item stays 'live' in the queue for its target length, at most this many seconds."""


def _queue_key(row: ItemRow, now: datetime) -> tuple[int, float, int, float, int]:
    """Sort key for the triage queue: live items by due time, then the backlog, newest first."""
    urgent = 0 if row.urgency == Urgency.HIGH.value else 1
    created = row.created_at.timestamp()
    if row.due_at is None or row.first_response_at is not None:
        return (1, 0.0, urgent, created, row.id)  # no clock running (e.g. answered, reopened)
    due = row.due_at.timestamp()
    live = now.timestamp() - due <= min(row.target_seconds or 0, LIVE_WINDOW_MAX)
    if live:
        return (0, due, urgent, created, row.id)
    return (2, -due, urgent, created, row.id)


def _compute_flags(
    *,
    status: Status,
    sentiment: str | None,
    is_complaint: bool | None,
    urgency: str | None,
    first_response_at: datetime | None,
    at_risk_at: datetime | None,
    due_at: datetime | None,
    now: datetime,
) -> tuple[str, ...]:
    """The same rules as ``SlaState.at_risk``/``breached`` and the SQL in ``_flag_conditions``;
    the caller passes the values people see (a human label where there is one)."""
    flags: list[str] = []
    if sentiment == Sentiment.NEGATIVE:
        flags.append(Flag.NEGATIVE)
    if is_complaint:
        flags.append(Flag.COMPLAINT)
    if urgency == Urgency.HIGH:
        flags.append(Flag.URGENT)
    if status.is_open and first_response_at is None and due_at is not None:
        if now > due_at:
            flags.append(Flag.OVERDUE)
        elif at_risk_at is not None and at_risk_at <= now:
            flags.append(Flag.AT_RISK)
    return tuple(flags)


@dataclass(slots=True)
class _Current:
    """The stored state of one item that ``write_batch`` decides against."""

    id: int
    content_hash: str
    status: str
    needs_reply: bool
    duplicate_of_id: int | None
    has_sla: bool
    model_versions: set[str]
    author_is_brand: bool = False


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


class Store:
    """Access to one careradar database. Thread-safe: every call uses its own pooled
    connection and transaction. Create with :meth:`open`."""

    def __init__(self, engine: Engine, *, display_url: str, password: str | None = None) -> None:
        self._engine = engine
        self._display_url = display_url
        self._password = password or None
        self._dialect = engine.dialect.name

    # -- opening, migrating ------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, migrate: bool | None = None) -> Store:
        """Connect to ``url`` and make sure the schema is current.

        ``migrate=None`` upgrades SQLite automatically (a local file is the user's own) but
        refuses to touch any other database that is not at head: migrating a shared server is
        an operator's decision (``careradar db upgrade``). ``migrate=True`` always upgrades;
        ``migrate=False`` neither upgrades nor checks the revision (for ``db upgrade`` and
        ``db current`` themselves), it only proves the database is reachable.
        """
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError) as exc:
            raise StoreError(
                f"invalid database URL {_redact_unparsed(url)!r}",
                hint="use e.g. sqlite:///careradar.db or postgresql+psycopg://user@host/db",
            ) from exc
        backend = parsed.get_backend_name()
        if backend == "postgresql" and parsed.drivername == "postgresql":
            # A bare postgresql:// would pick psycopg2, which careradar does not ship.
            parsed = parsed.set(drivername="postgresql+psycopg")
        display = parsed.render_as_string(hide_password=True)
        if backend not in ("sqlite", "postgresql"):
            raise StoreError(
                f"unsupported database {display}: careradar stores into SQLite or PostgreSQL",
                hint="use sqlite:///path/to/careradar.db or postgresql+psycopg://user@host/db",
            )
        try:
            engine = cls._create_engine(parsed)
        except OSError as exc:
            raise StoreError(
                f"cannot create the directory for database {display}: {exc}",
                hint="check the path in the store URL and that careradar may write there",
            ) from exc
        store = cls(engine, display_url=display, password=parsed.password)
        try:
            if migrate is True or (migrate is None and backend == "sqlite"):
                store.upgrade()
            elif migrate is None:
                store._check_at_head()
            else:
                store.current_revision()  # migrate=False: only prove the database is reachable
        except TransientError as exc:
            engine.dispose()
            raise store._unreachable(exc.__cause__ or exc) from exc
        except DBAPIError as exc:
            engine.dispose()
            raise store._unreachable(exc) from exc
        except BaseException:
            engine.dispose()
            raise
        return store

    @staticmethod
    def _create_engine(url: URL) -> Engine:
        serializer = partial(json.dumps, ensure_ascii=False)
        if url.get_backend_name() == "sqlite":
            database = url.database or ""
            memory = database in ("", ":memory:") or "mode=memory" in str(url.query)
            if not memory and not database.startswith("file:"):
                path = Path(database).expanduser()
                path.parent.mkdir(parents=True, exist_ok=True)
                url = url.set(database=str(path))
            kwargs: dict[str, Any] = {
                "json_serializer": serializer,
                "connect_args": {"check_same_thread": False},
            }
            if memory:
                kwargs["poolclass"] = StaticPool
            engine = create_engine(url, **kwargs)
            _install_sqlite_hooks(engine, wal=not memory)
            return engine
        return create_engine(
            url,
            json_serializer=serializer,
            pool_pre_ping=True,  # a restarted server's dead connections are replaced quietly
            connect_args={"connect_timeout": 10, "application_name": "careradar"},
        )

    def _alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        return cfg

    def head_revision(self) -> str:
        """The newest migration this careradar ships."""
        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        if head is None:  # pragma: no cover - the package always ships migrations
            raise StoreError(f"no migrations found in {MIGRATIONS_DIR}")
        return head

    def current_revision(self) -> str | None:
        """The revision the database is at (None for an empty database)."""
        with self._begin() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self) -> tuple[str | None, str]:
        """Migrate to head in one transaction; returns (revision before, revision after).

        Concurrent upgrades are serialised -- across processes by SQLite's write lock or a
        PostgreSQL advisory lock, so two processes starting at once cannot both try to create
        the tables; within a process by a lock around Alembic, whose ``context`` is global
        state that two threads migrating (even different databases) would trample.
        """
        cfg = self._alembic_config()
        head = self.head_revision()
        with _ALEMBIC_LOCK, self._begin(write=True) as conn:
            if self._dialect == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            before = MigrationContext.configure(conn).get_current_revision()
            if before is not None and before != head and not self._knows(before):
                raise self._unknown_revision(before, head)
            cfg.attributes["connection"] = conn
            try:
                command.upgrade(cfg, "head")
            except CommandError as exc:
                raise StoreError(
                    f"cannot migrate database {self._display_url}: {exc}",
                    hint="check that this careradar version matches the database",
                ) from exc
            after = MigrationContext.configure(conn).get_current_revision()
        if before != after:
            log.info("migrated %s from %s to %s", self._display_url, before or "empty", after)
        return before, after or head

    def _knows(self, revision: str) -> bool:
        script = ScriptDirectory.from_config(self._alembic_config())
        try:
            return script.get_revision(revision) is not None
        except CommandError:
            return False

    def _unknown_revision(self, current: str, head: str) -> StoreError:
        return StoreError(
            f"database {self._display_url} is at revision {current}, which this careradar does "
            f"not know (it needs {head})",
            hint="the database was migrated by a newer careradar; upgrade careradar",
        )

    def _check_at_head(self) -> None:
        current = self.current_revision()
        head = self.head_revision()
        if current == head:
            return
        if current is not None and not self._knows(current):
            raise self._unknown_revision(current, head)
        raise StoreError(
            f"database {self._display_url} is at revision {current or '(none)'}, "
            f"this careradar needs {head}",
            hint="run: careradar db upgrade",
        )

    def _scrub(self, message: str) -> str:
        if self._password:
            message = message.replace(self._password, "***")
        return message

    def _unreachable(self, exc: BaseException) -> StoreError:
        reason = self._scrub(_first_line(exc))
        hint = "check that the database server is running and the store URL is right"
        if "does not exist" in reason and "database" in reason:
            hint = "create the database first, then run: careradar db upgrade"
        elif "unable to open database file" in reason:
            hint = "check that the directory exists and is writable"
        return StoreError(f"cannot open database {self._display_url}: {reason}", hint=hint)

    def close(self) -> None:
        """Release pooled connections (the store must not be used afterwards)."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self._display_url!r})"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for tests, benchmarks and read-only reporting queries."""
        return self._engine

    @property
    def url(self) -> str:
        """The database URL with any password hidden (safe to print and log)."""
        return self._display_url

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def _begin(self, *, write: bool = False) -> Iterator[Connection]:
        """One connection, one transaction; commit on success, roll back on error.

        ``write=True`` makes SQLite take its write lock at BEGIN (instead of at the first
        write, where two readers upgrading at once would deadlock into "database is locked").
        A lost connection becomes :class:`TransientError`, so the runner retries later instead
        of marking the source broken; lost races (unique violations, deadlocks) propagate
        unchanged for ``write_batch`` to retry.
        """
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(careradar_write=True)
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            if not _is_conflict(exc) and self._is_transient(exc):
                raise TransientError(
                    f"database {self._display_url} is unavailable: {self._scrub(_first_line(exc))}",
                    hint="nothing was committed; the operation will be retried",
                ) from exc
            raise

    def _is_transient(self, exc: DBAPIError) -> bool:
        if exc.connection_invalidated:
            return True
        if not isinstance(exc, OperationalError):
            return False
        if self._dialect == "postgresql":
            return True  # connection refused/reset, admin shutdown, ...
        return "database is locked" in str(exc.orig) or "database is busy" in str(exc.orig)

    def _insert(self, table: Table) -> postgresql.Insert | Any:
        """The dialect's INSERT, which knows ON CONFLICT."""
        if self._dialect == "postgresql":
            return pg_insert(table)
        return sqlite_insert(table)

    # -- item writes -------------------------------------------------------------------------

    def existing(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Existing]:
        """Stored items among ``keys``: lets the pipeline skip classifying unchanged items."""
        with self._begin() as conn:
            current = self._load_current(conn, keys)
        return {
            key: Existing(c.id, c.content_hash, frozenset(c.model_versions), c.author_is_brand)
            for key, c in current.items()
        }

    def _load_current(
        self, conn: Connection, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], _Current]:
        by_source: dict[str, list[str]] = {}
        for source, external_id in dict.fromkeys(keys):
            by_source.setdefault(source, []).append(external_id)
        found: dict[tuple[str, str], _Current] = {}
        for source, external_ids in by_source.items():
            for chunk in _chunks(external_ids):
                query = (
                    select(
                        items.c.id,
                        items.c.external_id,
                        items.c.content_hash,
                        items.c.status,
                        items.c.needs_reply,
                        items.c.duplicate_of_id,
                        items.c.author_is_brand,
                        sla.c.item_id.is_not(None).label("has_sla"),
                    )
                    .select_from(items.outerjoin(sla, sla.c.item_id == items.c.id))
                    .where(items.c.source == source, items.c.external_id.in_(chunk))
                )
                for m in conn.execute(query).mappings():
                    found[(source, m["external_id"])] = _Current(
                        id=m["id"],
                        content_hash=m["content_hash"],
                        status=m["status"],
                        needs_reply=bool(m["needs_reply"]),
                        duplicate_of_id=m["duplicate_of_id"],
                        has_sla=bool(m["has_sla"]),
                        model_versions=set(),
                        author_is_brand=bool(m["author_is_brand"]),
                    )
        by_id = {c.id: c for c in found.values()}
        for id_chunk in _chunks(sorted(by_id)):
            query = select(classifications.c.item_id, classifications.c.model_version).where(
                classifications.c.item_id.in_(id_chunk)
            )
            for item_id, version in conn.execute(query):
                by_id[item_id].model_versions.add(version)
        return found

    def find_cross_posts(
        self, fingerprints: Sequence[str], *, since: datetime
    ) -> dict[str, tuple[str, str]]:
        """fingerprint -> key of the earliest original (non-duplicate) item with it since
        ``since``: the normaliser marks a new item with a known fingerprint as a cross-post."""
        since = utc(since)
        wanted = sorted(set(fingerprints))
        found: dict[str, tuple[str, str]] = {}
        with self._begin() as conn:
            for chunk in _chunks(wanted):
                query = (
                    select(items.c.fingerprint, items.c.source, items.c.external_id)
                    .where(
                        items.c.fingerprint.in_(chunk),
                        items.c.created_at >= since,
                        items.c.duplicate_of_id.is_(None),
                    )
                    .order_by(items.c.fingerprint, items.c.created_at, items.c.id)
                )
                for fingerprint, source, external_id in conn.execute(query):
                    found.setdefault(fingerprint, (source, external_id))
        return found

    def write(self, items: Sequence[ProcessedItem]) -> None:
        """The ``Sink`` protocol: an idempotent write without a cursor."""
        self.write_batch(items)

    def write_batch(
        self,
        processed: Sequence[ProcessedItem],
        *,
        bad: Sequence[BadInputRecord] = (),
        source: str | None = None,
        cursor: Mapping[str, Any] | None = None,
        run_id: int | None = None,
    ) -> WriteResult:
        """Store one batch in one transaction (see the module docstring for why).

        If the same key occurs twice in ``processed`` the last occurrence wins. When another
        writer inserts one of our items between our read and our insert, the unique
        constraint fails the transaction; it is retried once, and then sees those rows as
        existing. A dropped connection raises :class:`TransientError`; nothing is committed.
        """
        if cursor is not None and source is None:
            raise ValueError("write_batch: a cursor needs the source it belongs to")
        latest: dict[tuple[str, str], ProcessedItem] = {}
        for p in processed:
            latest[p.item.key] = p
        batch = [latest[key] for key in sorted(latest)]  # one lock order for every writer
        bad_counts: dict[tuple[str, str, str], tuple[BadInputRecord, int]] = {}
        for record in bad:
            bkey = (record.source, record.raw_sha256, record.reason[:REASON_MAX])
            prev = bad_counts.get(bkey)
            bad_counts[bkey] = (record, (prev[1] if prev else 0) + 1)
        for attempt in (1, 2):
            try:
                with self._begin(write=True) as conn:
                    result = self._write_batch(conn, batch, bad_counts, source, cursor, run_id)
                return WriteResult(
                    new=result.new,
                    updated=result.updated,
                    unchanged=result.unchanged,
                    duplicate=result.duplicate,
                    bad=len(bad),
                    responded=result.responded,
                )
            except DBAPIError as exc:
                # Only the first line of the driver's message: SQLAlchemy's own text carries
                # the statement's parameters, i.e. customer text, which must not be logged.
                reason = self._scrub(_first_line(exc))
                if _is_conflict(exc) and attempt == 1:
                    log.info("write to %s lost a race (%s); retrying once", self.url, reason)
                    continue
                if _is_conflict(exc) and not isinstance(exc, IntegrityError):
                    raise TransientError(
                        f"database {self._display_url} kept aborting a batch of {len(batch)} "
                        f"items: {reason}",
                        hint="nothing was committed; the batch will be retried",
                    ) from exc
                raise StoreError(
                    f"cannot store a batch of {len(batch)} items in {self._display_url}: {reason}",
                    hint="nothing was stored and the cursor was not advanced; "
                    "this is a bug, please report it with the log",
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _write_batch(
        self,
        conn: Connection,
        batch: list[ProcessedItem],
        bad: Mapping[tuple[str, str, str], tuple[BadInputRecord, int]],
        source: str | None,
        cursor: Mapping[str, Any] | None,
        run_id: int | None,
    ) -> WriteResult:
        now = now_utc()
        self._lock_conversations(conn, batch)
        current = self._load_current(conn, [p.item.key for p in batch])
        ids = self._insert_new_items(conn, [p for p in batch if p.item.key not in current], now)
        for key, c in current.items():
            ids[key] = c.id

        changed: set[tuple[str, str]] = set()
        self._update_existing_items(conn, batch, current, now, changed)
        linked = self._link_duplicates(conn, batch, current, ids, changed)
        self._write_classifications(conn, batch, current, ids, now, changed)
        self._write_sla(conn, batch, current, ids, now)
        self._write_bad_inputs(conn, bad, run_id, now)
        if source is not None and cursor is not None:
            self._write_cursor(conn, source, cursor, now)
        responded = self._detect_responses(conn, batch, ids, now)

        new = duplicate = updated = unchanged = 0
        for p in batch:
            key = p.item.key
            if key not in current:
                new += 1
                duplicate += key in linked
            elif key in changed:
                updated += 1
            else:
                unchanged += 1
        return WriteResult(new, updated, unchanged, duplicate, 0, responded)

    def _lock_conversations(self, conn: Connection, batch: Sequence[ProcessedItem]) -> None:
        """PostgreSQL: serialise writers that touch the same conversation.

        Without this, a customer post and its brand reply written by two concurrent
        transactions would each miss the other (neither sees the other's uncommitted row) and
        the post would stay unanswered forever. Locks are taken in sorted order, before any
        row is written, so writers cannot deadlock on them. SQLite needs nothing: its writers
        are already serialised by ``BEGIN IMMEDIATE``.
        """
        if self._dialect != "postgresql":
            return
        keys: set[int] = set()
        for p in batch:
            it = p.item
            if it.thread_id:
                keys.add(_lock_id(f"thread\x00{it.platform}\x00{it.thread_id}"))
            if it.author_is_brand and it.parent_id:
                keys.add(_lock_id(f"msg\x00{it.platform}\x00{it.parent_id}"))
            if not it.author_is_brand:
                keys.add(_lock_id(f"msg\x00{it.platform}\x00{it.external_id}"))
        if not keys:
            return
        stmt = text("SELECT pg_advisory_xact_lock(k) FROM unnest(:keys) AS k").bindparams(
            bindparam("keys", type_=postgresql.ARRAY(BigInteger))
        )
        conn.execute(stmt, {"keys": sorted(keys)})

    @staticmethod
    def _content_values(p: ProcessedItem, now: datetime) -> dict[str, Any]:
        it = p.item
        return {
            "brand": it.brand,
            "thread_id": it.thread_id,
            "parent_id": it.parent_id,
            "author": it.author,
            "author_is_brand": it.author_is_brand,
            "url": it.url,
            "title": it.title,
            "text": it.text,
            "language": _language(it.language),
            "content_hash": it.content_hash,
            "fingerprint": p.fingerprint,
            "collected_at": it.collected_at,
            "updated_at": now,
            "raw": dict(it.raw),
        }

    def _insert_new_items(
        self, conn: Connection, new: Sequence[ProcessedItem], now: datetime
    ) -> dict[tuple[str, str], int]:
        if not new:
            return {}
        params = []
        for p in new:
            it = p.item
            values = self._content_values(p, now)
            values.update(
                source=it.source,
                external_id=it.external_id,
                channel=it.channel.value,
                platform=it.platform,
                created_at=it.created_at,
                # A new item's workflow state comes from the SLA stage; an item without an
                # SLA (a brand post, praise on a review site...) needs nobody's attention.
                status=(p.sla.status.value if p.sla is not None else Status.IGNORED.value),
                needs_reply=p.sla is not None,
                assignee=None,
                duplicate_of_id=None,
            )
            params.append(values)
        stmt = insert(items).returning(
            items.c.id, items.c.source, items.c.external_id, sort_by_parameter_order=True
        )
        return {
            (m["source"], m["external_id"]): m["id"] for m in conn.execute(stmt, params).mappings()
        }

    def _update_existing_items(
        self,
        conn: Connection,
        batch: Sequence[ProcessedItem],
        current: Mapping[tuple[str, str], _Current],
        now: datetime,
        changed: set[tuple[str, str]],
    ) -> None:
        reopen_candidates: list[tuple[tuple[str, str], ProcessedItem]] = []
        for p in batch:
            c = current.get(p.item.key)
            if c is None:
                continue
            values: dict[str, Any] = {}
            if c.content_hash != p.item.content_hash:
                values.update(self._content_values(p, now))
            if p.item.author_is_brand and not c.author_is_brand:
                self._becomes_brand(conn, c, now)
                values.update(author_is_brand=True, needs_reply=False)
                if Status(c.status).is_open:
                    values["status"] = Status.IGNORED.value
            if p.sla is not None and not c.needs_reply:
                # needs_reply only ever goes False -> True: an edit or a better model can
                # reveal that a post needs an answer; nothing un-asks a question.
                values["needs_reply"] = True
                if c.status == Status.IGNORED:
                    reopen_candidates.append((p.item.key, p))
            if values:
                conn.execute(update(items).where(items.c.id == c.id).values(**values))
                changed.add(p.item.key)
        if not reopen_candidates:
            return
        # The store set 'ignored' itself because the item needed no reply; now it does, so it
        # joins the queue -- unless a person chose 'ignored', which is never overridden.
        human = self._status_set_by_people(conn, [current[key].id for key, _ in reopen_candidates])
        for key, p in reopen_candidates:
            item_id = current[key].id
            if item_id in human or p.sla is None:
                continue
            self._leave_ignored(
                conn,
                item_id,
                p.sla.status,
                actor="system",
                at=now,
                note="now needs a reply (content or classification changed)",
            )

    @staticmethod
    def _status_set_by_people(conn: Connection, ids: Sequence[int]) -> set[int]:
        """The items among ``ids`` whose status someone set (an ``events`` row of kind
        ``status``); the store never overrides such a status, 'ignored' above all.

        The only status events the store writes itself are for items that leave 'ignored' or
        turn out to be the brand's, so for a customer item that is 'ignored' now any status
        event is a person's choice."""
        found: set[int] = set()
        for chunk in _chunks(sorted(ids)):
            query = select(events.c.item_id).where(
                events.c.item_id.in_(chunk), events.c.kind == "status"
            )
            found.update(conn.execute(query).scalars())
        return found

    @staticmethod
    def _leave_ignored(
        conn: Connection, item_id: int, to_status: Status, *, actor: str, at: datetime, note: str
    ) -> None:
        """Move an item the store had set 'ignored' (it needed no reply) into the queue."""
        conn.execute(update(items).where(items.c.id == item_id).values(status=to_status.value))
        conn.execute(
            insert(events).values(
                item_id=item_id,
                kind="status",
                actor=actor,
                at=at,
                from_value=Status.IGNORED.value,
                to_value=to_status.value,
                note=note,
            )
        )

    @staticmethod
    def _becomes_brand(conn: Connection, c: _Current, now: datetime) -> None:
        """A stored customer item turns out to be the brand's own message.

        E-mail is the usual case: the brand's reply lands in the shared inbox (a CC, a copy to
        the team address) before the sent folder shows it as the brand's. Its clock goes, it
        leaves the queue, and, being in the batch as a brand post, it answers the customer
        items of its thread (response detection runs after this).
        """
        conn.execute(delete(sla).where(sla.c.item_id == c.id))
        if Status(c.status).is_open:
            conn.execute(
                insert(events).values(
                    item_id=c.id,
                    kind="status",
                    actor="system",
                    at=now,
                    from_value=c.status,
                    to_value=Status.IGNORED.value,
                    note="it is the brand's own message (seen from a brand account or folder)",
                )
            )

    def _link_duplicates(
        self,
        conn: Connection,
        batch: Sequence[ProcessedItem],
        current: Mapping[tuple[str, str], _Current],
        ids: Mapping[tuple[str, str], int],
        changed: set[tuple[str, str]],
    ) -> set[tuple[str, str]]:
        """Turn ``duplicate_of`` keys into ``duplicate_of_id``; returns the keys linked.

        The original may be in this batch or already stored. If it is neither, the item is
        kept as an original (with a warning) rather than pointing nowhere.
        """
        wanted = [
            p
            for p in batch
            if p.duplicate_of is not None
            and p.duplicate_of != p.item.key
            and (p.item.key not in current or current[p.item.key].duplicate_of_id is None)
        ]
        if not wanted:
            return set()
        targets = dict(ids)
        missing = [p.duplicate_of for p in wanted if p.duplicate_of not in targets]
        if missing:
            for key, c in self._load_current(conn, [k for k in missing if k]).items():
                targets[key] = c.id
        params = []
        linked: set[tuple[str, str]] = set()
        for p in wanted:
            target = targets.get(p.duplicate_of) if p.duplicate_of is not None else None
            if target is None:
                log.warning(
                    "%s/%s is a duplicate of %s/%s, which is not stored; keeping it as original",
                    *p.item.key,
                    *(p.duplicate_of or ("?", "?")),
                )
                continue
            params.append({"b_id": ids[p.item.key], "b_dup": target})
            linked.add(p.item.key)
            if p.item.key in current:
                changed.add(p.item.key)
        if params:
            conn.execute(
                update(items)
                .where(items.c.id == bindparam("b_id"))
                .values(duplicate_of_id=bindparam("b_dup")),
                params,
            )
        return linked

    @staticmethod
    def _classification_values(c: Classification, now: datetime) -> dict[str, Any]:
        return {
            "model_version": c.model_version,
            "sentiment": c.sentiment.value,
            "sentiment_scores": _floats(c.sentiment_scores),
            "is_complaint": bool(c.is_complaint),
            "complaint_score": float(c.complaint_score),
            "urgency": c.urgency.value,
            "topics": _floats(c.topics),
            "entities": _entities_json(c.entities),
            "language": _language(c.language),
            "language_supported": bool(c.language_supported),
            "created_at": now,
        }

    def _write_classifications(
        self,
        conn: Connection,
        batch: Sequence[ProcessedItem],
        current: Mapping[tuple[str, str], _Current],
        ids: Mapping[tuple[str, str], int],
        now: datetime,
        changed: set[tuple[str, str]],
    ) -> None:
        inserts: list[dict[str, Any]] = []
        for p in batch:
            c = p.classification
            if c is None:
                continue
            key = p.item.key
            values = self._classification_values(c, now)
            cur = current.get(key)
            if cur is None or c.model_version not in cur.model_versions:
                inserts.append({"item_id": ids[key], **values})
                if cur is not None:
                    changed.add(key)
            elif cur.content_hash != p.item.content_hash:
                # Same model, different text: the old label describes text that no longer
                # exists, so it is replaced rather than kept beside the new one.
                conn.execute(
                    update(classifications)
                    .where(
                        classifications.c.item_id == cur.id,
                        classifications.c.model_version == c.model_version,
                    )
                    .values(**values)
                )
        if inserts:
            conn.execute(insert(classifications), inserts)

    def _write_sla(
        self,
        conn: Connection,
        batch: Sequence[ProcessedItem],
        current: Mapping[tuple[str, str], _Current],
        ids: Mapping[tuple[str, str], int],
        now: datetime,
    ) -> None:
        params = []
        for p in batch:
            s: SlaState | None = p.sla
            cur = current.get(p.item.key)
            if s is None or (cur is not None and cur.has_sla):
                continue
            params.append(self._sla_values(ids[p.item.key], s, now))
        if params:
            conn.execute(insert(sla), params)

    @staticmethod
    def _sla_values(item_id: int, s: SlaState, now: datetime) -> dict[str, Any]:
        """An ``sla`` row for ``item_id`` (new items in a batch, or a clock a label opens)."""
        return {
            "item_id": item_id,
            "policy": s.policy,
            "target_seconds": int(s.target_seconds),
            "started_at": s.started_at,
            "due_at": s.due_at,
            "at_risk_at": s.at_risk_at,
            "first_response_at": s.first_response_at,
            "breached": s.first_response_at is not None and s.first_response_at > s.due_at,
            "updated_at": now,
        }

    def _write_bad_inputs(
        self,
        conn: Connection,
        bad: Mapping[tuple[str, str, str], tuple[BadInputRecord, int]],
        run_id: int | None,
        now: datetime,
    ) -> None:
        """Upsert: the same bad record read again bumps ``times_seen`` instead of piling up."""
        for (source, sha, reason), (record, times) in bad.items():
            stmt = self._insert(bad_inputs).values(
                source=source,
                run_id=run_id,
                reason=reason,
                location=record.location,
                raw_sha256=sha,
                excerpt=record.excerpt,
                first_seen_at=now,
                last_seen_at=now,
                times_seen=times,
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[bad_inputs.c.source, bad_inputs.c.raw_sha256, bad_inputs.c.reason],
                set_={
                    "times_seen": bad_inputs.c.times_seen + stmt.excluded.times_seen,
                    "last_seen_at": stmt.excluded.last_seen_at,
                    "location": stmt.excluded.location,
                    "excerpt": stmt.excluded.excerpt,
                    "run_id": func.coalesce(stmt.excluded.run_id, bad_inputs.c.run_id),
                },
            )
            conn.execute(stmt)

    def _write_cursor(
        self, conn: Connection, source: str, cursor: Mapping[str, Any], now: datetime
    ) -> None:
        stmt = self._insert(cursors).values(source=source, value=dict(cursor), updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[cursors.c.source],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        conn.execute(stmt)

    def _detect_responses(
        self,
        conn: Connection,
        batch: Sequence[ProcessedItem],
        ids: Mapping[tuple[str, str], int],
        now: datetime,
    ) -> int:
        """Mark open customer items answered by a brand post in the same conversation.

        A brand post answers a customer item, if created after it on the same platform, when:
        it names the item as its parent; or it is in the same thread and that thread is the
        customer's conversation: a chat or e-mail thread, or a public thread the item started.
        In a public thread (a Reddit submission, a tweet's replies) a brand comment to one
        person does not answer everyone else who commented there. Both arrival orders work because
        the candidates are every open item of every conversation the batch touched, looked up
        in the database, not only the items of this batch.
        """
        threads: dict[str, set[str]] = {}
        parents: dict[str, set[str]] = {}
        candidate_ids: set[int] = set()
        for p in batch:
            it = p.item
            if it.thread_id:
                threads.setdefault(it.platform, set()).add(it.thread_id)
            if it.author_is_brand and it.parent_id:
                parents.setdefault(it.platform, set()).add(it.parent_id)
            if not it.author_is_brand and p.sla is not None:
                candidate_ids.add(ids[it.key])
        waiting = and_(
            items.c.needs_reply.is_(True),
            items.c.status.in_(_OPEN),
            items.c.author_is_brand.is_(False),
        )
        for column, groups in ((items.c.thread_id, threads), (items.c.external_id, parents)):
            for platform, values in groups.items():
                for chunk in _chunks(sorted(values)):
                    query = select(items.c.id).where(
                        waiting, items.c.platform == platform, column.in_(chunk)
                    )
                    candidate_ids.update(conn.execute(query).scalars())
        if not candidate_ids:
            return 0

        c = items.alias("c")
        b = items.alias("b")
        reply_at = (
            select(func.min(b.c.created_at))
            .where(
                b.c.author_is_brand.is_(True),
                b.c.platform == c.c.platform,
                b.c.created_at > c.c.created_at,
                or_(
                    and_(
                        c.c.thread_id.is_not(None),
                        b.c.thread_id == c.c.thread_id,
                        or_(
                            c.c.channel.in_([ch.value for ch in _CONVERSATION_CHANNELS]),
                            c.c.parent_id.is_(None),
                            c.c.external_id == c.c.thread_id,
                        ),
                    ),
                    b.c.parent_id == c.c.external_id,
                ),
            )
            .correlate(c)
            .scalar_subquery()
        )
        responded = 0
        for id_chunk in _chunks(sorted(candidate_ids)):
            query = (
                select(c.c.id, c.c.status, sla.c.due_at, reply_at.label("reply_at"))
                .select_from(c.outerjoin(sla, sla.c.item_id == c.c.id))
                .where(
                    c.c.id.in_(id_chunk),
                    c.c.needs_reply.is_(True),
                    c.c.status.in_(_OPEN),
                    c.c.author_is_brand.is_(False),
                    sla.c.first_response_at.is_(None),
                )
                .order_by(c.c.id)
            )
            for m in conn.execute(query).mappings().all():
                answered: datetime | None = m["reply_at"]
                if answered is None:
                    continue
                done = conn.execute(
                    update(items)
                    .where(items.c.id == m["id"], items.c.status.in_(_OPEN))
                    .values(status=Status.RESPONDED.value)
                )
                if done.rowcount != 1:
                    continue
                due: datetime | None = m["due_at"]
                conn.execute(
                    update(sla)
                    .where(sla.c.item_id == m["id"], sla.c.first_response_at.is_(None))
                    .values(
                        first_response_at=answered,
                        breached=due is not None and answered > due,
                        updated_at=now,
                    )
                )
                conn.execute(
                    insert(events).values(
                        item_id=m["id"],
                        kind="response_detected",
                        actor="system",
                        at=now,
                        from_value=m["status"],
                        to_value=Status.RESPONDED.value,
                        note=f"brand reply at {_iso(answered)}",
                    )
                )
                responded += 1
        return responded

    # -- cursors and runs --------------------------------------------------------------------

    def get_cursor(self, source: str) -> dict[str, Any] | None:
        """Where ``source`` left off, as last committed together with its items."""
        with self._begin() as conn:
            value = conn.execute(
                select(cursors.c.value).where(cursors.c.source == source)
            ).scalar_one_or_none()
        return dict(value) if value is not None else None

    def awaiting_response(
        self, source: str, *, since: datetime, limit: int = 500
    ) -> list[AwaitingItem]:
        """Customer items of ``source`` created after ``since`` that still wait for a reply.

        Collectors that can see replies made outside careradar (Reddit comment trees, app-store
        developer responses) poll these and report the brand's reply as an item, which the store
        then links as the response. Newest first, at most ``limit``.
        """
        query = (
            select(
                items.c.external_id,
                items.c.thread_id,
                items.c.url,
                items.c.created_at,
                sla.c.due_at,
            )
            .join(sla, sla.c.item_id == items.c.id)
            .where(
                items.c.source == source,
                items.c.needs_reply.is_(True),
                items.c.author_is_brand.is_(False),
                sla.c.first_response_at.is_(None),
                items.c.created_at >= utc(since),
                items.c.status.in_([s.value for s in Status if s.is_open]),
            )
            .order_by(items.c.created_at.desc())
            .limit(limit)
        )
        with self._begin() as conn:
            return [
                AwaitingItem(
                    external_id=r.external_id,
                    thread_id=r.thread_id,
                    url=r.url,
                    created_at=r.created_at,
                    due_at=r.due_at,
                )
                for r in conn.execute(query)
            ]

    def productive_runs(self, source: str, *, since: datetime) -> list[datetime]:
        """Start times (oldest first) of ``source``'s runs since ``since`` that stored new items.

        Collector health learns a source's normal rhythm from these gaps.
        """
        runs = collector_runs.c
        query = (
            select(runs.started_at)
            .where(runs.source == source, runs.items_new > 0, runs.started_at >= utc(since))
            .order_by(runs.started_at)
        )
        with self._begin() as conn:
            return [r.started_at for r in conn.execute(query)]

    def firing_alerts(self, source: str | None = None) -> list[dict[str, Any]]:
        """Alerts currently firing (oldest first), optionally only those of one source."""
        query = select(alerts).where(alerts.c.state == "firing").order_by(alerts.c.first_at)
        if source is not None:
            query = query.where(alerts.c.source == source)
        with self._begin() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def start_run(self, source: str, *, started_at: datetime | None = None) -> int:
        """Record that a collector cycle began; returns the run id for ``finish_run``."""
        started = utc(started_at) if started_at is not None else now_utc()
        with self._begin(write=True) as conn:
            # A run still 'running' from before was cut off (kill -9, power loss): say so, so
            # `careradar status` does not show it running forever.
            conn.execute(
                update(collector_runs)
                .where(
                    collector_runs.c.source == source,
                    collector_runs.c.status == "running",
                    collector_runs.c.started_at <= started,
                )
                .values(
                    status="error",
                    finished_at=started,
                    error="interrupted: the process ended before this run finished",
                )
            )
            run_id = conn.execute(
                insert(collector_runs)
                .values(source=source, started_at=started, status="running")
                .returning(collector_runs.c.id)
            ).scalar_one()
        return int(run_id)

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        seen: int = 0,
        new: int = 0,
        updated: int = 0,
        duplicate: int = 0,
        bad: int = 0,
        error: str | None = None,
        lag_seconds: float | None = None,
        newest_created_at: datetime | None = None,
    ) -> None:
        if status not in RUN_STATUSES or status == "running":
            valid = ", ".join(s for s in RUN_STATUSES if s != "running")
            raise ValueError(f"unknown run status {status!r}; valid values are: {valid}")
        newest = utc(newest_created_at) if newest_created_at is not None else None
        with self._begin(write=True) as conn:
            done = conn.execute(
                update(collector_runs)
                .where(collector_runs.c.id == run_id)
                .values(
                    finished_at=now_utc(),
                    status=status,
                    items_seen=seen,
                    items_new=new,
                    items_updated=updated,
                    items_duplicate=duplicate,
                    items_bad=bad,
                    error=self._scrub(error) if error else None,
                    lag_seconds=lag_seconds,
                    newest_created_at=newest,
                )
            )
            if done.rowcount != 1:
                raise NotFound(f"collector run {run_id} does not exist")
        if new >= ANALYZE_AFTER_NEW and self._engine.dialect.name == "postgresql":
            self._analyze()

    def _analyze(self) -> None:
        """Refresh PostgreSQL's planner statistics after a bulk load.

        A fresh database has none, so until autovacuum gets round to it the planner picks slow
        plans for the (source, external_id) lookups of the very next run (measured: a re-run of
        5,000 unchanged items at 1,410/s before ANALYZE, 3,616/s after).
        """
        try:
            with self._engine.connect() as conn:
                for table in ("items", "classifications", "sla"):
                    conn.execute(text(f"ANALYZE {table}"))  # fixed names, no user input
                conn.commit()
        except DBAPIError as e:  # statistics are an optimisation, never a failure
            log.warning("ANALYZE after a bulk load failed: %s", _first_line(e))

    def source_status(self, sources: Sequence[str] | None = None) -> list[SourceStatus]:
        """Health per source. Sources named in ``sources`` that never ran are included with
        empty fields, so a misconfigured, never-started collector is visible too."""
        runs = collector_runs.c
        with self._begin() as conn:
            if sources is None:
                names = sorted(
                    set(conn.execute(select(runs.source).distinct()).scalars())
                    | set(conn.execute(select(items.c.source).distinct()).scalars())
                )
            else:
                names = list(dict.fromkeys(sources))
            result = []
            for name in names:
                result.append(self._source_status(conn, name))
        return result

    def _source_status(self, conn: Connection, name: str) -> SourceStatus:
        runs = collector_runs.c
        newest_first = (runs.started_at.desc(), runs.id.desc())
        mine = runs.source == name

        def first(*conditions: ColumnElement[bool]) -> RowMapping | None:
            query = select(collector_runs).where(mine, *conditions).order_by(*newest_first)
            return conn.execute(query.limit(1)).mappings().first()

        last = first()
        success = first(runs.status.in_(("ok", "partial")))
        errored = first(runs.error.is_not(None), runs.error != "")
        finished = first(runs.status != "running")
        measured = first(runs.lag_seconds.is_not(None))
        streak = select(func.count()).where(mine, runs.status == "error")
        if success is not None:
            streak = streak.where(
                or_(
                    runs.started_at > success["started_at"],
                    and_(runs.started_at == success["started_at"], runs.id > success["id"]),
                )
            )
        return SourceStatus(
            source=name,
            last_run_at=last["started_at"] if last else None,
            last_status=last["status"] if last else None,
            last_success_at=(success["finished_at"] or success["started_at"]) if success else None,
            last_error=errored["error"] if errored else None,
            runs=conn.execute(select(func.count()).where(mine)).scalar_one(),
            consecutive_failures=conn.execute(streak).scalar_one(),
            items_total=conn.execute(
                select(func.count()).select_from(items).where(items.c.source == name)
            ).scalar_one(),
            items_last_run=finished["items_seen"] if finished else None,
            bad_total=conn.execute(
                select(func.count()).select_from(bad_inputs).where(bad_inputs.c.source == name)
            ).scalar_one(),
            lag_seconds=measured["lag_seconds"] if measured else None,
        )

    # -- reading items -----------------------------------------------------------------------

    @staticmethod
    def _newest_classification() -> Any:
        return (
            select(classifications.c.id)
            .where(classifications.c.item_id == items.c.id)
            .order_by(classifications.c.created_at.desc(), classifications.c.id.desc())
            .limit(1)
            .correlate(items)
            .scalar_subquery()
        )

    def _row_select(self) -> Select[Any]:
        cl = classifications.c
        joined = items.outerjoin(classifications, cl.id == self._newest_classification()).outerjoin(
            sla, sla.c.item_id == items.c.id
        )
        label_columns = []
        for task, label in _LABEL_JOINS.items():
            joined = joined.outerjoin(
                label, and_(label.c.item_id == items.c.id, label.c.task == task)
            )
            label_columns += [label.c[col].label(f"label_{task}_{col}") for col in _LABEL_COLUMNS]
        return select(
            items,
            cl.model_version,
            cl.sentiment,
            cl.sentiment_scores,
            cl.is_complaint,
            cl.complaint_score,
            cl.urgency,
            cl.topics,
            cl.entities,
            cl.language.label("c_language"),
            cl.language_supported,
            sla.c.policy,
            sla.c.target_seconds,
            sla.c.due_at,
            sla.c.at_risk_at,
            sla.c.first_response_at,
            sla.c.breached,
            *label_columns,
        ).select_from(joined)

    @staticmethod
    def _effective_sentiment() -> ColumnElement[Any]:
        """The sentiment people see: their label where there is one, else the model's."""
        return func.coalesce(_LABEL_JOINS["sentiment"].c.value, classifications.c.sentiment)

    @staticmethod
    def _flag_conditions(now: datetime) -> dict[Flag, ColumnElement[bool]]:
        """SQL twins of :func:`_compute_flags`, for filtering and ordering in the database.
        A human label (``_row_select``'s label joins) overrides the model's value."""
        cl = classifications.c
        is_open = items.c.status.in_(_OPEN)
        unanswered = and_(is_open, sla.c.first_response_at.is_(None))
        complaint = _LABEL_JOINS["complaint"].c.value
        urgency = func.coalesce(_LABEL_JOINS["urgency"].c.value, cl.urgency)
        return {
            Flag.NEGATIVE: Store._effective_sentiment() == Sentiment.NEGATIVE.value,
            Flag.COMPLAINT: or_(
                complaint == "yes", and_(complaint.is_(None), cl.is_complaint.is_(True))
            ),
            Flag.URGENT: urgency == Urgency.HIGH.value,
            Flag.AT_RISK: and_(unanswered, sla.c.at_risk_at <= now, sla.c.due_at >= now),
            Flag.OVERDUE: and_(unanswered, sla.c.due_at < now),
        }

    @staticmethod
    def _to_row(m: RowMapping, now: datetime) -> ItemRow:
        status = Status(m["status"])
        entities = tuple(
            Entity(label=e["label"], text=e["text"], start=e["start"], end=e["end"])
            for e in (m["entities"] or [])
        )
        human = _row_labels(m)
        # A person's label beats the model's output wherever the item is shown.
        sentiment = str(human["sentiment"].value) if "sentiment" in human else m["sentiment"]
        is_complaint = (
            human["complaint"].value == "yes"
            if "complaint" in human
            else None
            if m["is_complaint"] is None
            else bool(m["is_complaint"])
        )
        urgency = str(human["urgency"].value) if "urgency" in human else m["urgency"]
        topics = dict.fromkeys(human["topics"].value, 1.0) if "topics" in human else m["topics"]
        return ItemRow(
            id=m["id"],
            source=m["source"],
            external_id=m["external_id"],
            channel=Channel(m["channel"]),
            platform=m["platform"],
            brand=m["brand"],
            thread_id=m["thread_id"],
            parent_id=m["parent_id"],
            author=m["author"],
            author_is_brand=bool(m["author_is_brand"]),
            url=m["url"],
            title=m["title"],
            text=m["text"],
            language=m["language"] or m["c_language"],
            content_hash=m["content_hash"],
            fingerprint=m["fingerprint"],
            duplicate_of_id=m["duplicate_of_id"],
            created_at=m["created_at"],
            collected_at=m["collected_at"],
            updated_at=m["updated_at"],
            raw=m["raw"] or {},
            status=status,
            assignee=m["assignee"],
            needs_reply=bool(m["needs_reply"]),
            model_version=m["model_version"],
            sentiment=Sentiment(sentiment) if sentiment else None,
            sentiment_scores=m["sentiment_scores"],
            is_complaint=is_complaint,
            complaint_score=m["complaint_score"],
            urgency=Urgency(urgency) if urgency else None,
            topics=topics,
            entities=entities,
            language_supported=(
                None if m["language_supported"] is None else bool(m["language_supported"])
            ),
            policy=m["policy"],
            target_seconds=m["target_seconds"],
            due_at=m["due_at"],
            at_risk_at=m["at_risk_at"],
            first_response_at=m["first_response_at"],
            breached=None if m["breached"] is None else bool(m["breached"]),
            flags=_compute_flags(
                status=status,
                sentiment=sentiment,
                is_complaint=is_complaint,
                urgency=urgency,
                first_response_at=m["first_response_at"],
                at_risk_at=m["at_risk_at"],
                due_at=m["due_at"],
                now=now,
            ),
            labels=human,
        )

    def _rows(self, conn: Connection, query: Select[Any], now: datetime) -> list[ItemRow]:
        return [self._to_row(m, now) for m in conn.execute(query).mappings()]

    def triage(
        self,
        *,
        now: datetime | None = None,
        limit: int = 50,
        source: str | None = None,
        channel: str | None = None,
        brand: str | None = None,
        flag: str | None = None,
        assignee: str | None = None,
    ) -> list[ItemRow]:
        """The queue of what needs a human, most pressing first.

        An item is in the queue when it is open (new/acknowledged), needs a reply, is not a
        cross-post duplicate, and either carries a flag or came through a one-to-one channel
        (chat, email), where every unanswered message is someone waiting.

        Order: *live* items first, those not yet due or overdue by less than their own target
        length and at most an hour (a chat 30 s late, a tweet 20 minutes late), soonest due
        first, urgent before normal; then answered-and-reopened items (no clock running); then
        the *backlog* of long-overdue items, most recently due first. Sorting by due
        time alone would put week-old posts above the chat that can still be saved. The live
        test needs per-row date arithmetic, which SQLite and PostgreSQL spell differently, so
        the open queue is sorted here rather than in SQL.
        """
        moment = utc(now) if now is not None else now_utc()
        conditions = self._flag_conditions(moment)
        query = self._row_select().where(
            items.c.status.in_(_OPEN),
            items.c.needs_reply.is_(True),
            items.c.duplicate_of_id.is_(None),
            or_(*conditions.values(), items.c.channel.in_(_REPLY_CHANNELS)),
        )
        if flag is not None:
            try:
                wanted = Flag(flag)
            except ValueError:
                valid = ", ".join(f.value for f in Flag)
                raise ValueError(f"unknown flag {flag!r}; valid values are: {valid}") from None
            query = query.where(conditions[wanted])
        query = self._filters(query, source=source, channel=channel, brand=brand)
        if assignee is not None:
            query = query.where(items.c.assignee == assignee)
        with self._begin() as conn:
            rows = self._rows(conn, query, moment)
        rows.sort(key=lambda r: _queue_key(r, moment))
        return rows[:limit]

    @staticmethod
    def _filters(
        query: Select[Any],
        *,
        source: str | None = None,
        channel: str | None = None,
        brand: str | None = None,
    ) -> Select[Any]:
        if source is not None:
            query = query.where(items.c.source == source)
        if channel is not None:
            query = query.where(items.c.channel == Channel(channel).value)
        if brand is not None:
            query = query.where(items.c.brand == brand)
        return query

    def list_items(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        source: str | None = None,
        channel: str | None = None,
        brand: str | None = None,
        status: str | None = None,
        sentiment: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        search: str | None = None,
        include_duplicates: bool = False,
        now: datetime | None = None,
    ) -> list[ItemRow]:
        """Items newest first. ``since`` is inclusive, ``until`` exclusive; ``search`` is a
        case-insensitive substring of text or title, taken literally (``%`` and ``_`` are not
        wildcards)."""
        moment = utc(now) if now is not None else now_utc()
        query = self._filters(self._row_select(), source=source, channel=channel, brand=brand)
        if status is not None:
            query = query.where(items.c.status == Status(status).value)
        if sentiment is not None:
            query = query.where(self._effective_sentiment() == Sentiment(sentiment).value)
        if since is not None:
            query = query.where(items.c.created_at >= utc(since))
        if until is not None:
            query = query.where(items.c.created_at < utc(until))
        if search:
            query = query.where(
                or_(
                    items.c.text.icontains(search, autoescape=True),
                    items.c.title.icontains(search, autoescape=True),
                )
            )
        if not include_duplicates:
            query = query.where(items.c.duplicate_of_id.is_(None))
        query = query.order_by(items.c.created_at.desc(), items.c.id.desc())
        query = query.limit(limit).offset(offset)
        with self._begin() as conn:
            return self._rows(conn, query, moment)

    def get_item(self, item_id: int, *, now: datetime | None = None) -> ItemRow | None:
        moment = utc(now) if now is not None else now_utc()
        with self._begin() as conn:
            rows = self._rows(conn, self._row_select().where(items.c.id == item_id), moment)
        return rows[0] if rows else None

    def find_item(
        self, source: str, external_id: str, *, now: datetime | None = None
    ) -> ItemRow | None:
        moment = utc(now) if now is not None else now_utc()
        query = self._row_select().where(
            items.c.source == source, items.c.external_id == external_id
        )
        with self._begin() as conn:
            rows = self._rows(conn, query, moment)
        return rows[0] if rows else None

    def item_events(self, item_id: int) -> list[dict[str, Any]]:
        """The audit trail of one item in the order it was recorded (``at`` is an aware UTC
        datetime; it may be earlier than a previous event's when an action is back-dated,
        e.g. "responded at 10:00" entered at noon)."""
        query = select(events).where(events.c.item_id == item_id).order_by(events.c.id)
        with self._begin() as conn:
            return [dict(m) for m in conn.execute(query).mappings()]

    def iter_export(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        source: str | None = None,
        channel: str | None = None,
        now: datetime | None = None,
        batch_size: int = 1000,
    ) -> Iterator[ItemRow]:
        """Every matching item (duplicates included) in id order, fetched page by page.

        Keyset pages (``id > last``) keep memory flat and hold no transaction or server-side
        cursor open while the caller writes a file, so a long export never blocks writers or
        pins an old snapshot; ids only grow, so the order is stable.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        moment = utc(now) if now is not None else now_utc()
        base = self._filters(self._row_select(), source=source, channel=channel)
        if since is not None:
            base = base.where(items.c.created_at >= utc(since))
        if until is not None:
            base = base.where(items.c.created_at < utc(until))
        last_id = 0
        while True:
            query = base.where(items.c.id > last_id).order_by(items.c.id).limit(batch_size)
            with self._begin() as conn:
                page = self._rows(conn, query, moment)
            yield from page
            if len(page) < batch_size:
                return
            last_id = page[-1].id

    def count_items(self, *, source: str | None = None) -> int:
        query = select(func.count()).select_from(items)
        if source is not None:
            query = query.where(items.c.source == source)
        with self._begin() as conn:
            return int(conn.execute(query).scalar_one())

    def count(self, table: str) -> int:
        """Rows in one of the store's tables (a whitelist: the name never reaches SQL text)."""
        if table not in metadata.tables:
            raise ValueError(f"unknown table {table!r}; valid values are: {', '.join(TABLE_NAMES)}")
        with self._begin() as conn:
            return int(
                conn.execute(select(func.count()).select_from(metadata.tables[table])).scalar_one()
            )

    def bad_inputs(self, *, source: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Stored bad records, most recently seen first."""
        query = select(bad_inputs)
        if source is not None:
            query = query.where(bad_inputs.c.source == source)
        query = query.order_by(bad_inputs.c.last_seen_at.desc(), bad_inputs.c.id.desc())
        with self._begin() as conn:
            return [dict(m) for m in conn.execute(query.limit(limit)).mappings()]

    # -- workflow ----------------------------------------------------------------------------

    def _require_item(self, conn: Connection, item_id: int, column: Any) -> Any:
        row = conn.execute(
            select(items.c.id, column).where(items.c.id == item_id).with_for_update()
        ).first()
        if row is None:
            raise NotFound(
                f"item {item_id} does not exist",
                hint="list items with: careradar items list",
            )
        return row[1]

    def set_status(
        self,
        item_id: int,
        status: Status | str,
        *,
        actor: str,
        note: str | None = None,
        at: datetime | None = None,
    ) -> ItemRow:
        """Move an item through the workflow and record who did it.

        Marking an item ``responded`` also stops its SLA clock (first response = ``at``) if
        response detection has not already done so. Setting the status it already has is a
        no-op and writes no event.
        """
        new_status = Status(status)
        moment = utc(at) if at is not None else now_utc()
        with self._begin(write=True) as conn:
            old = self._require_item(conn, item_id, items.c.status)
            if old != new_status.value:
                conn.execute(
                    update(items).where(items.c.id == item_id).values(status=new_status.value)
                )
                conn.execute(
                    insert(events).values(
                        item_id=item_id,
                        kind="status",
                        actor=actor,
                        at=moment,
                        from_value=old,
                        to_value=new_status.value,
                        note=note,
                    )
                )
            if new_status is Status.RESPONDED:
                conn.execute(
                    update(sla)
                    .where(sla.c.item_id == item_id, sla.c.first_response_at.is_(None))
                    .values(
                        first_response_at=moment,
                        breached=sla.c.due_at < moment,
                        updated_at=now_utc(),
                    )
                )
            rows = self._rows(conn, self._row_select().where(items.c.id == item_id), now_utc())
        return rows[0]

    def assign(self, item_id: int, assignee: str | None, *, actor: str) -> ItemRow:
        """Give an item to someone (None unassigns); recorded as an ``assign`` event."""
        with self._begin(write=True) as conn:
            old = self._require_item(conn, item_id, items.c.assignee)
            if old != assignee:
                conn.execute(update(items).where(items.c.id == item_id).values(assignee=assignee))
                conn.execute(
                    insert(events).values(
                        item_id=item_id,
                        kind="assign",
                        actor=actor,
                        at=now_utc(),
                        from_value=old,
                        to_value=assignee,
                    )
                )
            rows = self._rows(conn, self._row_select().where(items.c.id == item_id), now_utc())
        return rows[0]

    # -- human labels ------------------------------------------------------------------------

    def set_label(
        self,
        item_id: int,
        task: str,
        value: Any,
        *,
        actor: str,
        note: str | None = None,
        taxonomy: Iterable[str] | None = None,
    ) -> ItemRow:
        """Record a person's label for one task of an item; it overrides the model wherever
        the item is shown (queue flags included) and trains the heads (``train --from-store``).

        ``task`` is one of :data:`LABEL_TASKS`; ``value`` one of :data:`LABEL_VALUES` (case
        ignored; complaint also takes a bool) or, for ``topics``, topic names (a list or
        ``"a;b"``; empty = about none of them) checked against ``taxonomy`` (the configured
        taxonomy's names; default: the built-in taxonomy). A value that is not valid is a
        :class:`ConfigError` naming the valid ones. Setting the label the item already has is a
        no-op; any change is also an ``events`` row (kind ``label``, values ``task=value``).
        """
        return self.set_labels(item_id, {task: value}, actor=actor, note=note, taxonomy=taxonomy)

    def clear_label(
        self, item_id: int, task: str, *, actor: str, note: str | None = None
    ) -> ItemRow:
        """Remove a person's label (the model's value shows again); a no-op when none."""
        return self.set_labels(item_id, {}, clear=[task], actor=actor, note=note)

    def set_labels(
        self,
        item_id: int,
        values: Mapping[str, Any],
        *,
        clear: Iterable[str] = (),
        actor: str,
        note: str | None = None,
        taxonomy: Iterable[str] | None = None,
    ) -> ItemRow:
        """Set several labels and clear others in one transaction (all or nothing); see
        :meth:`set_label`. Everything is validated before anything is written."""
        wanted = {
            _label_task(task): _label_value(task, value, taxonomy) for task, value in values.items()
        }
        cleared = [_label_task(task) for task in clear]
        both = sorted(set(wanted) & set(cleared))
        if both:
            raise ConfigError(
                f"cannot set and clear the {both[0]} label at once",
                hint="give either the label or --clear for a task",
            )
        moment = now_utc()
        with self._begin(write=True) as conn:
            self._require_item(conn, item_id, items.c.id)  # locks the item: one labeller a time
            current = {
                m["task"]: m
                for m in conn.execute(select(labels).where(labels.c.item_id == item_id)).mappings()
            }
            model = (
                conn.execute(
                    select(
                        classifications.c.model_version,
                        classifications.c.sentiment,
                        classifications.c.is_complaint,
                        classifications.c.urgency,
                        classifications.c.topics,
                    )
                    .where(classifications.c.item_id == item_id)
                    .order_by(classifications.c.created_at.desc(), classifications.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )

            def record(task: str, old: str | None, new: str | None) -> None:
                conn.execute(
                    insert(events).values(
                        item_id=item_id,
                        kind="label",
                        actor=actor,
                        at=moment,
                        from_value=None if old is None else f"{task}={old}",
                        to_value=None if new is None else f"{task}={new}",
                        note=note,
                    )
                )

            for task, value in wanted.items():
                old = current.get(task)
                if old is not None and old["value"] == value:
                    continue
                fields_ = {
                    "value": value,
                    "model_value": None if model is None else _model_label(task, model),
                    "model_version": None if model is None else model["model_version"],
                    "actor": actor,
                    "note": note,
                    "labelled_at": moment,
                }
                if old is None:
                    conn.execute(insert(labels).values(item_id=item_id, task=task, **fields_))
                else:
                    conn.execute(update(labels).where(labels.c.id == old["id"]).values(**fields_))
                record(task, None if old is None else old["value"], value)
            for task in cleared:
                old = current.get(task)
                if old is None:
                    continue
                conn.execute(delete(labels).where(labels.c.id == old["id"]))
                record(task, old["value"], None)
            rows = self._rows(conn, self._row_select().where(items.c.id == item_id), now_utc())
        return rows[0]

    def open_clock(self, item_id: int, clock: SlaState, *, actor: str, note: str) -> ItemRow:
        """Start a reply clock on an item the pipeline decided needs no reply, because a
        person says it does (``triage label --complaint yes`` / ``--urgency high``).

        ``clock`` comes from the SLA policy (:func:`pipeline.sla.start_clock`, which needs the
        config the store does not have). The item gets ``needs_reply`` and the SLA row, and
        leaves 'ignored' for ``clock.status`` the way a new classification would move it
        (:meth:`_update_existing_items`): not when a person set its status, and with a
        ``status`` event by ``actor`` saying ``note``. Nothing changes for an item that already
        needs a reply, the brand's own messages or a cross-post (its first copy's clock counts).
        Returns the item's row.
        """
        moment = now_utc()
        with self._begin(write=True) as conn:
            self._require_item(conn, item_id, items.c.id)  # locks the item
            m = (
                conn.execute(
                    select(
                        items.c.status,
                        items.c.needs_reply,
                        items.c.author_is_brand,
                        items.c.duplicate_of_id,
                        sla.c.item_id.is_not(None).label("has_sla"),
                    )
                    .select_from(items.outerjoin(sla, sla.c.item_id == items.c.id))
                    .where(items.c.id == item_id)
                )
                .mappings()
                .one()
            )
            if not (m["needs_reply"] or m["author_is_brand"] or m["duplicate_of_id"] is not None):
                conn.execute(update(items).where(items.c.id == item_id).values(needs_reply=True))
                if not m["has_sla"]:
                    conn.execute(insert(sla).values(**self._sla_values(item_id, clock, moment)))
                if m["status"] == Status.IGNORED and not self._status_set_by_people(
                    conn, [item_id]
                ):
                    self._leave_ignored(
                        conn, item_id, clock.status, actor=actor, at=moment, note=note
                    )
            rows = self._rows(conn, self._row_select().where(items.c.id == item_id), now_utc())
        return rows[0]

    def label_counts(self) -> dict[str, int]:
        """How many items carry a human label, per task (tasks without labels are left out)."""
        query = select(labels.c.task, func.count()).group_by(labels.c.task)
        with self._begin() as conn:
            return {task: int(n) for task, n in conn.execute(query)}

    def iter_labels(
        self, task: str | None = None, *, batch_size: int = 1000
    ) -> Iterator[LabelledItem]:
        """Every human label (of ``task``, or all) with its item, oldest label row first.

        Keyset pages like :meth:`iter_export`: no transaction stays open while the caller
        trains or writes a file.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        cl = classifications.c
        base = select(
            labels.c.id.label("label_id"),
            labels.c.task,
            labels.c.value,
            labels.c.actor,
            labels.c.labelled_at,
            labels.c.model_value,
            labels.c.model_version,
            items.c.id.label("item_id"),
            *(
                items.c[name]
                for name in (
                    "source",
                    "channel",
                    "external_id",
                    "text",
                    "created_at",
                    "collected_at",
                    "platform",
                    "brand",
                    "thread_id",
                    "parent_id",
                    "author",
                    "author_is_brand",
                    "url",
                    "title",
                    "language",
                )
            ),
            cl.language.label("c_language"),
        ).select_from(
            labels.join(items, items.c.id == labels.c.item_id).outerjoin(
                classifications, cl.id == self._newest_classification()
            )
        )
        if task is not None:
            base = base.where(labels.c.task == _label_task(task))
        last_id = 0
        while True:
            query = base.where(labels.c.id > last_id).order_by(labels.c.id).limit(batch_size)
            with self._begin() as conn:
                page = list(conn.execute(query).mappings())
            for m in page:
                item = Item(
                    source=m["source"],
                    channel=Channel(m["channel"]),
                    external_id=m["external_id"],
                    text=m["text"],
                    created_at=m["created_at"],
                    platform=m["platform"],
                    brand=m["brand"],
                    thread_id=m["thread_id"],
                    parent_id=m["parent_id"],
                    author=m["author"],
                    author_is_brand=bool(m["author_is_brand"]),
                    url=m["url"],
                    title=m["title"],
                    language=m["language"],
                    collected_at=m["collected_at"],
                )
                yield LabelledItem(
                    item_id=m["item_id"],
                    item=item,
                    language=m["language"] or m["c_language"],
                    task=m["task"],
                    value=_decode_label(m["task"], m["value"]),
                    labelled_at=m["labelled_at"],
                    actor=m["actor"],
                    model_value=_decode_optional(m["task"], m["model_value"]),
                    model_version=m["model_version"],
                )
            if len(page) < batch_size:
                return
            last_id = page[-1]["label_id"]

    # -- alert ledger ------------------------------------------------------------------------

    def record_alert(
        self,
        key: str,
        *,
        kind: str,
        reason: str,
        source: str | None = None,
        item_id: int | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> bool:
        """Note that the condition ``key`` holds; True only when it was not already firing.

        This makes alerting "once per incident": the caller sends a notification only on
        True, and repeated checks of a still-broken source stay quiet until it resolves.
        """
        now = now_utc()
        values = {
            "kind": kind,
            "source": source,
            "item_id": item_id,
            "state": "firing",
            "reason": reason,
            "payload": dict(payload or {}),
            "first_at": now,
            "last_sent_at": now,
            "resolved_at": None,
        }
        with self._begin(write=True) as conn:
            inserted = conn.execute(
                self._insert(alerts)
                .values(key=key, **values)
                .on_conflict_do_nothing(index_elements=[alerts.c.key])
                .returning(alerts.c.id)
            ).first()
            if inserted is not None:
                return True
            refired = conn.execute(
                update(alerts)
                .where(alerts.c.key == key, alerts.c.state == "resolved")
                .values(**values)
            )
            if refired.rowcount == 1:
                return True
            conn.execute(
                update(alerts)
                .where(alerts.c.key == key)
                .values(reason=reason, payload=values["payload"])
            )
            return False

    def resolve_alert(self, key: str) -> bool:
        """Mark ``key`` resolved; True if it was firing (so a "resolved" note can be sent)."""
        with self._begin(write=True) as conn:
            done = conn.execute(
                update(alerts)
                .where(alerts.c.key == key, alerts.c.state == "firing")
                .values(state="resolved", resolved_at=now_utc())
            )
            return done.rowcount == 1


def _install_sqlite_hooks(engine: Engine, *, wal: bool) -> None:
    """SQLite settings that must hold on every connection, plus explicit BEGINs.

    WAL lets readers (the web board) work while a collector writes; foreign keys are off by
    default in SQLite; busy_timeout makes a second writer wait instead of failing at once.
    pysqlite's own transaction handling is switched off so SQLAlchemy emits BEGIN itself --
    ``BEGIN IMMEDIATE`` for writes, which takes the write lock before the first read.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        try:
            if wal:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("careradar_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
