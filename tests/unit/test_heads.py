"""Linear heads: numpy inference, files, temperature scaling, calibration error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.nlp.heads import (
    MIN_PROBABILITY,
    LinearHead,
    TaskHeads,
    expected_calibration_error,
    fit_temperature,
)
from pipeline.nlp.train import fit_head, metrics


def _head(seed: int = 0, dim: int = 8) -> LinearHead:
    rng = np.random.default_rng(seed)
    return LinearHead(
        task="sentiment",
        labels=("negative", "neutral", "positive"),
        weights=rng.normal(size=(dim, 3)),
        bias=rng.normal(size=3),
        encoder="e5-small",
        temperature=1.5,
    )


def test_probabilities_sum_to_one_and_keep_row_order() -> None:
    head = _head()
    x = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)
    p = head.predict_proba(x)
    assert p.shape == (5, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(head.predict_proba(x[::-1]), p[::-1], atol=1e-7)
    assert head.predict(x) == [head.labels[i] for i in p.argmax(axis=1)]


def test_temperature_changes_confidence_not_the_label() -> None:
    head = _head()
    x = np.random.default_rng(2).normal(size=(20, 8)).astype(np.float32)
    sharp = head.predict_proba(x)
    head.temperature = 10.0
    soft = head.predict_proba(x)
    assert (sharp.argmax(1) == soft.argmax(1)).all()
    assert soft.max(1).mean() < sharp.max(1).mean()


def test_wrong_feature_width_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        _head().predict_proba(np.zeros((2, 5), dtype=np.float32))


def test_weights_must_match_labels() -> None:
    with pytest.raises(ValueError):
        LinearHead("urgency", ("low", "high"), np.zeros((4, 3)), np.zeros(3), encoder="x")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    head = _head()
    head.meta = {"seed": 13}
    head.save(tmp_path)
    assert (tmp_path / "sentiment.npz").is_file() and (tmp_path / "sentiment.json").is_file()
    again = LinearHead.load(tmp_path, "sentiment")
    assert again.labels == head.labels and again.encoder == "e5-small"
    assert again.temperature == head.temperature and again.meta["seed"] == 13
    np.testing.assert_array_equal(again.weights, head.weights)
    assert again.fingerprint() == head.fingerprint()


def test_fingerprint_changes_with_the_weights() -> None:
    assert _head(0).fingerprint() != _head(1).fingerprint()


def test_missing_or_damaged_head_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no trained complaint head") as exc:
        LinearHead.load(tmp_path, "complaint")
    assert "careradar train" in (exc.value.hint or "")
    (tmp_path / "complaint.npz").write_bytes(b"not a zip")
    (tmp_path / "complaint.json").write_text("{}")
    with pytest.raises(ConfigError):
        LinearHead.load(tmp_path, "complaint")


def test_fit_temperature_recovers_an_overconfident_scale() -> None:
    rng = np.random.default_rng(3)
    true_logits = rng.normal(size=(4000, 3)) * 2.0
    p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    t = fit_temperature(true_logits * 3.0, y)  # the "model" is 3x overconfident
    assert 2.5 < t < 3.5


def test_ece_is_zero_for_perfect_confidence_and_high_for_overconfidence() -> None:
    y = np.array([0, 1, 2, 0])
    perfect = np.eye(3)[y]
    assert expected_calibration_error(perfect, y) == 0.0
    wrong = np.eye(3)[(y + 1) % 3]
    assert expected_calibration_error(wrong, y) == 1.0


def test_fit_head_is_deterministic_and_learns_separable_data() -> None:
    rng = np.random.default_rng(4)
    centers = rng.normal(size=(3, 16)) * 3
    labels = ("negative", "neutral", "positive")
    y = [labels[i % 3] for i in range(600)]
    x = np.stack([centers[i % 3] + rng.normal(size=16) for i in range(600)]).astype(np.float32)
    a, cal_a = fit_head("sentiment", x, y, encoder="test", seed=1)
    b, cal_b = fit_head("sentiment", x, y, encoder="test", seed=1)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.temperature == b.temperature and cal_a == cal_b
    m = metrics(y, a.predict(x), labels)
    assert m["accuracy"] > 0.95
    assert set(cal_a) >= {"ece_before", "ece_after", "temperature"}


def test_metrics_per_class_and_confusion() -> None:
    m = metrics(["yes", "yes", "no", "no"], ["yes", "no", "no", "no"], ("no", "yes"))
    assert m["accuracy"] == 0.75
    assert m["confusion"] == [[2, 0], [1, 1]]  # rows gold, columns predicted
    assert m["per_class"]["yes"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert m["macro_f1"] == round((0.8 + 0.6667) / 2, 4)


def test_language_heads_serve_their_language_and_the_shared_head_the_rest(
    tmp_path: Path,
) -> None:
    shared, indonesian = _head(0), _head(1)
    # a language head may store its labels in another order: columns follow the shared head
    indonesian = LinearHead(
        "sentiment",
        indonesian.labels[::-1],
        indonesian.weights[:, ::-1],
        indonesian.bias[::-1],
        encoder="e5-small",
        temperature=indonesian.temperature,
    )
    heads = TaskHeads(shared, {"id": indonesian})
    x = np.random.default_rng(3).normal(size=(4, 8)).astype(np.float32)
    langs = ["id", "en", None, "id"]
    p = heads.predict_proba(x, langs)
    np.testing.assert_allclose(p[[1, 2]], shared.predict_proba(x[[1, 2]]), atol=1e-6)
    np.testing.assert_allclose(p[[0, 3]], _head(1).predict_proba(x[[0, 3]]), atol=1e-6)
    # no languages: the shared head for every row
    np.testing.assert_allclose(heads.predict_proba(x), shared.predict_proba(x), atol=1e-6)
    heads.save(tmp_path)
    assert (tmp_path / "sentiment@id.npz").is_file()
    again = TaskHeads.load(tmp_path, "sentiment")
    assert set(again.by_language) == {"id"} and again.fingerprint() == heads.fingerprint()
    np.testing.assert_allclose(again.predict_proba(x, langs), p, atol=1e-6)
    # a retrain without the language head removes the old file instead of keeping it in use
    TaskHeads(shared).save(tmp_path)
    assert not (tmp_path / "sentiment@id.npz").exists()
    assert TaskHeads.load(tmp_path, "sentiment").by_language == {}


def test_a_partial_head_only_shares_out_what_the_shared_head_gives_its_labels(
    tmp_path: Path,
) -> None:
    """Chinese reviews say negative or positive, never neutral: their head decides which way a
    text leans, and how likely neutral is stays the shared head's call."""
    shared = _head(0)
    rng = np.random.default_rng(5)
    polarity = LinearHead(
        "sentiment",
        ("positive", "negative"),  # stored in another order than the shared head's
        rng.normal(size=(8, 2)),
        rng.normal(size=2),
        encoder="e5-small",
    )
    heads = TaskHeads(shared, {"zh": polarity})
    x = rng.normal(size=(5, 8)).astype(np.float32)
    langs = ["zh", "en", "zh", None, "zh"]
    p = heads.predict_proba(x, langs)
    base = shared.predict_proba(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(p[[1, 3]], base[[1, 3]], atol=1e-6)
    zh = [0, 2, 4]
    np.testing.assert_allclose(p[zh, 1], base[zh, 1], atol=1e-6)  # neutral untouched
    q = polarity.predict_proba(x[zh])  # (positive, negative)
    np.testing.assert_allclose(p[zh, 2] / (p[zh, 0] + p[zh, 2]), q[:, 0], atol=1e-6)
    heads.save(tmp_path)
    again = TaskHeads.load(tmp_path, "sentiment")
    np.testing.assert_allclose(again.predict_proba(x, langs), p, atol=1e-6)
    # one label, or a label the task does not have, is not a head
    for labels in (("negative",), ("negative", "angry")):
        odd = LinearHead(
            "sentiment@zh", labels, np.zeros((8, len(labels))), np.zeros(len(labels)), "e5-small"
        )
        odd.save(tmp_path)
        with pytest.raises(ConfigError, match="two or more of"):
            TaskHeads.load(tmp_path, "sentiment")


def test_a_language_head_of_another_width_is_a_config_error(tmp_path: Path) -> None:
    _head(0).save(tmp_path)
    odd = _head(1, dim=5)
    odd.task = "sentiment@id"
    odd.save(tmp_path)
    with pytest.raises(ConfigError, match="sentiment@id"):
        TaskHeads.load(tmp_path, "sentiment")


def test_high_urgency_needs_its_minimum_probability() -> None:
    def identity(task: str, labels: tuple[str, str, str]) -> TaskHeads:
        weights = np.eye(3, dtype=np.float32)
        return TaskHeads(LinearHead(task, labels, weights, np.zeros(3), encoder="e5-small"))

    urgency = identity("urgency", ("low", "normal", "high"))
    # Features are log-probabilities: p(high) is 0.45, 0.59 and 0.90, the largest in each row.
    x = np.log(
        np.array([[0.15, 0.40, 0.45], [0.01, 0.40, 0.59], [0.05, 0.05, 0.90]], dtype=np.float32)
    )
    assert list(urgency.predict_proba(x).argmax(axis=1)) == [2, 2, 2]
    assert MIN_PROBABILITY["urgency"]["high"] == 0.6
    assert urgency.predict(x) == ["normal", "normal", "high"]
    assert "min:high=0.6" in urgency.fingerprint()
    # Other tasks keep the plain most likely label.
    sentiment = identity("sentiment", ("negative", "neutral", "positive"))
    assert sentiment.predict(x) == ["positive", "positive", "positive"]
