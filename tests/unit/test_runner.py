"""The runner end to end on the real store: idempotence, reclassification, response detection,
cross-posts, dry runs, and a database that drops every connection in the middle of a run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from pipeline import registry
from pipeline.config import AppConfig, load_config
from pipeline.items import Item
from pipeline.nlp.lexicon import LexiconClassifier
from pipeline.runner import Runner
from pipeline.sinks.store import Store

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class CountingClassifier:
    """The real lexicon classifier, counting how many items it was asked about."""

    def __init__(self) -> None:
        self.inner = LexiconClassifier()
        self.version = self.inner.version
        self.seen = 0

    def classify(self, items):
        self.seen += len(items)
        return self.inner.classify(items)


def make_cfg(tmp_path: Path, store: Store, extra: str = "", batch_size: int = 200) -> AppConfig:
    p = tmp_path / "c.yaml"
    p.write_text(
        "brands:\n  - {name: Acme, accounts: ['@AcmeCare']}\n"
        "sources:\n"
        f"  - {{name: s, kind: file, channel: social, path: s.jsonl, batch_size: {batch_size}}}\n"
        + extra,
        encoding="utf-8",
    )
    return load_config(p, registry.source_models())


def post(i, text=None, minutes_ago=10, **kw):
    return {
        "id": f"p{i}",
        "text": text or f"my order {i} never arrived and nobody answers",
        "created_at": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
        "platform": "x",
        **kw,
    }


def write_jsonl(path: Path, rows, mode="w") -> None:
    with path.open(mode, encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def runner_for(cfg, store, classifier=None):
    return Runner(cfg, store, classifier=classifier or CountingClassifier(), clock=lambda: NOW)


def test_second_run_stores_and_classifies_nothing_new(store, tmp_path):
    write_jsonl(tmp_path / "s.jsonl", [post(i) for i in range(20)])
    cfg = make_cfg(tmp_path, store, batch_size=7)
    clf = CountingClassifier()
    r1 = runner_for(cfg, store, clf).run_once("s")
    assert (r1.status, r1.seen, r1.new, r1.batches) == ("ok", 20, 20, 3)
    assert clf.seen == 20
    # Forget the cursor: the whole file is read again, and nothing is stored or classified twice.
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM cursors"))
    r2 = runner_for(cfg, store, clf).run_once("s")
    assert (r2.seen, r2.new, r2.unchanged) == (20, 0, 20)
    assert clf.seen == 20
    assert store.count_items() == 20
    assert store.count("classifications") == 20
    assert store.count("sla") == 20


def test_edited_post_is_reclassified_and_keeps_its_clock(store, tmp_path):
    f = tmp_path / "s.jsonl"
    write_jsonl(f, [post(1, "Where is my parcel?")])
    cfg = make_cfg(tmp_path, store)
    runner_for(cfg, store).run_once("s")
    due_before = store.find_item("s", "p1").due_at
    write_jsonl(f, [post(1, "Love it, arrived early!")])  # replaced file, same id, new words
    r = runner_for(cfg, store).run_once("s")
    assert r.updated == 1
    row = store.find_item("s", "p1")
    assert row.text == "Love it, arrived early!"
    assert row.sentiment == "positive"
    assert row.due_at == due_before


def test_brand_reply_in_thread_marks_the_customer_post_responded(store, tmp_path):
    write_jsonl(
        tmp_path / "s.jsonl",
        [
            post(1, "my blender arrived broken", minutes_ago=30, thread_id="t1", author="mei"),
            post(
                2,
                "So sorry! DM us your order number.",
                minutes_ago=20,
                thread_id="t1",
                parent_id="p1",
                author="@AcmeCare",
            ),
        ],
    )
    r = runner_for(make_cfg(tmp_path, store), store).run_once("s")
    assert r.responded == 1
    row = store.find_item("s", "p1")
    assert row.status == "responded"
    assert row.first_response_at == NOW - timedelta(minutes=20)
    assert not row.breached
    assert store.find_item("s", "p2").author_is_brand
    assert store.triage(now=NOW) == []


def test_cross_post_is_stored_but_queued_once(store, tmp_path):
    text_ = "ParcelPeak lost my parcel AGAIN, third time this month"
    write_jsonl(
        tmp_path / "s.jsonl",
        [
            post(1, text_, minutes_ago=30, author="ann"),
            post(2, text_ + " https://t.example/x @ParcelPeakHelp", minutes_ago=27, author="ann"),
        ],
    )
    r = runner_for(make_cfg(tmp_path, store), store).run_once("s")
    assert (r.new, r.duplicate) == (2, 1)
    queue = store.triage(now=NOW)
    assert [q.external_id for q in queue] == ["p1"]
    assert len(store.list_items(include_duplicates=True)) == 2


def test_same_words_in_two_chats_are_two_conversations(store, tmp_path):
    write_jsonl(
        tmp_path / "s.jsonl",
        [
            post(1, "where is my order? it is late", minutes_ago=3, channel="chat", thread_id="c1"),
            post(2, "where is my order? it is late", minutes_ago=2, channel="chat", thread_id="c2"),
        ],
    )
    r = runner_for(make_cfg(tmp_path, store), store).run_once("s")
    assert (r.new, r.duplicate) == (2, 0)
    assert sorted(q.external_id for q in store.triage(now=NOW)) == ["p1", "p2"]


def test_bad_rows_are_kept_and_the_run_is_partial(store, tmp_path):
    f = tmp_path / "s.jsonl"
    write_jsonl(f, [post(1)])
    with f.open("a", encoding="utf-8") as fh:
        fh.write('{"id": "p2", "text": "cut off\n')
    write_jsonl(f, [post(3)], mode="a")
    r = runner_for(make_cfg(tmp_path, store), store).run_once("s")
    assert (r.status, r.new, r.bad) == ("partial", 2, 1)
    bad = store.bad_inputs(source="s")
    assert bad[0]["location"] == "s.jsonl line 2"
    assert "not valid JSON" in bad[0]["reason"]
    # Re-reading the same bad line does not store it twice.
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM cursors"))
    runner_for(make_cfg(tmp_path, store), store).run_once("s")
    assert len(store.bad_inputs(source="s")) == 1


def test_dry_run_writes_nothing(store, tmp_path):
    write_jsonl(tmp_path / "s.jsonl", [post(i) for i in range(3)])
    r = runner_for(make_cfg(tmp_path, store), store).run_once("s", dry_run=True)
    assert r.status == "dry_run"
    assert len(r.dry_run_items) == 3
    assert store.count_items() == 0
    assert store.count("collector_runs") == 0
    assert store.get_cursor("s") is None


def test_missing_file_is_skipped_with_a_reason(store, tmp_path):
    r = runner_for(make_cfg(tmp_path, store), store).run_once("s")
    assert r.status == "not_configured"
    assert "no file matches" in (r.error or "")
    status = store.source_status(["s"])[0]
    assert status.last_status == "not_configured"


def test_health_is_recorded(store, tmp_path):
    write_jsonl(tmp_path / "s.jsonl", [post(1, minutes_ago=5), post(2, minutes_ago=50)])
    runner_for(make_cfg(tmp_path, store), store).run_once("s")
    st = store.source_status(["s"])[0]
    assert st.last_status == "ok"
    assert st.items_total == 2
    assert st.lag_seconds == pytest.approx(300)


@pytest.mark.postgres
def test_database_drops_connections_mid_run(tmp_path, postgres_session_url):
    """Every server connection is killed between two batches: the batch is retried, nothing is
    lost or stored twice."""
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_session_url)
    store = Store.open(postgres_session_url, migrate=True)
    try:
        write_jsonl(tmp_path / "s.jsonl", [post(i) for i in range(30)])
        cfg = make_cfg(tmp_path, store, batch_size=10)
        runner = Runner(
            cfg, store, classifier=CountingClassifier(), clock=lambda: NOW, sleep=lambda s: None
        )
        killed = []

        def kill_connections(_result):
            if killed:
                return
            admin = create_engine(postgres_session_url, poolclass=NullPool)
            with admin.begin() as conn:
                n = conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar()
            admin.dispose()
            killed.append(n)

        r = runner.run_once("s", on_batch=kill_connections)
        assert killed and killed[0] >= 1
        assert (r.status, r.new) == ("ok", 30), r.error
        assert store.count_items() == 30
        assert store.count("classifications") == 30
    finally:
        store.close()


def test_items_keep_utc(store, tmp_path, item_factory):
    it: Item = item_factory(created_at=datetime(2026, 11, 23, 20, 0, tzinfo=UTC))
    assert it.created_at.tzinfo is UTC


def test_classification_is_chunked_by_length_and_keeps_input_order(store, tmp_path):
    from pipeline.runner import CLASSIFY_CHUNK_BATCHES

    # batch_size 1: each classifier call gets CLASSIFY_CHUNK_BATCHES items (the encoder forms
    # its own batches by token count inside a call), the last call the rest.
    count = 2 * CLASSIFY_CHUNK_BATCHES + 3
    texts = [
        "ok " * ((n * 37) % 61) + ("refund never came" if n % 2 else "love it, thanks")
        for n in range(count)
    ]
    write_jsonl(tmp_path / "s.jsonl", [post(i, t) for i, t in enumerate(texts)])
    cfg = make_cfg(tmp_path, store)
    cfg = cfg.model_copy(update={"classifier": cfg.classifier.model_copy(update={"batch_size": 1})})

    class Recording(CountingClassifier):
        def __init__(self):
            super().__init__()
            self.calls = []

        def classify(self, items):
            self.calls.append([len(i.text) for i in items])
            return super().classify(items)

    clf = Recording()
    r = runner_for(cfg, store, clf).run_once("s", dry_run=True)
    assert [len(c) for c in clf.calls] == [CLASSIFY_CHUNK_BATCHES, CLASSIFY_CHUNK_BATCHES, 3]
    lengths = [n for call in clf.calls for n in call]
    assert lengths == sorted(lengths)
    single = LexiconClassifier()
    for p in r.dry_run_items:
        assert p.classification == single.classify([p.item])[0]


@pytest.mark.postgres
def test_database_gone_is_a_failed_run_not_a_crash(tmp_path):
    """The database disappears after the store opened (dropped, connections killed): the run
    fails with a readable error that names the database without its password."""
    from psycopg import sql

    from pipeline.sinks.scratch import admin_connection
    from tests.helpers import fresh_postgres_url

    with fresh_postgres_url(password="s3cret") as url:
        store = Store.open(url, migrate=True)
        try:
            write_jsonl(tmp_path / "s.jsonl", [post(1)])
            runner = runner_for(make_cfg(tmp_path, store), store)
            name = url.rsplit("/", 1)[1]
            with admin_connection() as conn:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            r = runner.run_once("s")
        finally:
            store.close()
    assert r.status == "error"
    assert name in (r.error or "")
    assert "s3cret" not in (r.error or "") + (r.hint or "")


def test_brand_accounts_are_per_platform_and_chat_roles_are_never_overridden(store, tmp_path):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(
        "brands:\n  - {name: Acme, accounts: ['reddit:u/AcmeHelp', '@AcmeCare']}\n"
        "sources:\n  - {name: s, kind: file, channel: social, path: s.jsonl}\n",
        encoding="utf-8",
    )
    cfg = load_config(cfg_path, registry.source_models())
    runner = runner_for(cfg, store)
    created = NOW - timedelta(minutes=5)

    def it(i, author, platform, channel="social", url=None):
        return Item(
            source="s",
            channel=channel,
            external_id=str(i),
            text="hello",
            created_at=created,
            author=author,
            platform=platform,
            url=url,
        )

    got = runner.normalize(
        [
            it(1, "AcmeHelp", "reddit"),
            it(2, "AcmeHelp", "x"),  # someone else's name on another platform
            it(3, "@acmecare", "x"),  # unprefixed: every platform
            it(4, "@AcmeCare", "web", channel="chat"),  # a chat customer calling themselves that
            it(5, "ann", "x", url="javascript:alert(1)"),
            it(6, "ann", "x", url="https://x.example/ann/6"),
        ]
    )
    assert [i.author_is_brand for i in got] == [True, False, True, False, False, False]
    assert [i.url for i in got[4:]] == [None, "https://x.example/ann/6"]


def test_an_item_later_known_as_the_brands_is_processed_again_and_answers(store, tmp_path):
    def item(i, author, minutes_ago):
        return Item(
            source="s",
            channel="email",
            external_id=f"m{i}",
            text="my parcel is lost" if i == 1 else "Sorry Ann, a new one ships today",
            created_at=NOW - timedelta(minutes=minutes_ago),
            author=author,
            thread_id="m1",
            platform="email",
        )

    cfg = make_cfg(tmp_path, store)
    first = runner_for(cfg, store)
    batch = first.normalize([item(1, "ann@example.org", 50), item(2, "help@acme.example", 20)])
    store.write_batch(first.process(cfg.sources[0], batch))
    # The help desk address is added to the brand's accounts: the same message, seen again,
    # is now the brand's reply.
    brand = cfg.brands[0].model_copy(update={"accounts": ["help@acme.example"]})
    later = runner_for(cfg.model_copy(update={"brands": [brand]}), store)
    again = later.process(cfg.sources[0], later.normalize([item(2, "help@acme.example", 20)]))
    assert [p.item.author_is_brand for p in again] == [True]
    assert store.write_batch(again).responded == 1
