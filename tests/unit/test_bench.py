"""The ingest benchmark measures what it says: every scenario handles every generated item, the
re-run classifies nothing, ratios are real numbers. Speed itself is never asserted here."""

from __future__ import annotations

import json
import math

from pipeline.bench import TABLE_HEADER, generate_corpus, run_bench

ROWS = 60


def test_corpus_is_varied_and_reproducible():
    records = generate_corpus(500)
    assert len(records) == 500
    assert len({r["id"] for r in records}) == 500
    assert all(20 <= len(r["text"]) <= 600 for r in records)
    assert {r["_lang"] for r in records} == {"en", "ms", "id", "zh", "es"}
    assert any(r.get("_brand_reply") for r in records)
    assert [r["created_at"] for r in records] == sorted(r["created_at"] for r in records)
    again = generate_corpus(500)
    assert [r["text"] for r in again] == [r["text"] for r in records]


def test_run_bench_on_sqlite_counts_every_item():
    messages: list[str] = []
    report = run_bench(rows=ROWS, databases=("sqlite",), progress=messages.append)

    assert report.rows == ROWS
    names = [(s.scenario, s.database) for s in report.scenarios]
    assert names == [
        ("ingest", "sqlite"),
        ("ingest-naive", "sqlite"),
        ("rerun", "sqlite"),
        ("classify-batch", "-"),
        ("classify-single", "-"),
    ]
    for s in report.scenarios:
        assert s.skipped is None
        assert s.items == ROWS, s
        assert s.seconds > 0
        assert s.items_per_s > 0

    first = report.scenario("ingest", "sqlite")
    naive = report.scenario("ingest-naive", "sqlite")
    rerun = report.scenario("rerun", "sqlite")
    for ingest in (first, naive):
        assert ingest.stored == ROWS
        assert ingest.classified == ROWS
        assert set(ingest.phases) == {
            "language",
            "classify",
            "store reads",
            "store writes",
            "other",
        }
        assert math.isclose(sum(ingest.phases.values()), ingest.seconds, rel_tol=0.01)
    assert naive.batch_size == 1
    assert naive.transactions is not None and naive.transactions >= ROWS
    assert rerun.stored == ROWS
    assert rerun.classified == 0
    for name in ("classify-batch", "classify-single"):
        assert report.scenario(name).classified == ROWS

    for s in (first, rerun, report.scenario("classify-batch")):
        assert isinstance(s.ratio, float) and s.ratio > 0
    assert naive.ratio is None

    markdown = report.to_markdown()
    assert TABLE_HEADER in markdown
    assert "re-run, nothing new" in markdown
    assert report.cores >= 1 and report.peak_rss_mib > 0 and report.python
    data = json.loads(report.to_json())
    assert data["rows"] == ROWS
    assert len(data["scenarios"]) == len(report.scenarios)
    assert messages, "progress is reported"


def test_unreachable_postgres_is_reported_as_skipped(monkeypatch):
    import pipeline.bench as bench

    monkeypatch.setattr(bench, "postgres_unavailable", lambda: "PostgreSQL is down (test)")
    report = run_bench(rows=5, databases=("postgresql",))
    skipped = [s for s in report.scenarios if s.database == "postgresql"]
    assert [s.scenario for s in skipped] == ["ingest", "ingest-naive", "rerun", "rerun-analyzed"]
    assert all(s.skipped == "PostgreSQL is down (test)" for s in skipped)
    assert "skipped: PostgreSQL is down (test)" in report.to_markdown()
    assert report.scenario("classify-batch").classified == 5
