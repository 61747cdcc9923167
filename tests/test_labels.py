"""Human labels from the triage queue: stored (SQLite and PostgreSQL), shown instead of the
model's output (flags included), recorded as events, migrated onto an existing database,
exported as a training file and trained on (``train --from-store``)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, select
from sqlalchemy.pool import NullPool

from pipeline.cli import main
from pipeline.errors import ConfigError, NotFound
from pipeline.items import Channel, Flag, SlaState, Status, now_utc
from pipeline.nlp.heads import LinearHead
from pipeline.nlp.train import (
    STORE_WEIGHT_MAX,
    Example,
    TaskReport,
    fit_head,
    load_labelled_file,
    metrics,
    store_examples,
    store_notes,
    store_weight,
    write_model_card,
)
from pipeline.sinks.schema import classifications, events, items, metadata
from pipeline.sinks.store import MIGRATIONS_DIR, Store
from tests.conftest import ProcessedFactory
from tests.helpers import T0, fresh_postgres_url

DATA = Path(__file__).parent / "data" / "nlp"
TAXONOMY = ["billing", "delivery", "account"]
TASKS_SENTIMENT = ("negative", "neutral", "positive")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    captured = capsys.readouterr()
    return int(e.value.code or 0), captured.out, captured.err


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # One embedding cache for the session: the same texts are encoded once.
    monkeypatch.setenv("CARERADAR_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _id(store: Store, p: object) -> int:
    row = store.find_item(*p.item.key)  # type: ignore[attr-defined]
    assert row is not None
    return row.id


# --- the store -------------------------------------------------------------------------------


def test_labels_override_the_model_in_rows_flags_queue_and_filters(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    # Posted just now: no clock is at risk yet, so the flags come from the labels alone (the
    # rows set_label returns are computed for the real "now").
    start = now_utc()
    now = start + timedelta(minutes=1)
    angry = processed_factory(created_at=start, sentiment="negative", is_complaint=True)
    calm = processed_factory(created_at=start)
    store.write_batch([angry, calm])
    angry_id, calm_id = _id(store, angry), _id(store, calm)
    assert [r.id for r in store.triage(now=now)] == [angry_id]

    # "Not negative, not a complaint": both flags go, and with them the item leaves the queue.
    row = store.set_label(angry_id, "sentiment", "Neutral", actor="mei")
    assert row.sentiment == "neutral" and Flag.NEGATIVE not in row.flags
    assert row.flags == (Flag.COMPLAINT,)
    label = row.labels["sentiment"]
    assert (label.value, label.actor, label.model_value, label.model_version) == (
        "neutral",
        "mei",
        "negative",
        "test-1",
    )
    assert row.sentiment_scores == {"negative": 0.1, "neutral": 0.8, "positive": 0.1}  # model's
    row = store.set_label(angry_id, "complaint", "no", actor="mei")
    assert row.is_complaint is False and row.flags == ()
    assert store.triage(now=now) == []
    assert store.triage(now=now, flag="negative") == []

    # "This one is urgent": the flag comes on and the item enters the queue.
    row = store.set_label(calm_id, "urgency", "high", actor="ann")
    assert row.urgency == "high" and row.flags == (Flag.URGENT,)
    assert [(r.id, r.flags) for r in store.triage(now=now)] == [(calm_id, (Flag.URGENT,))]
    assert [r.id for r in store.triage(now=now, flag="urgent")] == [calm_id]
    store.set_label(calm_id, "complaint", True, actor="ann")
    assert [r.id for r in store.triage(now=now, flag="complaint")] == [calm_id]

    # Listing by sentiment follows what people see.
    assert {r.id for r in store.list_items(sentiment="neutral")} == {angry_id, calm_id}
    assert store.list_items(sentiment="negative") == []

    # Topics: the person's names replace the model's scores.
    row = store.set_label(calm_id, "topics", "Delivery; billing", actor="ann", taxonomy=TAXONOMY)
    assert row.topics == {"billing": 1.0, "delivery": 1.0}
    assert row.labels["topics"].value == ("billing", "delivery")
    assert row.labels["topics"].model_value == ("billing",)
    data = row.to_json()
    assert data["labels"]["topics"]["value"] == ["billing", "delivery"]
    assert data["labels"]["urgency"]["actor"] == "ann"
    assert data["labels"]["urgency"]["labelled_at"].endswith("Z")
    assert json.loads(json.dumps(data)) == data
    row = store.set_label(calm_id, "topics", [], actor="ann", taxonomy=TAXONOMY)
    assert row.topics == {} and row.labels["topics"].value == ()

    # Clearing a label shows the model's value again.
    row = store.clear_label(angry_id, "sentiment", actor="ann")
    assert row.sentiment == "negative" and row.flags == (Flag.NEGATIVE,)
    assert set(row.labels) == {"complaint"}
    assert [r.id for r in store.triage(now=now, flag="negative")] == [angry_id]


def test_every_change_is_an_event_and_the_same_label_again_is_a_no_op(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    p = processed_factory(sentiment="negative")
    store.write_batch([p])
    item_id = _id(store, p)
    first = store.set_label(item_id, "sentiment", "neutral", actor="mei", note="sarcasm")
    again = store.set_label(item_id, "sentiment", "NEUTRAL", actor="ann")
    assert again.labels == first.labels  # who and when of the first label are kept
    store.set_label(item_id, "sentiment", "positive", actor="ann")
    store.clear_label(item_id, "sentiment", actor="ann", note="back to the model")
    store.clear_label(item_id, "sentiment", actor="ann")
    store.set_labels(item_id, {"complaint": "yes", "urgency": "low"}, actor="lee")
    store.set_labels(item_id, {"urgency": "high"}, clear=["complaint"], actor="lee")
    got = [
        (e["kind"], e["actor"], e["from_value"], e["to_value"], e["note"])
        for e in store.item_events(item_id)
    ]
    assert got == [
        ("label", "mei", None, "sentiment=neutral", "sarcasm"),
        ("label", "ann", "sentiment=neutral", "sentiment=positive", None),
        ("label", "ann", "sentiment=positive", None, "back to the model"),
        ("label", "lee", None, "complaint=yes", None),
        ("label", "lee", None, "urgency=low", None),
        ("label", "lee", "urgency=low", "urgency=high", None),
        ("label", "lee", "complaint=yes", None, None),
    ]
    assert store.count("labels") == 1
    assert store.label_counts() == {"urgency": 1}


def test_invalid_labels_name_the_valid_values_and_write_nothing(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    p = processed_factory()
    store.write_batch([p])
    item_id = _id(store, p)
    cases = [
        ("sarcasm", "yes", "unknown label task 'sarcasm'; valid values are: sentiment, "
         "complaint, urgency, topics"),
        ("sentiment", "angry", "'angry' is not a sentiment label; valid values are: negative, "
         "neutral, positive"),
        ("complaint", "maybe", "'maybe' is not a complaint label; valid values are: no, yes"),
        ("urgency", 3, "3 is not a urgency label; valid values are: low, normal, high"),
        ("topics", "billing,weather", "unknown topic 'weather'; valid topics are: billing, "
         "delivery, account"),
    ]  # fmt: skip
    for task, value, message in cases:
        with pytest.raises(ConfigError) as err:
            store.set_label(item_id, task, value, actor="mei", taxonomy=TAXONOMY)
        assert err.value.message == message
        assert err.value.hint
    # One bad value in a batch: the good ones are not written either.
    with pytest.raises(ConfigError):
        store.set_labels(item_id, {"sentiment": "neutral", "urgency": "asap"}, actor="mei")
    with pytest.raises(ConfigError, match="cannot set and clear the sentiment label at once"):
        store.set_labels(item_id, {"sentiment": "neutral"}, clear=["sentiment"], actor="mei")
    with pytest.raises(NotFound, match="item 999 does not exist"):
        store.set_label(999, "sentiment", "neutral", actor="mei")
    assert store.count("labels") == 0 and store.item_events(item_id) == []
    # Without a taxonomy the built-in one is the reference.
    row = store.set_label(item_id, "topics", "app bugs", actor="mei")
    assert row.labels["topics"].value == ("app_bugs",)


def test_iter_labels_gives_the_item_as_the_classifier_saw_it(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    titled = processed_factory(title="Kettle broke", text="The lid  snapped off on day two.")
    plain = [processed_factory(text=f"where is my parcel number {n}") for n in range(4)]
    twin = processed_factory(text="where is my parcel number 0")  # same words, another item
    unlabelled = processed_factory()
    store.write_batch([titled, *plain, twin, unlabelled])
    store.set_label(_id(store, titled), "sentiment", "negative", actor="mei")
    for p in plain:
        store.set_label(_id(store, p), "sentiment", "neutral", actor="mei")
    store.set_label(_id(store, twin), "sentiment", "negative", actor="ann")  # the newer label
    store.set_label(_id(store, titled), "complaint", "yes", actor="mei")

    records = list(store.iter_labels(batch_size=2))  # pages of two
    assert [(r.task, r.value) for r in records] == [
        ("sentiment", "negative"),
        *[("sentiment", "neutral")] * 4,
        ("sentiment", "negative"),
        ("complaint", "yes"),
    ]
    first = records[0]
    assert first.item.title == "Kettle broke" and first.item.channel is Channel.SOCIAL
    assert first.language == "en"  # the classification's language: the item had none
    assert first.model_value == "neutral" and first.model_version == "test-1"
    assert [r.task for r in store.iter_labels("complaint")] == ["complaint"]
    with pytest.raises(ConfigError, match="valid values are"):
        list(store.iter_labels("sarcasm"))

    examples = store_examples(records, "sentiment")
    texts = {e.text: e.label for e in examples}
    # Title and text, as the model classifier reads an item (whitespace folded like --data).
    assert texts["Kettle broke The lid snapped off on day two."] == "negative"
    # One example per distinct text; the newest label wins.
    assert len(examples) == 5 and texts["where is my parcel number 0"] == "negative"
    assert {(e.source, e.language, e.split) for e in examples} == {("store", "en", "")}


# --- migration -------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
    else:
        with fresh_postgres_url() as url:
            yield url


def _alembic(url: str, action: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, revision)
    finally:
        engine.dispose()


def test_upgrade_from_0001_with_data_then_downgrade(empty_url: str) -> None:
    _alembic(empty_url, "upgrade", "0001")
    engine = create_engine(empty_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:  # an item as revision 0001 stored it
            item_id = conn.execute(
                insert(items)
                .values(
                    source="old",
                    external_id="1",
                    channel="social",
                    author_is_brand=False,
                    text="still waiting for my refund",
                    content_hash="h",
                    fingerprint="f",
                    created_at=T0,
                    collected_at=T0,
                    updated_at=T0,
                    raw={},
                    needs_reply=True,
                )
                .returning(items.c.id)
            ).scalar_one()
            conn.execute(
                insert(classifications).values(
                    item_id=item_id,
                    model_version="old-1",
                    sentiment="negative",
                    sentiment_scores={},
                    is_complaint=True,
                    complaint_score=0.9,
                    urgency="normal",
                    topics={},
                    entities=[],
                    language="en",
                    language_supported=True,
                    created_at=T0,
                )
            )
        with Store.open(empty_url, migrate=True) as store:
            assert store.current_revision() == "0002"
            row = store.set_label(item_id, "sentiment", "neutral", actor="mei")
            assert row.text == "still waiting for my refund" and row.flags[0] == Flag.COMPLAINT
            assert row.labels["sentiment"].model_version == "old-1"
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
            assert diff == []

        _alembic(empty_url, "downgrade", "0001")
        with engine.connect() as conn:
            assert "labels" not in inspect(conn).get_table_names()
            assert conn.execute(select(items.c.text)).scalars().all() == [
                "still waiting for my refund"
            ]
            assert conn.execute(select(events.c.to_value)).scalars().all() == [
                "sentiment=neutral"
            ]  # the history stays
        with Store.open(empty_url, migrate=True) as store:  # and up again
            row = store.get_item(item_id)
            assert row is not None and row.labels == {} and row.sentiment == "negative"
    finally:
        engine.dispose()


# --- training helpers ------------------------------------------------------------------------


def test_store_weight_gives_few_in_domain_rows_a_third_of_the_weight_within_a_cap() -> None:
    assert store_weight(1_000, 5_000) == 2.5  # 1000 * 2.5 = half of 5000: a third of all
    assert store_weight(100, 5_000) == STORE_WEIGHT_MAX  # would be 25: capped
    assert store_weight(5_000, 100) == 1.0  # plenty of in-domain rows: no boost
    assert store_weight(10, 0) == store_weight(0, 10) == 1.0


def test_store_notes_say_what_is_too_thin() -> None:
    assert store_notes("complaint", []) == [
        "complaint: no labels in the store (careradar triage label ITEM --complaint ...)"
    ]
    rows = store_examples([], "sentiment")
    assert rows == []
    few = [Example(f"t{i}", "negative" if i else "positive", "en", "store", "") for i in range(5)]
    notes = store_notes("sentiment", few)
    assert "only 5 labels in the store (fewer than 20)" in notes[0]
    assert "too few store labels for neutral 0, positive 1" in notes[1]


def test_a_class_without_training_rows_is_never_predicted() -> None:
    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(1, 0.3, (20, 4)), rng.normal(-1, 0.3, (20, 4))]).astype(np.float32)
    y = ["positive"] * 20 + ["negative"] * 20
    weights = np.where(np.arange(40) < 20, 3.0, 1.0)
    head, _ = fit_head("sentiment", x, y, encoder="toy", sample_weight=weights)
    assert head.weights.shape == (4, 3)
    proba = head.predict_proba(x)
    assert proba[:, 1].max() < 1e-6  # neutral: no row, no prediction
    assert set(head.predict(x)) == {"negative", "positive"}


def test_model_card_names_the_store_as_data_with_weight_and_in_domain_scores(
    tmp_path: Path,
) -> None:
    held_out = metrics(["negative", "positive"], ["negative", "negative"], TASKS_SENTIMENT)
    report = TaskReport(
        task="sentiment",
        encoder="e5-small",
        n_train=110,
        n_test=30,
        train_sources={"vader/tweets": 100, "store": 10},
        overall=held_out,
        by_group={"store (en)": held_out},
        calibration={},
        seconds=1.0,
        extra={"store": {"n_train": 10, "weight": 5.0, "held_out": held_out}},
    )
    card = write_model_card(
        tmp_path,
        [report],
        routes={"*": "e5-small"},
        reason="test",
        extra_evals={},
        seed=1,
        files=[],
        used_builtin=False,
    ).read_text("utf-8")
    assert "- `store`: the team's own labels from the triage queue" in card
    assert "row weighs 5 times a shared row" in card
    assert "### In-domain: the team's own labels (held out)" in card
    assert "| sentiment | e5-small | 10 | 2 | 0.500 |" in card


# --- the command line ------------------------------------------------------------------------


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "careradar.yaml"
    cfg.write_text(f"database:\n  url: sqlite:///{tmp_path / 'labels.db'}\n", "utf-8")
    return cfg


def _small_set() -> list[dict[str, str]]:
    with (DATA / "train_small.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_label_then_export_is_a_file_train_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], processed_factory: ProcessedFactory
) -> None:
    cfg = _config(tmp_path)
    rows = _small_set()
    batch = [processed_factory(text=r["text"], language=r["language"]) for r in rows]
    with Store.open(f"sqlite:///{tmp_path / 'labels.db'}") as store:
        store.write_batch(batch)
        ids = [_id(store, p) for p in batch]
        for item_id, r in zip(ids[1:], rows[1:], strict=True):
            store.set_label(item_id, "sentiment", r["label"], actor="seed")
    base = ["--config", str(cfg)]

    code, out, err = cli(
        capsys,
        *base,
        "triage",
        "label",
        str(ids[0]),
        "--sentiment",
        rows[0]["label"],
        "--complaint",
        "no",
        "--topics",
        "Delivery",
        "--as",
        "mei",
        "--json",
    )
    assert code == 0, err
    shown = json.loads(out)
    assert shown["sentiment"] == rows[0]["label"] and shown["is_complaint"] is False
    assert shown["labels"]["complaint"] == {
        "value": "no",
        "actor": "mei",
        "labelled_at": shown["labels"]["complaint"]["labelled_at"],
        "model_value": "no",
        "model_version": "test-1",
        "note": None,
    }
    assert shown["labels"]["topics"]["value"] == ["delivery"]
    code, out, _ = cli(capsys, *base, "items", "show", str(ids[0]))
    assert code == 0
    assert "complaint no (corrected)" in out
    assert "corrected: complaint no by mei" in out and "model said no" in out
    code, out, _ = cli(capsys, *base, "items", "show", str(ids[0]), "--json")
    assert [e["to_value"] for e in json.loads(out)["events"]] == [
        f"sentiment={rows[0]['label']}",
        "complaint=no",
        "topics=delivery",
    ]

    # Mistakes are one line and a hint, exit 2, and change nothing.
    for args, message in [
        (["--urgency", "asap"], "'asap' is not a urgency label; valid values are: low, normal"),
        (["--topics", "weather"], "unknown topic 'weather'; valid topics are: delivery"),
        (["--clear", "mood"], "unknown label task 'mood'"),
        ([], "nothing to label"),
    ]:
        code, _, err = cli(capsys, *base, "triage", "label", str(ids[0]), *args)
        assert code == 2 and message in err and "hint:" in err, err
    code, _, err = cli(capsys, *base, "triage", "label", "424242", "--sentiment", "neutral")
    assert code == 1 and "no item '424242'" in err

    export = tmp_path / "labels.jsonl"
    code, _, err = cli(capsys, *base, "labels", "export", "-o", str(export))
    assert (
        code == 0 and "exported 32 labels (sentiment 30, complaint 1, urgency 0, topics 1)" in err
    )
    lines = [json.loads(line) for line in export.read_text("utf-8").splitlines()]
    assert lines[0]["task"] == "sentiment" and lines[0]["actor"] in ("mei", "seed")
    assert lines[-1] == {**lines[-1], "task": "topics", "label": "", "topics": ["delivery"]}

    code, out, err = cli(
        capsys,
        "train",
        "--no-builtin-data",
        "--data",
        str(export),
        "--task",
        "sentiment",
        "--encoders",
        "e5-small",
        "--out",
        str(tmp_path / "heads"),
        "--json",
    )
    assert code == 0, err
    (report,) = json.loads(out)["reports"]
    assert report["n_train"] + report["n_test"] == 30
    head = LinearHead.load(tmp_path / "heads" / "e5-small", "sentiment")
    assert head.meta["train_sources"] == {"file": report["n_train"]}

    # CSV: same rows, topics as 'a;b', read by the same loader.
    export_csv = tmp_path / "complaint.csv"
    code, _, err = cli(
        capsys, *base, "labels", "export", "--task", "complaint", "-f", "csv", "-o", str(export_csv)
    )
    assert code == 0, err
    with export_csv.open(encoding="utf-8", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [(r["label"], r["task"], r["model_value"]) for r in table] == [("no", "complaint", "no")]
    assert "topics" not in table[0]  # no topics rows: no topics column, train --task all is safe
    assert [e.label for e in load_labelled_file(export_csv, task="complaint")] == ["no"]


def test_export_redacts_personal_data_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], processed_factory: ProcessedFactory
) -> None:
    cfg = _config(tmp_path)
    p = processed_factory(text="refund me, write to ann.lee@example.com")
    # Staff notes are free text too: here one quotes the customer's other address and phone.
    note = "she asked us to use ann.home@example.org or +60 12-345 6789 instead"
    with Store.open(f"sqlite:///{tmp_path / 'labels.db'}") as store:
        store.write_batch([p])
        store.set_label(_id(store, p), "complaint", "yes", actor="mei", note=note)
    code, out, _ = cli(capsys, "--config", str(cfg), "labels", "export")
    assert code == 0 and "ann.lee@example.com" not in out and "[email]" in out
    assert "ann.home" not in out and "345" not in out
    code, out, _ = cli(capsys, "--config", str(cfg), "labels", "export", "--no-redact")
    assert "ann.lee@example.com" in out
    # The item export carries each label with its note; the note is redacted like the text.
    code, out, _ = cli(capsys, "--config", str(cfg), "export", "-f", "jsonl")
    (item,) = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and "[email]" in item["text"]
    assert item["labels"]["complaint"]["note"] == ("she asked us to use [email] or [phone] instead")
    code, out, _ = cli(capsys, "--config", str(cfg), "export", "-f", "jsonl", "--no-redact")
    assert json.loads(out)["labels"]["complaint"]["note"] == note
    code, _, err = cli(capsys, "--config", str(cfg), "labels", "export", "--task", "mood")
    assert code == 2 and "valid values are: sentiment, complaint, urgency, topics" in err


def _clock_config(tmp_path: Path, url: str) -> Path:
    """Reviews count business hours (Mon-Fri 09-17 UTC, 8 h target); the source 'vip-source'
    overrides its channel's policy with a 15-minute one."""
    cfg = tmp_path / "careradar.yaml"
    cfg.write_text(
        f"""database:
  url: {url}
sla:
  calendars:
    office: {{timezone: UTC, hours: {{mon-fri: "09:00-17:00"}}}}
  policies:
    review: {{target: 8h, calendar: office}}
    vip: {{target: 15m}}
sources:
  - {{name: vip-source, kind: file, channel: social, path: x.jsonl, sla_policy: vip}}
""",
        "utf-8",
    )
    return cfg


def test_a_label_that_asks_for_attention_opens_a_reply_clock(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    store: Store,
    processed_factory: ProcessedFactory,
) -> None:
    base = ["--config", str(_clock_config(tmp_path, store.url))]
    posted = now_utc() - timedelta(minutes=10)
    # All four were judged to need no reply: 'ignored', no clock.
    calm = processed_factory(source="vip-source", created_at=posted, needs_reply=False)
    # Wednesday noon (T0): 8 business hours is Thursday noon, long past.
    review = processed_factory(channel=Channel.REVIEW, created_at=T0, needs_reply=False)
    dismissed = processed_factory(needs_reply=False)
    brand = processed_factory(author_is_brand=True, needs_reply=False)
    store.write_batch([calm, review, dismissed, brand])
    calm_id, review_id, dismissed_id, brand_id = (
        _id(store, p) for p in (calm, review, dismissed, brand)
    )
    # A person took this one out of the queue on purpose: that is never overridden.
    store.set_status(dismissed_id, "new", actor="ann")
    store.set_status(dismissed_id, "ignored", actor="ann", note="spam")

    def label(item_id: int, *args: str) -> dict[str, Any]:
        code, out, err = cli(capsys, *base, "triage", "label", str(item_id), *args, "--json")
        assert code == 0, err
        row: dict[str, Any] = json.loads(out)
        return row

    # Urgent: the clock starts when the customer posted, on the source's own policy.
    row = label(calm_id, "--urgency", "high", "--as", "mei")
    assert (row["needs_reply"], row["status"], row["policy"]) == (True, "new", "vip")
    assert row["due_at"] == (posted + timedelta(minutes=15)).isoformat().replace("+00:00", "Z")
    assert row["flags"] == ["urgent"]
    (opened,) = [e for e in store.item_events(calm_id) if e["kind"] == "status"]
    assert (opened["actor"], opened["from_value"], opened["to_value"]) == ("mei", "ignored", "new")
    assert opened["note"] == "label urgency=high opened the reply clock"

    # A complaint in a review: business hours, and already overdue (honestly).
    row = label(review_id, "--complaint", "YES", "--as", "mei")
    assert (row["needs_reply"], row["status"], row["policy"]) == (True, "new", "review")
    assert row["due_at"] == "2024-05-02T12:00:00Z"
    assert row["flags"] == ["complaint", "overdue"]
    assert [r.id for r in store.triage()] == [calm_id, review_id]

    # Taking the label back (or saying "no complaint") never closes the clock.
    row = label(review_id, "--complaint", "no")
    assert (row["needs_reply"], row["status"], row["due_at"]) == (
        True,
        "new",
        "2024-05-02T12:00:00Z",
    )
    row = label(calm_id, "--clear", "urgency")
    assert row["needs_reply"] is True and row["policy"] == "vip"
    # Labelling it urgent again keeps the first clock.
    assert label(calm_id, "--urgency", "high")["due_at"] == row["due_at"]

    # A person's 'ignored' stays; the item still gets its clock should someone reopen it.
    row = label(dismissed_id, "--complaint", "yes")
    assert (row["needs_reply"], row["status"], row["policy"]) == (True, "ignored", "social")
    # The brand's own post never waits for a reply; other labels start nothing.
    row = label(brand_id, "--complaint", "yes", "--urgency", "high")
    assert (row["needs_reply"], row["status"], row["due_at"]) == (False, "ignored", None)
    fresh = processed_factory(needs_reply=False)  # posted 2024-05-01 12:00:05
    store.write_batch([fresh])
    fresh_id = _id(store, fresh)
    row = label(fresh_id, "--sentiment", "negative", "--urgency", "normal")
    assert (row["needs_reply"], row["status"], row["due_at"]) == (False, "ignored", None)
    assert [r.id for r in store.triage()] == [calm_id, review_id]

    # People read what happened.
    code, out, err = cli(capsys, *base, "triage", "label", str(fresh_id), "--complaint", "yes")
    assert code == 0, err
    assert f"item {fresh_id}: flags negative complaint overdue" in out
    assert "reply clock opened (social, from the post): due 2024-05-01 13:00 UTC, status new" in out


def test_open_clock_only_starts_what_is_missing(
    store: Store, processed_factory: ProcessedFactory
) -> None:
    waiting = processed_factory(target_seconds=600)
    cross_post = processed_factory(needs_reply=False)
    store.write_batch([waiting])
    store.write_batch(
        [processed_factory(cross_post.item, needs_reply=False, duplicate_of=waiting.item.key)]
    )
    clock = SlaState(
        policy="other",
        target_seconds=60,
        started_at=T0,
        due_at=T0 + timedelta(minutes=1),
        at_risk_at=T0,
        status=Status.NEW,
    )
    before = store.get_item(_id(store, waiting))
    assert before is not None
    # Already waiting: its clock is kept, no event.
    row = store.open_clock(before.id, clock, actor="mei", note="x")
    assert (row.policy, row.due_at, row.status) == (before.policy, before.due_at, before.status)
    # A cross-post rides on its first copy's clock.
    dup = store.open_clock(_id(store, cross_post), clock, actor="mei", note="x")
    assert dup.duplicate_of_id == before.id and (dup.needs_reply, dup.due_at) == (False, None)
    assert store.item_events(before.id) == store.item_events(dup.id) == []
    with pytest.raises(NotFound, match="item 999 does not exist"):
        store.open_clock(999, clock, actor="mei", note="x")


# Six in-domain posts for --from-store, two per sentiment class.
OWN = [
    ("my router has been dead for three days and nobody answers", "negative"),
    ("charged twice again this month, absolutely fed up", "negative"),
    ("what time does the Subang store open on Sunday", "neutral"),
    ("I moved house, how do I change my billing address", "neutral"),
    ("the technician was on time and fixed it in ten minutes, thank you", "positive"),
    ("new plan is cheaper and the signal is great, very happy", "positive"),
]


def test_train_from_store_weights_and_measures_the_teams_own_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], processed_factory: ProcessedFactory
) -> None:
    cfg = _config(tmp_path)
    batch = [processed_factory(text=text, language="en") for text, _ in OWN]
    with Store.open(f"sqlite:///{tmp_path / 'labels.db'}") as store:
        store.write_batch(batch)
        ids = [_id(store, p) for p in batch]
        for item_id, (_, label) in zip(ids, OWN, strict=True):
            store.set_label(item_id, "sentiment", label, actor="mei")
        store.set_label(ids[0], "urgency", "high", actor="mei")
        store.set_label(ids[1], "urgency", "normal", actor="mei")
        store.set_label(ids[2], "urgency", "normal", actor="mei")
        store.set_label(ids[0], "complaint", "yes", actor="mei")
    base = ["--config", str(cfg), "train", "--from-store", "--no-builtin-data"]
    common = ["--encoders", "e5-small", "--json"]

    # Mixed with a --data file: the store's rows are weighted and measured on their own.
    code, out, err = cli(
        capsys,
        *base,
        "--data",
        str(DATA / "train_small.csv"),
        "--task",
        "sentiment",
        "--out",
        str(tmp_path / "mixed"),
        *common,
    )
    assert code == 0, err
    summary = json.loads(out)
    (report,) = summary["reports"]
    own = report["store"]
    # 2 per class: one held out each; 24 file rows train, so each store row weighs
    # (1/3 * 24) / (2/3 * 3) = 4.
    assert (own["n_train"], own["n_test"], own["weight"]) == (3, 3, 4.0)
    assert 0.0 <= own["held_out"]["macro_f1"] <= 1.0
    assert set(report["by_group"]) >= {"store (en)", "file (en)"}
    head = LinearHead.load(tmp_path / "mixed" / "e5-small", "sentiment")
    assert head.meta["train_sources"] == {"file": 24, "store": 3}
    assert head.meta["store_weight"] == 4.0
    assert summary["store"]["labels"] == {"sentiment": 6}
    assert any("only 6 labels in the store" in n for n in summary["store"]["notes"])

    # The store alone, every task: thin tasks train on what there is or are skipped, and say so.
    code, out, err = cli(capsys, *base, "--task", "all", "--out", str(tmp_path / "own"), *common)
    assert code == 0, err
    summary = json.loads(out)
    assert [(r["task"], r["store"]["n_train"]) for r in summary["reports"]] == [
        ("sentiment", 3),
        ("urgency", 2),  # high 1 (train only) and normal 2 (one held out)
    ]
    notes = summary["store"]["notes"]
    assert "complaint: the training rows have only yes labels: not trained" in " ".join(
        n.replace("complaint (e5-small)", "complaint") for n in notes
    )
    assert any("too few store labels for low 0, high 1" in n for n in notes)
    assert summary["routes"] == {}  # not every task trained: the routing is left alone
    urgency = LinearHead.load(tmp_path / "own" / "e5-small", "urgency")
    assert urgency.labels == ("low", "normal", "high")

    # Human-readable: an in-domain table and the notes.
    code, out, err = cli(
        capsys, *base, "--task", "sentiment", "--encoders", "e5-small", "--out", str(tmp_path / "t")
    )
    assert code == 0, err
    assert "in-domain (your labels, held out)" in out and "labels in the store: sentiment 6" in out
    assert "note: sentiment: only 6 labels" in out

    # Nothing at all to train on is one error with a hint.
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli(
        capsys,
        "--config",
        str(_config(empty)),
        "train",
        "--from-store",
        "--no-builtin-data",
        "--task",
        "complaint",
        "--encoders",
        "e5-small",
        "--out",
        str(empty / "heads"),
    )
    assert code == 2 and "nothing to train" in err and "triage label" in err


def test_train_from_store_trains_topics_from_topic_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], processed_factory: ProcessedFactory
) -> None:
    cfg = _config(tmp_path)
    with (DATA / "topics_train.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    batch = [processed_factory(text=r["text"], language=r["language"]) for r in rows]
    with Store.open(f"sqlite:///{tmp_path / 'labels.db'}") as store:
        store.write_batch(batch)
        for p, r in zip(batch, rows, strict=True):
            store.set_label(_id(store, p), "topics", r["topics"], actor="mei")
    code, out, err = cli(
        capsys,
        "--config",
        str(cfg),
        "train",
        "--from-store",
        "--task",
        "topics",
        "--encoders",
        "e5-small",
        "--out",
        str(tmp_path / "heads"),
        "--json",
    )
    assert code == 0, err
    (report,) = json.loads(out)["topics"]["reports"]
    assert report["n_train"] + report["n_test"] == 60
    assert report["topics"] == ["delivery", "billing", "account", "app_bugs"]
    assert report["heads_file"] is not None
    card = (tmp_path / "heads" / "MODEL_CARD.md").read_text("utf-8")
    assert "60 topic labels from the store (the team's own labels" in card
