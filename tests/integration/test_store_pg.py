"""The store against the real PostgreSQL server: opening rules, dropped connections and
concurrent writers (things SQLite, with its single writer, cannot show)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from pipeline.errors import StoreError, TransientError
from pipeline.items import ProcessedItem, Status
from pipeline.sinks import store as store_module
from pipeline.sinks.store import Store, WriteResult
from tests.conftest import ProcessedFactory
from tests.helpers import T0, fresh_postgres_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_url() as url:
        Store.open(url, migrate=True).close()
        yield url


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = Store.open(pg_url)
    try:
        yield store
    finally:
        store.close()


def test_unmigrated_database_is_refused_with_a_hint() -> None:
    with fresh_postgres_url(password="hunter2-secret") as url:
        with pytest.raises(StoreError) as err:
            Store.open(url)  # migrate=None: a server database is never migrated implicitly
        assert "is at revision (none), this careradar needs 0002" in err.value.message
        assert err.value.hint == "run: careradar db upgrade"
        assert "hunter2-secret" not in err.value.message
        assert ":***@" in err.value.message

        store = Store.open(url, migrate=False)  # what `careradar db upgrade` does
        try:
            assert store.current_revision() is None
            assert store.upgrade() == (None, "0002")
        finally:
            store.close()
        Store.open(url).close()  # now at head: accepted


def test_missing_database_says_to_create_it() -> None:
    with fresh_postgres_url() as url:
        missing = url.rsplit("/", 1)[0] + "/careradar_does_not_exist_x"
    with pytest.raises(StoreError) as err:
        Store.open(missing)
    assert "careradar_does_not_exist_x" in err.value.message
    assert err.value.hint is not None and "create the database" in err.value.hint


def test_upgrade_waits_for_a_concurrent_upgrade_in_another_process() -> None:
    """Hold the migration lock the way a second careradar process would: the upgrade must
    wait for it instead of racing to create the same tables."""
    with fresh_postgres_url() as url:
        results: list[Any] = []

        def upgrade() -> None:
            try:
                with Store.open(url, migrate=True) as store:
                    results.append(store.current_revision())
            except Exception as exc:  # surfaced by the assertion below
                results.append(exc)

        holder = create_engine(url, poolclass=NullPool)
        worker = threading.Thread(target=upgrade)
        try:
            with holder.begin() as conn:
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": store_module._MIGRATION_LOCK}
                )
                worker.start()
                waited = _wait_for_advisory_lock_waiter(url)
                assert results == []
            worker.join()
        finally:
            holder.dispose()
        assert waited, "upgrade did not wait for the migration lock"
        assert results == ["0002"]


def test_dropped_connection_is_transient_and_commits_nothing(
    pg_store: Store, processed_factory: ProcessedFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = [processed_factory() for _ in range(3)]

    def kill_own_backend(self: Store, conn: Connection, *args: Any) -> None:
        conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    monkeypatch.setattr(Store, "_write_cursor", kill_own_backend)
    with pytest.raises(TransientError) as err:
        pg_store.write_batch(batch, source="feed", cursor={"n": 3})
    assert pg_store.url.rsplit("/", 1)[1] in err.value.message
    assert err.value.hint is not None and "retried" in err.value.hint

    monkeypatch.undo()
    assert pg_store.count_items() == 0  # the pool replaced the dead connection
    assert pg_store.get_cursor("feed") is None
    assert pg_store.write_batch(batch, source="feed", cursor={"n": 3}).new == 3


def test_server_restart_between_calls_is_invisible(
    pg_url: str, pg_store: Store, processed_factory: ProcessedFactory
) -> None:
    pg_store.write_batch([processed_factory()])
    admin = create_engine(pg_url.rsplit("/", 1)[0] + "/postgres", poolclass=NullPool)
    database = pg_url.rsplit("/", 1)[1]
    try:
        with admin.begin() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            )
    finally:
        admin.dispose()
    assert pg_store.count_items() == 1  # pre-ping noticed and reconnected


def test_concurrent_writers_of_the_same_batch_store_each_item_once(
    pg_url: str, processed_factory: ProcessedFactory
) -> None:
    batch = [processed_factory(thread_id=f"T{n % 5}") for n in range(60)]
    stores = [Store.open(pg_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    results: list[Any] = []

    def write(store: Store) -> None:
        barrier.wait()
        try:
            results.append(store.write_batch(batch, source="feed", cursor={"n": 60}))
        except Exception as exc:  # surfaced by the assertions below
            results.append(exc)

    threads = [threading.Thread(target=write, args=(s,)) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in stores:
            s.close()
    assert all(isinstance(r, WriteResult) for r in results), results
    assert sum(r.new for r in results) == 60
    assert sum(r.unchanged for r in results) == 60 * 3
    with Store.open(pg_url) as store:
        assert store.count_items() == 60
        assert store.count("classifications") == 60
        assert store.count("sla") == 60


def _wait_for_advisory_lock_waiter(url: str) -> bool:
    """True once another session waits on an advisory lock (bounded polling, no fixed sleep)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            deadline = time.monotonic() + 60  # generous: a loaded CI machine is slow to start
            while time.monotonic() < deadline:
                waiting = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
                    )
                ).scalar_one()
                if waiting:
                    return True
                # pg_stat_activity is a snapshot taken once per transaction: end it so the next
                # poll sees the worker start waiting (polling inside one transaction never did).
                conn.rollback()
                threading.Event().wait(0.005)
    finally:
        engine.dispose()
    return False


def test_customer_post_and_reply_committed_concurrently_are_still_matched(
    pg_url: str, processed_factory: ProcessedFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writer A stores the customer post and pauses before committing; writer B stores the
    brand reply meanwhile. Without the conversation lock B would not see A's row and A would
    not see B's, and the post would stay unanswered forever."""
    customer = processed_factory(created_at=T0, thread_id="race")
    reply = processed_factory(
        created_at=T0 + timedelta(minutes=5), thread_id="race", author_is_brand=True
    )
    a_wrote, release_a = threading.Event(), threading.Event()
    original = Store._write_sla
    a_thread_id: list[int] = []

    def pausing_write_sla(self: Store, conn: Connection, batch: Any, *args: Any) -> None:
        original(self, conn, batch, *args)
        if threading.get_ident() in a_thread_id:
            a_wrote.set()
            release_a.wait(30)

    monkeypatch.setattr(Store, "_write_sla", pausing_write_sla)
    results: dict[str, Any] = {}
    stores = {"a": Store.open(pg_url), "b": Store.open(pg_url)}

    def write(name: str, p: ProcessedItem) -> None:
        if name == "a":
            a_thread_id.append(threading.get_ident())
        try:
            results[name] = stores[name].write_batch([p])
        except Exception as exc:  # surfaced by the assertions below
            results[name] = exc

    a = threading.Thread(target=write, args=("a", customer))
    b = threading.Thread(target=write, args=("b", reply))
    try:
        a.start()
        assert a_wrote.wait(30)
        b.start()
        b_blocked = _wait_for_advisory_lock_waiter(pg_url)
        release_a.set()
        a.join()
        b.join()
    finally:
        release_a.set()
        for s in stores.values():
            s.close()
    assert b_blocked, "writer B did not wait for the conversation lock"
    assert isinstance(results["a"], WriteResult) and isinstance(results["b"], WriteResult)
    assert results["a"].responded + results["b"].responded == 1
    with Store.open(pg_url) as store:
        row = store.find_item(*customer.item.key)
        assert row is not None
        assert row.status == Status.RESPONDED
        assert row.first_response_at == reply.item.created_at


def test_bulk_first_load_refreshes_planner_statistics(pg_store: Store) -> None:
    def last_analyze() -> Any:
        with pg_store.engine.connect() as conn:
            return conn.execute(
                text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'items'")
            ).scalar_one()

    small = pg_store.start_run("s")
    pg_store.finish_run(small, status="ok", new=10)
    assert last_analyze() is None
    bulk = pg_store.start_run("s")
    pg_store.finish_run(bulk, status="ok", new=store_module.ANALYZE_AFTER_NEW)
    assert last_analyze() is not None
