"""Offline encoders: shapes, normalisation, order, determinism, odd inputs, names and paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.nlp.encoders import (
    BUILTIN_ENCODERS,
    MAX_TOKENS,
    Encoder,
    load_encoder,
    minilm_path,
)

TEXTS = [
    "my order never arrived and nobody answers",
    "Thanks, the kettle is lovely!",
    "",
    "等了两个星期还没收到货",
    "pesanan saya belum sampai lagi, tolong semak",
    "ok",
]


@pytest.fixture(scope="session")
def e5() -> Encoder:
    return load_encoder("e5-small")


@pytest.fixture(scope="session")
def minilm_int8() -> Encoder:
    return load_encoder("minilm-int8")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["e5-small", "minilm-int8"])
def test_shape_dtype_and_unit_norm(name: str) -> None:
    enc = load_encoder(name)
    x = enc.encode(TEXTS)
    assert x.shape == (len(TEXTS), enc.dim) == (len(TEXTS), 384)
    assert x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)
    assert np.isfinite(x).all()


def test_e5_is_multilingual_and_minilm_english(e5: Encoder, minilm_int8: Encoder) -> None:
    assert e5.languages is None
    assert minilm_int8.languages == frozenset({"en"})
    assert e5.name != minilm_int8.name


def test_order_is_input_order_whatever_the_batching(e5: Encoder) -> None:
    forward = e5.encode(TEXTS, batch_size=2)
    backward = e5.encode(TEXTS[::-1], batch_size=4)
    np.testing.assert_array_equal(forward, backward[::-1])
    # each row is the text's own vector, not a neighbour's
    single = e5.encode([TEXTS[3]])
    np.testing.assert_array_equal(forward[3], single[0])


def test_same_input_twice_gives_identical_output(e5: Encoder, minilm_int8: Encoder) -> None:
    for enc in (e5, minilm_int8):
        np.testing.assert_array_equal(enc.encode(TEXTS), enc.encode(TEXTS))


def test_empty_list_and_empty_text(e5: Encoder, minilm_int8: Encoder) -> None:
    for enc in (e5, minilm_int8):
        assert enc.encode([]).shape == (0, enc.dim)
        assert enc.encode([""]).shape == (1, enc.dim)


@pytest.mark.slow
def test_very_long_text_is_truncated_not_slow_or_failing(e5: Encoder) -> None:
    long = "the blender broke again and I want a refund. " * 4_000  # ~180,000 characters
    x = e5.encode([long, "short"])
    assert x.shape == (2, 384)
    # only the head is read: the same as encoding the first MAX_TOKENS tokens' worth
    head = e5.encode([long[: MAX_TOKENS * 2]])
    assert float(x[0] @ head[0]) > 0.95


def test_similar_meaning_is_closer_across_languages(e5: Encoder) -> None:
    en, zh, other = e5.encode(
        ["my parcel has not arrived yet", "我的包裹还没到", "the weather is sunny today"]
    )
    assert float(en @ zh) > float(en @ other)


def test_loaded_once_per_process() -> None:
    assert load_encoder("e5-small") is load_encoder("e5-small")


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as exc:
        load_encoder("bert-of-the-year")
    message = str(exc.value)
    for name in BUILTIN_ENCODERS:
        assert name in message


def test_directory_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.json"):
        load_encoder(str(tmp_path))


def test_hub_id_not_in_cache_is_refused_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="never downloads"):
        load_encoder("someone/not-a-cached-model")


@pytest.mark.slow
def test_local_model_directory_loads_like_the_builtin(minilm_int8: Encoder) -> None:
    """A user's own transformers model: here the bundled MiniLM directory, by path."""
    enc = load_encoder(str(minilm_path()))
    assert enc.dim == 384
    fp32 = load_encoder("minilm")
    np.testing.assert_allclose(enc.encode(TEXTS), fp32.encode(TEXTS), atol=1e-5)
    # int8 is an approximation of fp32 (the benchmark measures label agreement), not noise
    cos = np.sum(minilm_int8.encode(TEXTS) * fp32.encode(TEXTS), axis=1)
    assert (cos > 0.8).all() and cos.mean() > 0.93
