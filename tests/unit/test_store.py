"""The SQL store, on SQLite and on PostgreSQL (the ``store`` fixture runs each test on both).

What is pinned down here: idempotent upserts, one transaction per batch (cursor included),
response detection in both arrival orders, the triage queue's order and flags, the audit
trail, UTC timestamps, literal search, streaming export and the migration/opening rules.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, select
from sqlalchemy.exc import StatementError
from sqlalchemy.pool import NullPool

from pipeline.errors import NotFound, StoreError
from pipeline.items import BadInputRecord, Channel, Flag, Status
from pipeline.sinks import store as store_module
from pipeline.sinks.schema import TABLE_NAMES, UTCDateTime, collector_runs, cursors, metadata
from pipeline.sinks.store import Store, WriteResult, redact_url
from tests.conftest import ItemFactory, ProcessedFactory
from tests.helpers import T0, fresh_postgres_url

# --- opening and migrating -------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (no tables, no alembic revision)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        with fresh_postgres_url() as url:
            yield url


def test_upgrade_from_empty_reaches_head_and_matches_schema(empty_url: str) -> None:
    store = Store.open(empty_url, migrate=False)
    try:
        assert store.current_revision() is None
        before, after = store.upgrade()
        assert (before, after) == (None, store.head_revision())
        assert store.current_revision() == store.head_revision() == "0002"
        assert store.upgrade() == ("0002", "0002")  # a second upgrade is a no-op
    finally:
        store.close()
    engine = create_engine(empty_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert set(TABLE_NAMES) <= set(inspect(conn).get_table_names())
            # The hand-written migration creates exactly what schema.py describes.
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
            assert diff == []
    finally:
        engine.dispose()


def test_sqlite_open_creates_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "careradar.db"
    store = Store.open(f"sqlite:///{path}")
    try:
        assert path.exists()
        assert store.current_revision() == "0002"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        store.close()


def test_sqlite_directory_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the directory"):
        Store.open(f"sqlite:///{blocker / 'sub' / 'careradar.db'}")


def test_open_database_of_a_newer_careradar_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store.open(url).close()
    with sqlite3.connect(tmp_path / "x.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    for migrate in (None, True):
        with pytest.raises(StoreError) as err:
            Store.open(url, migrate=migrate)
        assert "revision 9999" in err.value.message
        assert err.value.hint is not None and "newer careradar" in err.value.hint


def test_open_unreachable_database_hides_password() -> None:
    url = "postgresql+psycopg://careradar:s3cret-pw@127.0.0.1:1/careradar"
    with pytest.raises(StoreError) as err:
        Store.open(url)
    message = f"{err.value.message} {err.value.hint}"
    assert "s3cret-pw" not in message
    assert "careradar:***@127.0.0.1:1/careradar" in err.value.message
    assert err.value.hint is not None and "running" in err.value.hint


def test_open_rejects_bad_and_unsupported_urls() -> None:
    with pytest.raises(StoreError, match="invalid database URL"):
        Store.open("not a url at all")
    with pytest.raises(StoreError, match="unsupported database") as err:
        Store.open("mysql://u:topsecret@localhost/db")
    assert "topsecret" not in err.value.message


def test_redact_url() -> None:
    assert (
        redact_url("postgresql+psycopg://u:pw@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"
    )
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"
    assert "pw" not in redact_url("weird://u:pw@[::1")


def test_threads_migrating_different_databases_do_not_collide(tmp_path: Path) -> None:
    """Alembic keeps its context in module globals; the store serialises its use."""
    barrier = threading.Barrier(4)
    results: list[Any] = []

    def open_one(n: int) -> None:
        barrier.wait()
        try:
            with Store.open(f"sqlite:///{tmp_path / f'db{n}.db'}") as store:
                results.append(store.current_revision())
        except Exception as exc:  # surfaced by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["0002"] * 4


def test_count_only_accepts_known_tables(store: Store) -> None:
    assert store.count("items") == 0
    with pytest.raises(ValueError, match="valid values are"):
        store.count("items; DROP TABLE items")


# --- writing ---------------------------------------------------------------------------------


def test_same_batch_twice_is_idempotent(store: Store, processed_factory: ProcessedFactory) -> None:
    batch = [processed_factory() for _ in range(3)]
    assert store.write_batch(batch) == WriteResult(new=3)
    assert store.write_batch(batch) == WriteResult(unchanged=3)
    assert store.count_items() == 3
    assert store.count("classifications") == 3
    assert store.count("sla") == 3
    assert store.count("events") == 0


def test_repeated_key_in_one_batch_keeps_the_last(
    store: Store, item_factory: ItemFactory, processed_factory: ProcessedFactory
) -> None:
    first = item_factory(external_id="same", text="first words")
    last = dataclasses.replace(first, text="last words")
    result = store.write_batch([processed_factory(first), processed_factory(last)])
    assert result == WriteResult(new=1)
    row = store.find_item("test-source", "same")
    assert row is not None and row.text == "last words"


def test_edit_updates_content_and_replaces_classification_but_keeps_workflow(
    store: Store, item_factory: ItemFactory, processed_factory: ProcessedFactory
) -> None:
    original = processed_factory(item_factory(text="the app is fine"), sentiment="neutral")
    store.write_batch([original])
    row = store.find_item(*original.item.key)
    assert row is not None
    store.set_status(row.id, Status.ACKNOWLEDGED, actor="ann")
    store.assign(row.id, "ann", actor="ann")

    edited_item = dataclasses.replace(original.item, text="the app is BROKEN", title="help")
    edited = processed_factory(edited_item, sentiment="negative", is_complaint=True)
    assert store.write_batch([edited]) == WriteResult(updated=1)

    after = store.get_item(row.id)
    assert after is not None
    assert (after.text, after.title) == ("the app is BROKEN", "help")
    assert after.content_hash == edited_item.content_hash != original.item.content_hash
    assert after.sentiment == "negative" and after.is_complaint is True
    assert store.count("classifications") == 1  # replaced, not added
    assert (after.status, after.assignee) == (Status.ACKNOWLEDGED, "ann")
    assert after.updated_at > row.updated_at
    assert store.existing([original.item.key])[original.item.key].content_hash == (
        edited_item.content_hash
    )


def test_classifications_are_kept_per_model_version(
    store: Store, item_factory: ItemFactory, processed_factory: ProcessedFactory
) -> None:
    item = item_factory()
    store.write_batch([processed_factory(item, model_version="test-1", sentiment="neutral")])
    newer = processed_factory(item, model_version="test-2", sentiment="negative")
    assert store.write_batch([newer]) == WriteResult(updated=1)
    # Re-writing the old version's result neither adds a row nor makes it the newest.
    again = processed_factory(item, model_version="test-1", sentiment="positive")
    assert store.write_batch([again]) == WriteResult(unchanged=1)

    assert store.count("classifications") == 2
    row = store.find_item(*item.key)
    assert row is not None
    assert (row.model_version, row.sentiment) == ("test-2", "negative")
    assert store.existing([item.key])[item.key].model_versions == frozenset({"test-1", "test-2"})


def test_existing_handles_more_keys_than_one_in_list(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    batch = [processed_factory() for _ in range(1203)]
    assert store.write_batch(batch).new == 1203
    keys = [p.item.key for p in batch] + [("test-source", "never-stored")]
    found = store.existing(keys)
    assert len(found) == 1203
    assert ("test-source", "never-stored") not in found
    assert found[batch[-1].item.key].model_versions == frozenset({"test-1"})


def test_item_without_sla_is_ignored_and_needs_no_reply(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    brand_post = processed_factory(author_is_brand=True)
    store.write_batch([brand_post])
    row = store.find_item(*brand_post.item.key)
    assert row is not None
    assert (row.status, row.needs_reply, row.due_at) == (Status.IGNORED, False, None)


def test_needs_reply_goes_false_to_true_and_reopens_unless_a_person_decided(
    store: Store, item_factory: ItemFactory, processed_factory: ProcessedFactory
) -> None:
    quiet, decided = item_factory(), item_factory()
    store.write_batch([processed_factory(quiet, needs_reply=False)] * 1)
    store.write_batch([processed_factory(decided, needs_reply=False)])
    decided_id = store.find_item(*decided.key).id  # type: ignore[union-attr]
    store.set_status(decided_id, "acknowledged", actor="ann")
    store.set_status(decided_id, "ignored", actor="ann", note="spam")

    result = store.write_batch(
        [processed_factory(quiet, needs_reply=True), processed_factory(decided, needs_reply=True)]
    )
    assert result == WriteResult(updated=2)
    reopened, kept = store.find_item(*quiet.key), store.find_item(*decided.key)
    assert reopened is not None and kept is not None
    assert (reopened.needs_reply, reopened.status, reopened.due_at is not None) == (
        True,
        Status.NEW,
        True,
    )
    assert [(e["kind"], e["actor"], e["to_value"]) for e in store.item_events(reopened.id)] == [
        ("status", "system", "new")
    ]
    assert (kept.needs_reply, kept.status) == (True, Status.IGNORED)
    # ... and needs_reply never goes back to False.
    assert store.write_batch([processed_factory(quiet, needs_reply=False)]) == WriteResult(
        unchanged=1
    )
    assert store.find_item(*quiet.key).needs_reply is True  # type: ignore[union-attr]


def test_duplicate_of_is_resolved_and_counted(
    store: Store, item_factory: ItemFactory, processed_factory: ProcessedFactory
) -> None:
    original = processed_factory(fingerprint="same-text")
    in_batch_copy = processed_factory(fingerprint="same-text", duplicate_of=original.item.key)
    result = store.write_batch([in_batch_copy, original])
    assert (result.new, result.duplicate) == (2, 1)
    later_copy = processed_factory(fingerprint="same-text", duplicate_of=original.item.key)
    assert store.write_batch([later_copy]) == WriteResult(new=1, duplicate=1)
    assert store.write_batch([later_copy]) == WriteResult(unchanged=1)

    original_id = store.find_item(*original.item.key).id  # type: ignore[union-attr]
    for copy in (in_batch_copy, later_copy):
        row = store.find_item(*copy.item.key)
        assert row is not None and row.duplicate_of_id == original_id
    assert [r.id for r in store.list_items()] == [original_id]
    assert len(store.list_items(include_duplicates=True)) == 3
    # An original that was never stored cannot be pointed at: kept as an original.
    orphan = processed_factory(duplicate_of=("test-source", "never-stored"))
    assert store.write_batch([orphan]) == WriteResult(new=1)
    assert store.find_item(*orphan.item.key).duplicate_of_id is None  # type: ignore[union-attr]


def test_find_cross_posts_returns_earliest_original_since(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    old = processed_factory(fingerprint="fp", created_at=T0 - timedelta(days=10))
    first = processed_factory(fingerprint="fp", created_at=T0)
    second = processed_factory(fingerprint="fp", created_at=T0 + timedelta(hours=1))
    copy = processed_factory(
        fingerprint="fp", created_at=T0 - timedelta(hours=1), duplicate_of=first.item.key
    )
    store.write_batch([second, copy, first, old])
    found = store.find_cross_posts(["fp", "unknown"], since=T0 - timedelta(days=1))
    assert found == {"fp": first.item.key}


def test_cursor_is_written_with_the_batch(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    assert store.get_cursor("feed") is None
    store.write_batch([processed_factory()], source="feed", cursor={"etag": "a", "n": 1})
    assert store.get_cursor("feed") == {"etag": "a", "n": 1}
    store.write_batch([], source="feed", cursor={"etag": "b", "n": 2})
    assert store.get_cursor("feed") == {"etag": "b", "n": 2}
    with pytest.raises(ValueError, match="source"):
        store.write_batch([], cursor={"etag": "c"})


@pytest.mark.parametrize("failing_step", ["_write_sla", "_write_cursor", "_detect_responses"])
def test_failure_mid_batch_commits_nothing(
    store: Store,
    processed_factory: ProcessedFactory,
    monkeypatch: pytest.MonkeyPatch,
    failing_step: str,
) -> None:
    """The cursor can never get ahead of the items: a crash anywhere rolls back both."""
    batch = [processed_factory() for _ in range(3)]
    bad = [BadInputRecord.from_raw("feed", "not JSON", "line 9", b"{")]
    original = getattr(Store, failing_step)

    def explode(self: Store, *args: Any, **kwargs: Any) -> Any:
        original(self, *args, **kwargs)
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(Store, failing_step, explode)
    with pytest.raises(RuntimeError, match="simulated crash"):
        store.write_batch(batch, bad=bad, source="feed", cursor={"offset": 3})
    for table in ("items", "classifications", "sla", "bad_inputs", "cursors", "events"):
        assert store.count(table) == 0, table
    assert store.get_cursor("feed") is None

    monkeypatch.undo()
    assert store.write_batch(batch, bad=bad, source="feed", cursor={"offset": 3}).new == 3
    assert store.get_cursor("feed") == {"offset": 3}


def test_lost_insert_race_is_retried_once(
    store: Store, processed_factory: ProcessedFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulate a concurrent writer: the first attempt does not see rows that exist, its
    INSERT hits the unique constraint, and the retry treats them as existing."""
    batch = [processed_factory() for _ in range(2)]
    store.write_batch(batch)
    original = Store._load_current
    calls = {"n": 0}

    def blind_once(self: Store, conn: Any, keys: Any) -> Any:
        calls["n"] += 1
        return {} if calls["n"] == 1 else original(self, conn, keys)

    monkeypatch.setattr(Store, "_load_current", blind_once)
    assert store.write_batch(batch, source="s", cursor={"n": 1}) == WriteResult(unchanged=2)
    assert store.count_items() == 2
    assert store.get_cursor("s") == {"n": 1}


def test_persistent_constraint_violation_is_a_store_error_and_stores_nothing(
    store: Store, processed_factory: ProcessedFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = [processed_factory()]
    store.write_batch(batch)
    monkeypatch.setattr(Store, "_load_current", lambda self, conn, keys: {})
    with pytest.raises(StoreError) as err:
        store.write_batch([*batch, processed_factory()], source="s", cursor={"n": 1})
    assert err.value.hint is not None and "cursor was not advanced" in err.value.hint
    assert store.count_items() == 1
    assert store.get_cursor("s") is None


def test_bad_inputs_are_deduplicated_with_times_seen(store: Store) -> None:
    run_id = store.start_run("feed")
    broken = BadInputRecord.from_raw("feed", "not JSON", "line 3", b'{"id": ')
    same_bytes_other_reason = BadInputRecord.from_raw("feed", "no id", "line 3", b'{"id": ')
    result = store.write_batch(
        [], bad=[broken, broken, same_bytes_other_reason], source="feed", run_id=run_id
    )
    assert result == WriteResult(bad=3)
    store.write_batch([], bad=[broken])

    rows = {r["reason"]: r for r in store.bad_inputs(source="feed")}
    assert set(rows) == {"not JSON", "no id"}
    assert rows["not JSON"]["times_seen"] == 3
    assert rows["no id"]["times_seen"] == 1
    assert rows["not JSON"]["run_id"] == run_id  # kept when a later sighting has no run
    assert rows["not JSON"]["first_seen_at"] <= rows["not JSON"]["last_seen_at"]
    assert rows["not JSON"]["raw_sha256"] == broken.raw_sha256
    assert store.count("bad_inputs") == 2
    assert store.bad_inputs(source="other") == []


# --- response detection ----------------------------------------------------------------------


@pytest.mark.parametrize("order", ["customer_first", "reply_first", "same_batch"])
def test_brand_reply_in_thread_marks_customer_item_responded(
    store: Store, processed_factory: ProcessedFactory, order: str
) -> None:
    customer = processed_factory(created_at=T0, thread_id="T1", is_complaint=True)
    reply = processed_factory(
        created_at=T0 + timedelta(minutes=20), thread_id="T1", author_is_brand=True
    )
    if order == "customer_first":
        assert store.write_batch([customer]).responded == 0
        assert store.write_batch([reply]).responded == 1
    elif order == "reply_first":
        assert store.write_batch([reply]).responded == 0
        assert store.write_batch([customer]).responded == 1
    else:
        assert store.write_batch([customer, reply]).responded == 1

    row = store.find_item(*customer.item.key)
    assert row is not None
    assert row.status == Status.RESPONDED
    assert row.first_response_at == reply.item.created_at
    assert row.breached is False
    assert [
        (e["kind"], e["actor"], e["from_value"], e["to_value"]) for e in store.item_events(row.id)
    ] == [("response_detected", "system", "new", "responded")]
    # Idempotent: seeing the reply again changes nothing.
    assert store.write_batch([reply, customer]) == WriteResult(unchanged=2)
    assert len(store.item_events(row.id)) == 1


def test_reply_by_parent_id_and_late_reply_is_breached(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    customer = processed_factory(created_at=T0, target_seconds=3600, sla_status=Status.NEW)
    store.write_batch([customer])
    row = store.find_item(*customer.item.key)
    assert row is not None
    store.set_status(row.id, "acknowledged", actor="ann")
    late = processed_factory(
        created_at=T0 + timedelta(hours=2),
        author_is_brand=True,
        parent_id=customer.item.external_id,
    )
    assert store.write_batch([late]).responded == 1
    after = store.get_item(row.id)
    assert after is not None
    assert (after.status, after.first_response_at, after.breached) == (
        Status.RESPONDED,
        late.item.created_at,
        True,
    )
    assert store.item_events(row.id)[-1]["from_value"] == "acknowledged"


def test_earliest_later_reply_counts_and_earlier_or_foreign_posts_do_not(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    brand_before = processed_factory(created_at=T0, thread_id="T1", author_is_brand=True)
    customer = processed_factory(created_at=T0 + timedelta(minutes=5), thread_id="T1")
    other_thread = processed_factory(
        created_at=T0 + timedelta(minutes=6), thread_id="T2", author_is_brand=True
    )
    other_platform = processed_factory(
        created_at=T0 + timedelta(minutes=7), thread_id="T1", author_is_brand=True, platform="x"
    )
    customer_reply = processed_factory(created_at=T0 + timedelta(minutes=8), thread_id="T1")
    assert (
        store.write_batch(
            [brand_before, customer, other_thread, other_platform, customer_reply]
        ).responded
        == 0
    )
    second = processed_factory(
        created_at=T0 + timedelta(minutes=30), thread_id="T1", author_is_brand=True
    )
    first = processed_factory(
        created_at=T0 + timedelta(minutes=10), thread_id="T1", author_is_brand=True
    )
    # Both customer posts in the thread get answered by the first reply after each.
    assert store.write_batch([second, first]).responded == 2
    row = store.find_item(*customer.item.key)
    assert row is not None and row.first_response_at == first.item.created_at


# --- reading ---------------------------------------------------------------------------------


def test_triage_orders_live_first_then_backlog_with_flags(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    now = T0 + timedelta(hours=3)
    hour = 3600
    overdue = processed_factory(created_at=T0, target_seconds=hour, is_complaint=True)
    overdue_later = processed_factory(
        created_at=T0 + timedelta(minutes=30), target_seconds=hour, urgency="high"
    )
    at_risk = processed_factory(
        created_at=now - timedelta(minutes=50), target_seconds=hour, sentiment="negative"
    )
    later = processed_factory(
        created_at=now - timedelta(minutes=10), target_seconds=hour, is_complaint=True
    )
    tie_urgent = processed_factory(
        created_at=now - timedelta(minutes=10), target_seconds=hour, urgency="high"
    )
    chat_plain = processed_factory(created_at=now, channel=Channel.CHAT, target_seconds=2 * hour)
    social_plain = processed_factory(created_at=now, target_seconds=hour)
    duplicate = processed_factory(
        created_at=T0, is_complaint=True, duplicate_of=overdue.item.key, target_seconds=hour
    )
    resolved = processed_factory(created_at=T0, is_complaint=True, target_seconds=hour)
    # Answered late, then reopened: due long ago but not overdue (the clock stopped).
    reopened = processed_factory(
        created_at=T0 - timedelta(hours=1), is_complaint=True, target_seconds=hour
    )
    brand = processed_factory(created_at=T0, author_is_brand=True, sentiment="negative")
    # 20 minutes past due on a 1-hour target: still live, and the most pressing of all.
    fresh_overdue = processed_factory(
        created_at=now - timedelta(minutes=80), target_seconds=hour, is_complaint=True
    )
    store.write_batch(
        [
            fresh_overdue,
            later,
            tie_urgent,
            chat_plain,
            social_plain,
            at_risk,
            overdue_later,
            overdue,
            duplicate,
            resolved,
            reopened,
            brand,
        ]
    )
    resolved_id = store.find_item(*resolved.item.key).id  # type: ignore[union-attr]
    store.set_status(resolved_id, Status.RESOLVED, actor="ann")
    reopened_id = store.find_item(*reopened.item.key).id  # type: ignore[union-attr]
    store.set_status(reopened_id, Status.RESPONDED, actor="ann", at=T0 + timedelta(hours=1))
    store.set_status(reopened_id, Status.ACKNOWLEDGED, actor="ann")

    queue = store.triage(now=now)
    keys = [(r.source, r.external_id) for r in queue]
    # Live (by due time, urgent first on ties), then no running clock, then the backlog of
    # items overdue by more than their target length (most recently due first).
    expected = [
        fresh_overdue,
        at_risk,
        tie_urgent,
        later,
        chat_plain,
        reopened,
        overdue_later,
        overdue,
    ]
    assert keys == [p.item.key for p in expected]
    assert [r.flags for r in queue] == [
        (Flag.COMPLAINT, Flag.OVERDUE),
        (Flag.NEGATIVE, Flag.AT_RISK),
        (Flag.URGENT,),
        (Flag.COMPLAINT,),
        (),
        (Flag.COMPLAINT,),
        (Flag.URGENT, Flag.OVERDUE),
        (Flag.COMPLAINT, Flag.OVERDUE),
    ]
    assert [r.external_id for r in store.triage(now=now, flag="overdue")] == [
        fresh_overdue.item.external_id,
        overdue_later.item.external_id,
        overdue.item.external_id,
    ]
    assert [r.external_id for r in store.triage(now=now, flag=Flag.AT_RISK)] == [
        at_risk.item.external_id
    ]
    assert [r.external_id for r in store.triage(now=now, channel="chat")] == [
        chat_plain.item.external_id
    ]
    assert len(store.triage(now=now, limit=2)) == 2
    with pytest.raises(ValueError, match="valid values are"):
        store.triage(now=now, flag="loud")
    # Before the clock ran out, nothing is overdue or at risk.
    early = store.triage(now=T0 + timedelta(minutes=1))
    assert all(Flag.OVERDUE not in r.flags and Flag.AT_RISK not in r.flags for r in early)


def test_triage_filters_by_assignee_source_and_brand(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    mine = processed_factory(is_complaint=True, brand="acme", source="feed-a")
    theirs = processed_factory(is_complaint=True, brand="globex", source="feed-b")
    store.write_batch([mine, theirs])
    mine_id = store.find_item(*mine.item.key).id  # type: ignore[union-attr]
    store.assign(mine_id, "ann", actor="lead")
    assert [r.id for r in store.triage(now=T0, assignee="ann")] == [mine_id]
    assert [r.external_id for r in store.triage(now=T0, brand="globex")] == [
        theirs.item.external_id
    ]
    assert [r.external_id for r in store.triage(now=T0, source="feed-a")] == [mine.item.external_id]


def test_set_status_writes_events_and_responded_stops_the_clock(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    p = processed_factory(created_at=T0, target_seconds=3600)
    store.write_batch([p])
    item_id = store.find_item(*p.item.key).id  # type: ignore[union-attr]

    row = store.set_status(item_id, Status.ACKNOWLEDGED, actor="ann", note="on it")
    assert row.status == Status.ACKNOWLEDGED
    store.set_status(item_id, "acknowledged", actor="ann")  # no change, no event
    answered_at = T0 + timedelta(hours=2)
    row = store.set_status(item_id, "responded", actor="ann", at=answered_at)
    assert (row.status, row.first_response_at, row.breached) == (
        Status.RESPONDED,
        answered_at,
        True,
    )
    # Reopening and answering again does not move the first response.
    store.set_status(item_id, "new", actor="bob")
    row = store.set_status(item_id, "responded", actor="bob", at=T0 + timedelta(hours=5))
    assert row.first_response_at == answered_at

    trail = [
        (e["kind"], e["actor"], e["from_value"], e["to_value"], e["note"])
        for e in store.item_events(item_id)
    ]
    assert trail == [
        ("status", "ann", "new", "acknowledged", "on it"),
        ("status", "ann", "acknowledged", "responded", None),
        ("status", "bob", "responded", "new", None),
        ("status", "bob", "new", "responded", None),
    ]
    assert store.item_events(item_id)[1]["at"] == answered_at
    with pytest.raises(NotFound):
        store.set_status(999_999, "resolved", actor="ann")
    with pytest.raises(ValueError):
        store.set_status(item_id, "done", actor="ann")


def test_assign_writes_events(store: Store, processed_factory: ProcessedFactory) -> None:
    p = processed_factory()
    store.write_batch([p])
    item_id = store.find_item(*p.item.key).id  # type: ignore[union-attr]
    assert store.assign(item_id, "ann", actor="lead").assignee == "ann"
    assert store.assign(item_id, "ann", actor="lead").assignee == "ann"
    assert store.assign(item_id, None, actor="ann").assignee is None
    assert [(e["kind"], e["from_value"], e["to_value"]) for e in store.item_events(item_id)] == [
        ("assign", None, "ann"),
        ("assign", "ann", None),
    ]
    with pytest.raises(NotFound):
        store.assign(999_999, "ann", actor="lead")


def test_timestamps_round_trip_as_aware_utc(
    store: Store, item_factory: ItemFactory, processed_factory: ProcessedFactory
) -> None:
    berlin = datetime(2024, 5, 1, 14, 30, 15, 123456, tzinfo=ZoneInfo("Europe/Berlin"))
    item = item_factory(created_at=berlin)
    store.write_batch([processed_factory(item)])
    row = store.find_item(*item.key)
    assert row is not None
    for value in (row.created_at, row.collected_at, row.updated_at, row.due_at):
        assert value is not None and value.utcoffset() == timedelta(0)
    assert row.created_at == berlin
    assert (row.created_at.hour, row.created_at.microsecond) == (12, 123456)
    assert row.to_json()["created_at"] == "2024-05-01T12:30:15.123456Z"


def test_sqlite_stores_utc_text(tmp_path: Path, processed_factory: ProcessedFactory) -> None:
    path = tmp_path / "utc.db"
    store = Store.open(f"sqlite:///{path}")
    try:
        created = datetime(2024, 1, 1, 9, 0, tzinfo=ZoneInfo("America/New_York"))
        store.write_batch([processed_factory(created_at=created)])
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        (stored,) = conn.execute("SELECT created_at FROM items").fetchone()
    assert stored.startswith("2024-01-01 14:00:00")


def test_naive_datetimes_are_refused(store: Store) -> None:
    naive = datetime(2024, 5, 1, 12, 0)
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(naive, store.engine.dialect)
    with pytest.raises(ValueError, match="naive"):
        store.start_run("feed", started_at=naive)
    with pytest.raises(StatementError) as err, store.engine.begin() as conn:
        conn.execute(insert(cursors).values(source="x", value={}, updated_at=naive))
    assert isinstance(err.value.orig, ValueError)
    assert store.count("cursors") == 0


def test_search_is_literal_and_case_insensitive(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    texts = ["50% off today", "500 off today", "under_score here", "underXscore here"]
    batch = [processed_factory(text=t) for t in texts]
    batch.append(processed_factory(text="plain body", title="Title with 50% OFF"))
    store.write_batch(batch)

    def found(term: str) -> list[str]:
        return sorted(r.text for r in store.list_items(search=term))

    assert found("50%") == ["50% off today", "plain body"]
    assert found("r_s") == ["under_score here"]
    assert found("OFF TODAY") == ["50% off today", "500 off today"]
    assert found("\\") == []
    assert found("'; DROP TABLE items; --") == []
    assert store.count_items() == 5


def test_list_items_is_newest_first_with_filters(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    a = processed_factory(created_at=T0, source="a", sentiment="negative")
    b = processed_factory(created_at=T0 + timedelta(hours=1), source="b")
    c = processed_factory(created_at=T0 + timedelta(hours=2), source="a", channel=Channel.EMAIL)
    store.write_batch([a, b, c])
    ids = {p.item.external_id: store.find_item(*p.item.key).id for p in (a, b, c)}  # type: ignore[union-attr]
    assert [r.external_id for r in store.list_items()] == [
        c.item.external_id,
        b.item.external_id,
        a.item.external_id,
    ]
    assert [r.external_id for r in store.list_items(source="a", offset=1)] == [a.item.external_id]
    assert [r.external_id for r in store.list_items(channel="email")] == [c.item.external_id]
    assert [r.external_id for r in store.list_items(sentiment="negative")] == [a.item.external_id]
    window = store.list_items(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=2))
    assert [r.external_id for r in window] == [b.item.external_id]
    store.set_status(ids[b.item.external_id], "resolved", actor="ann")
    assert [r.external_id for r in store.list_items(status="resolved")] == [b.item.external_id]
    assert store.count_items(source="a") == 2
    assert store.get_item(999_999) is None
    assert store.find_item("a", "missing") is None


def test_export_streams_every_item_in_id_order(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    batch = [
        processed_factory(created_at=T0 + timedelta(minutes=(7 - n)), source="ab"[n % 2])
        for n in range(7)
    ]
    for p in batch:  # one per write, so ids follow list order (not created_at order)
        store.write_batch([p])
    stream = store.iter_export(batch_size=3)
    assert isinstance(stream, Iterator)
    head = [next(stream) for _ in range(3)]
    # Pages are fetched lazily: an item stored mid-export still appears at the end.
    late = processed_factory(created_at=T0 - timedelta(days=1), source="a")
    store.write_batch([late])
    rows = head + list(stream)
    assert [r.external_id for r in rows] == [p.item.external_id for p in [*batch, late]]
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert [r.source for r in store.iter_export(source="b", batch_size=2)] == ["b"] * 3
    since = list(store.iter_export(since=T0 + timedelta(minutes=5)))
    assert [r.external_id for r in since] == [p.item.external_id for p in batch[:3]]


def test_item_row_json_and_flags(store: Store, processed_factory: ProcessedFactory) -> None:
    p = processed_factory(created_at=T0, sentiment="negative", is_complaint=True, urgency="high")
    store.write_batch([p])
    row = store.find_item(*p.item.key, now=T0 + timedelta(hours=2))
    assert row is not None
    data = row.to_json()
    assert data["flags"] == ["negative", "complaint", "urgent", "overdue"]
    assert data["due_at"] == "2024-05-01T13:00:00Z"
    assert data["status"] == "new" and type(data["status"]) is str
    assert data["topics"] == {"billing": 0.7}
    assert data["first_response_at"] is None


# --- runs, health, alerts --------------------------------------------------------------------


def test_runs_feed_source_status(store: Store, processed_factory: ProcessedFactory) -> None:
    ok = store.start_run("feed", started_at=T0)
    store.finish_run(ok, status="ok", seen=5, new=5, lag_seconds=12.5, newest_created_at=T0)
    for n, message in enumerate(["HTTP 503", "timeout"], start=1):
        run = store.start_run("feed", started_at=T0 + timedelta(hours=n))
        store.finish_run(run, status="error", seen=0, error=message)
    store.write_batch(
        [processed_factory(source="feed")],
        bad=[BadInputRecord.from_raw("feed", "bad", "x", b"x")],
    )

    feed, never = store.source_status(["feed", "never-ran"])
    assert feed.source == "feed"
    assert feed.last_run_at == T0 + timedelta(hours=2)
    assert feed.last_status == "error"
    assert feed.last_success_at is not None
    assert feed.last_error == "timeout"
    assert (feed.runs, feed.consecutive_failures) == (3, 2)
    assert (feed.items_total, feed.items_last_run, feed.bad_total) == (1, 0, 1)
    assert feed.lag_seconds == 12.5
    assert never == store_module.SourceStatus(
        "never-ran", None, None, None, None, 0, 0, 0, None, 0, None
    )
    recovered = store.start_run("feed", started_at=T0 + timedelta(hours=3))
    store.finish_run(recovered, status="partial", seen=2)
    assert store.source_status(["feed"])[0].consecutive_failures == 0
    assert [s.source for s in store.source_status()] == ["feed"]
    with pytest.raises(NotFound):
        store.finish_run(999_999, status="ok")
    with pytest.raises(ValueError, match="valid values are"):
        store.finish_run(ok, status="fine")


def test_alert_ledger_fires_once_per_incident(store: Store) -> None:
    key = "source-unhealthy:feed"
    assert store.record_alert(key, kind="source", reason="HTTP 401", source="feed") is True
    assert store.record_alert(key, kind="source", reason="HTTP 401 again", source="feed") is False
    assert store.count("alerts") == 1
    assert store.resolve_alert(key) is True
    assert store.resolve_alert(key) is False
    assert store.resolve_alert("never-fired") is False
    assert store.record_alert(key, kind="source", reason="HTTP 401", payload={"n": 1}) is True
    assert store.count("alerts") == 1


def test_run_cut_off_by_a_crash_is_marked_interrupted(store: Store) -> None:
    first = store.start_run("s", started_at=T0)
    store.start_run("s", started_at=T0 + timedelta(minutes=5))
    status = store.source_status(["s"])[0]
    assert status.runs == 2
    with store.engine.connect() as conn:
        row = conn.execute(
            select(collector_runs.c.status, collector_runs.c.error).where(
                collector_runs.c.id == first
            )
        ).one()
    assert row.status == "error"
    assert "interrupted" in row.error


def test_awaiting_response_lists_open_customer_items_needing_a_reply(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    waiting = processed_factory(created_at=T0, external_id="w1", thread_id="T1", url="https://x/1")
    newer = processed_factory(created_at=T0 + timedelta(hours=1), external_id="w2")
    old = processed_factory(created_at=T0 - timedelta(days=9), external_id="old")
    no_reply = processed_factory(created_at=T0, external_id="fyi", needs_reply=False)
    answered = processed_factory(created_at=T0, external_id="a1", thread_id="T9")
    reply = processed_factory(
        created_at=T0 + timedelta(minutes=5), external_id="r1", thread_id="T9", author_is_brand=True
    )
    other = processed_factory(created_at=T0, external_id="o1", source="other")
    store.write_batch([waiting, newer, old, no_reply, answered, reply, other])
    got = store.awaiting_response("test-source", since=T0 - timedelta(days=7))
    assert [a.external_id for a in got] == ["w2", "w1"]
    assert got[1].thread_id == "T1"
    assert got[1].url == "https://x/1"
    assert got[1].due_at == T0 + timedelta(hours=1)
    ignored = store.find_item("test-source", "w2")
    assert ignored is not None
    store.set_status(ignored.id, Status.IGNORED, actor="ana")
    assert [a.external_id for a in store.awaiting_response("test-source", since=T0)] == ["w1"]


def test_brand_comment_in_a_public_thread_answers_only_its_own_conversation(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    """Reddit-like: a submission and two commenters; the brand answers commenter A only."""
    post = processed_factory(created_at=T0, external_id="t3_p", thread_id="t3_p", is_complaint=True)
    a = processed_factory(
        created_at=T0 + timedelta(minutes=1),
        external_id="t1_a",
        thread_id="t3_p",
        parent_id="t3_p",
        is_complaint=True,
    )
    b = processed_factory(
        created_at=T0 + timedelta(minutes=2),
        external_id="t1_b",
        thread_id="t3_p",
        parent_id="t3_p",
        is_complaint=True,
    )
    reply = processed_factory(
        created_at=T0 + timedelta(minutes=9),
        external_id="t1_r",
        thread_id="t3_p",
        parent_id="t1_a",
        author_is_brand=True,
    )
    assert store.write_batch([post, a, b, reply]).responded == 2
    status = {k: store.find_item("test-source", k) for k in ("t3_p", "t1_a", "t1_b")}
    assert {k: r.status if r else None for k, r in status.items()} == {
        "t3_p": Status.RESPONDED,  # the brand engaged in the thread this customer started
        "t1_a": Status.RESPONDED,  # answered directly
        "t1_b": Status.NEW,  # someone else's comment is not an answer to B
    }


def test_a_customer_item_seen_again_as_the_brands_leaves_the_queue_and_answers_its_thread(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    """E-mail: the brand's reply reaches the shared inbox (stored as a customer's) before the
    sent folder shows it as the brand's."""
    customer = processed_factory(created_at=T0, external_id="m1", thread_id="m1", channel="email")
    copy = processed_factory(
        created_at=T0 + timedelta(hours=2), external_id="m2", thread_id="m1", channel="email"
    )
    store.write_batch([customer, copy])
    assert store.existing([copy.item.key])[copy.item.key].author_is_brand is False
    sent = processed_factory(
        dataclasses.replace(copy.item, author_is_brand=True), needs_reply=False
    )
    assert store.write_batch([sent]).responded == 1
    reply = store.find_item(*copy.item.key)
    assert reply is not None
    assert reply.author_is_brand and reply.status == Status.IGNORED and reply.due_at is None
    assert [e["note"] for e in store.item_events(reply.id)][-1].startswith("it is the brand's")
    answered = store.find_item(*customer.item.key)
    assert answered is not None
    assert answered.status == Status.RESPONDED
    assert answered.first_response_at == copy.item.created_at
    assert store.existing([copy.item.key])[copy.item.key].author_is_brand is True
