"""kind: file: formats, column mapping, cursors, and bad rows that never stop a batch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline import registry
from pipeline.collectors.base import CollectContext, parse_timestamp
from pipeline.collectors.file import FileCollector, FileSource
from pipeline.config import load_config
from pipeline.errors import BadInput, NotConfigured

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def collector(tmp_path: Path, **kw) -> FileCollector:
    cfg = load_config(None, registry.source_models()).model_copy(update={"base_dir": str(tmp_path)})
    src = FileSource.model_validate({"name": "f", "kind": "file", "channel": "social", **kw})
    return FileCollector(src, CollectContext(app=cfg, clock=lambda: NOW))


def drain(c: FileCollector, cursor=None):
    items, bad, last = [], [], cursor
    for batch in c.collect(cursor):
        items += batch.items
        bad += batch.bad
        last = batch.cursor if batch.cursor is not None else last
    return items, bad, last


def jsonl(path: Path, rows) -> None:
    with path.open("ab") as f:
        for r in rows:
            f.write((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n")


def row(i: int, **kw):
    return {"id": f"p{i}", "text": f"post number {i}", "created_at": "2026-11-23T10:00:00Z", **kw}


def test_jsonl_reads_all_and_resumes_from_cursor(tmp_path):
    f = tmp_path / "a.jsonl"
    jsonl(f, [row(i) for i in range(5)])
    c = collector(tmp_path, path="a.jsonl", batch_size=2)
    batches = list(c.collect(None))
    assert [len(b.items) for b in batches] == [2, 2, 1]
    items, _, cursor = drain(c)
    assert [i.external_id for i in items] == [f"p{i}" for i in range(5)]
    # Nothing new: nothing read.
    assert drain(c, cursor)[0] == []
    # Appended lines: only those are read.
    jsonl(f, [row(5), row(6)])
    items, _, _ = drain(c, cursor)
    assert [i.external_id for i in items] == ["p5", "p6"]
    # Resuming from the middle cursor re-reads only what followed it.
    mid = batches[0].cursor
    assert [i.external_id for i in drain(c, mid)[0]] == ["p2", "p3", "p4", "p5", "p6"]


def test_replaced_file_is_read_from_the_start(tmp_path):
    f = tmp_path / "a.jsonl"
    jsonl(f, [row(i) for i in range(3)])
    c = collector(tmp_path, path="a.jsonl")
    _, _, cursor = drain(c)
    f.write_bytes(b"")
    jsonl(f, [row(10, text="a different first line entirely")])
    assert [i.external_id for i in drain(c, cursor)[0]] == ["p10"]


def test_unterminated_last_line_waits_until_complete(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_bytes(json.dumps(row(1)).encode() + b"\n" + b'{"id": "p2", "te')
    c = collector(tmp_path, path="a.jsonl")
    items, bad, cursor = drain(c)
    assert [i.external_id for i in items] == ["p1"] and bad == []
    with f.open("ab") as fh:
        fh.write(b'xt": "hello there", "created_at": "2026-11-23T10:00:00Z"}\n')
    assert [i.external_id for i in drain(c, cursor)[0]] == ["p2"]


def test_bad_rows_are_recorded_and_the_rest_kept(tmp_path):
    f = tmp_path / "a.jsonl"
    jsonl(
        f,
        [
            row(1),
            b'{"id": "p2", "text": "trunc',
            {"id": "p3", "created_at": "2026-11-23T10:00:00Z"},
            row(4, created_at="yesterday-ish"),
            b"[1, 2, 3]",
            row(6, channel="fax"),
            row(7),
        ],
    )
    items, bad, _ = drain(collector(tmp_path, path="a.jsonl"))
    assert [i.external_id for i in items] == ["p1", "p7"]
    reasons = {b.location: b.reason for b in bad}
    assert reasons["a.jsonl line 2"].startswith("not valid JSON")
    assert reasons["a.jsonl line 3"].startswith("no text")
    assert "is not a date and time" in reasons["a.jsonl line 4"]
    assert reasons["a.jsonl line 5"] == "expected an object, got list"
    assert "channel 'fax'" in reasons["a.jsonl line 6"]
    assert all(len(b.raw_sha256) == 64 for b in bad)


def test_invalid_utf8_is_kept_with_a_note(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_bytes(
        b'{"id": "u1", "text": "caf\xe9 was cold", "created_at": "2026-11-23T10:00:00Z"}\n'
    )
    items, bad, _ = drain(collector(tmp_path, path="a.jsonl"))
    assert items[0].text == "caf\ufffd was cold"
    assert len(bad) == 1 and "invalid utf-8 at byte" in bad[0].reason.lower()


def test_csv_with_mapping_bom_quotes_and_multiline(tmp_path):
    f = tmp_path / "reviews.csv"
    f.write_text(
        "\ufeffreview_id,stars,review_body,reviewer,review_date\r\n"
        'r1,1,"Broken after a week, ""premium"" my foot",ann,2026-11-20T08:15:00+08:00\r\n'
        'r2,5,"Line one\nline two",bob,2026-11-21 09:00\r\n'
        "r3,3,,cat,2026-11-21T09:00:00Z\r\n",
        encoding="utf-8",
    )
    c = collector(
        tmp_path,
        path="reviews.csv",
        timezone="Asia/Kuala_Lumpur",
        mapping={
            "external_id": "review_id",
            "text": "review_body",
            "author": "reviewer",
            "created_at": "review_date",
        },
    )
    items, bad, cursor = drain(c)
    assert [i.external_id for i in items] == ["r1", "r2"]
    assert items[0].text == 'Broken after a week, "premium" my foot'
    assert items[0].created_at == datetime(2026, 11, 20, 0, 15, tzinfo=UTC)
    assert items[0].raw["stars"] == "1"
    assert items[1].text == "Line one\nline two"
    assert items[1].created_at == datetime(2026, 11, 21, 1, 0, tzinfo=UTC)  # naive -> source zone
    assert bad[0].location == "reviews.csv row 4" and bad[0].reason.startswith("no text")
    with f.open("a", encoding="utf-8") as fh:
        fh.write("r4,2,Slow delivery,dan,2026-11-22T09:00:00Z\r\n")
    assert [i.external_id for i in drain(c, cursor)[0]] == ["r4"]


def test_json_array_and_missing_id_gets_stable_hash(tmp_path):
    (tmp_path / "a.json").write_text(
        json.dumps([{"text": "no id here", "created_at": 1763892000}]), encoding="utf-8"
    )
    c = collector(tmp_path, path="a.json")
    first = drain(c)[0]
    again = drain(c)[0]
    assert first[0].external_id.startswith("h-")
    assert first[0].external_id == again[0].external_id
    assert first[0].created_at == datetime.fromtimestamp(1763892000, UTC)


def test_replay_anchor_shifts_to_now(tmp_path):
    jsonl(tmp_path / "a.jsonl", [row(1, created_at="2026-01-15T11:30:00Z")])
    c = collector(tmp_path, path="a.jsonl", replay_anchor="2026-01-15T12:00:00Z")
    assert drain(c)[0][0].created_at == NOW - timedelta(minutes=30)


def test_glob_reads_each_file_with_its_own_cursor(tmp_path):
    jsonl(tmp_path / "a.jsonl", [row(1)])
    jsonl(tmp_path / "b.jsonl", [row(2)])
    c = collector(tmp_path, path="*.jsonl")
    items, _, cursor = drain(c)
    assert {i.external_id for i in items} == {"p1", "p2"}
    jsonl(tmp_path / "b.jsonl", [row(3)])
    assert [i.external_id for i in drain(c, cursor)[0]] == ["p3"]


def test_no_matching_file_is_not_configured(tmp_path):
    with pytest.raises(NotConfigured, match="no file matches"):
        list(collector(tmp_path, path="missing/*.jsonl").collect(None))


def test_huge_line_is_recorded_not_loaded(tmp_path, monkeypatch):
    import pipeline.collectors.file as mod

    monkeypatch.setattr(mod, "_MAX_LINE_BYTES", 1000)
    f = tmp_path / "a.jsonl"
    jsonl(f, [row(1, text="x" * 5000), row(2)])
    items, bad, _ = drain(collector(tmp_path, path="a.jsonl"))
    assert [i.external_id for i in items] == ["p2"]
    assert "longer than 1000 bytes" in bad[0].reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-23T10:00:00Z", datetime(2026, 11, 23, 10, tzinfo=UTC)),
        ("2026-11-23T18:00:00+08:00", datetime(2026, 11, 23, 10, tzinfo=UTC)),
        ("Mon, 23 Nov 2026 10:00:00 +0000", datetime(2026, 11, 23, 10, tzinfo=UTC)),
        (1763892000000, datetime.fromtimestamp(1763892000, UTC)),
        ("1763892000", datetime.fromtimestamp(1763892000, UTC)),
    ],
)
def test_parse_timestamp(value, expected):
    assert parse_timestamp(value) == expected


def test_parse_timestamp_missing():
    with pytest.raises(BadInput, match="created_at is missing"):
        parse_timestamp("  ")


def test_cursor_in_the_middle_of_an_unchanged_file_resumes(tmp_path):
    """A run killed after its first batch left the cursor mid-file; the file did not change."""
    jsonl(tmp_path / "a.jsonl", [row(i) for i in range(5)])
    for fmt_file, write in (("a.jsonl", None), ("b.csv", "csv")):
        if write:
            (tmp_path / fmt_file).write_text(
                "id,text,created_at\n"
                + "".join(f"c{i},text {i},2026-11-23T10:00:00Z\n" for i in range(5)),
                encoding="utf-8",
            )
        c = collector(tmp_path, path=fmt_file, batch_size=2)
        first = next(iter(c.collect(None)))
        rest = drain(c, first.cursor)[0]
        assert len(first.items) == 2 and len(rest) == 3, fmt_file
