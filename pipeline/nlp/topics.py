"""Topics: multi-label scores over the taxonomy, zero-shot from its text, better with labels.

**Zero-shot** (no labelled data). Every topic in ``config/taxonomy.yaml`` has a label, a
description and example phrases in several languages. They are embedded once with the
configured encoder (cached in memory per encoder name and taxonomy digest) and a text's
embedding ``x`` is compared with each topic ``t`` through three cosine similarities:

- ``best``: the mean of the ``k = 2`` highest similarities to the topic's examples (a text
  like one example is about that topic, whatever the other examples say);
- ``centroid``: to the normalised mean of the examples (what the examples share);
- ``definition``: to ``"<label>: <description>"``.

``s = 0.4*best + 0.4*centroid + 0.2*definition``. Raw cosines from one encoder sit in a narrow
band (e5: 0.75-0.9 for everything), so what decides is mostly relative:
``z = s - mean(s over topics)`` and ``margin = s - max(s over other topics)``, plus ``s`` itself
so that off-topic text ("lol", "good morning") can score low everywhere. A logistic
calibration ``p = sigmoid(a*z + b*margin + c*s + d)`` turns that into a probability. Its four
numbers are fitted on the taxonomy itself, leave-one-out: each example phrase, scored against
prototypes built without it, is a positive for its own topic and a negative for the others;
:data:`BACKGROUND` chatter is a negative for all. So a new taxonomy calibrates itself,
deterministically, with no labelled data. The L2 penalty of that fit (:data:`CALIBRATION_L2`)
keeps it from the overconfidence clean example phrases invite (see ``models/topics.md``).

**With labelled examples** (:meth:`TopicScorer.fit`). Per topic with at least
:data:`MIN_POSITIVES` labelled positives, an L2-regularised logistic regression over
``[embedding, zero-shot logit]`` (Newton's method, no randomness) learns where the taxonomy's
wording and the team's real messages differ. The embedding is standardised before the penalty
(:data:`HEAD_L2`) applies, and the zero-shot logit's weight is pulled towards 1, so with few
labels the head stays close to the zero-shot score. With ``n`` labelled rows a head's
probability stays within ``1/(2(n+1))`` of 0 and 1: a few dozen examples cannot show that
a topic is certain. Topics without enough labels keep the zero-shot score.
:meth:`TopicScorer.save` writes the heads to a small ``.npz`` with the encoder name, taxonomy
digest and number of rows; :meth:`TopicScorer.load` refuses heads made for another encoder or
taxonomy (a changed taxonomy needs retraining, not silently wrong scores) and reads files of
format 1 (no row count, no bound) with a warning to retrain.

Scores are in [0, 1]; :meth:`TopicScorer.score` keeps the topics at or above the threshold
(default :data:`DEFAULT_THRESHOLD`), several per text when several apply, best first.
Measured accuracy is in ``models/topics.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from pipeline.errors import ConfigError
from pipeline.nlp.encoders import Encoder
from pipeline.nlp.taxonomy import Topic

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_POSITIVES",
    "FitReport",
    "TopicScorer",
    "has_words",
    "taxonomy_digest",
]

DEFAULT_THRESHOLD: Final = 0.5
MIN_POSITIVES: Final = 5
"""A topic needs this many labelled positives before :meth:`TopicScorer.fit` trains its head."""

TOP_K: Final = 2
WEIGHTS: Final = (0.4, 0.4, 0.2)
"""Blend of (best examples, centroid, definition) similarities."""

FORMAT_VERSION: Final = 2
"""Heads files: 2 adds the number of labelled rows (the probability bound); 1 still loads."""
CALIBRATION_L2: Final = 0.03

HEAD_L2: Final = 3.0
"""L2 penalty of a topic head's embedding weights, per standardised embedding dimension."""
ZERO_SHOT_PRIOR_L2: Final = 1.0
"""How strongly a head's weight on the zero-shot logit is pulled towards 1 (the zero-shot
score unchanged): with few labels a head stays close to the zero-shot scorer."""

BACKGROUND: Final = (
    "",
    "lol",
    "ok",
    "haha",
    "thanks!",
    "good morning everyone",
    "what a beautiful day",
    "happy friday!",
    "just watched the game",
    "can't wait for the weekend",
    "selamat pagi semua",
    "terima kasih",
    "hola a todos",
    "buenos días",
    "哈哈哈",
    "早上好",
)
"""Off-topic messages, negatives for every topic in the zero-shot calibration."""

_F32 = np.float32

log = logging.getLogger(__name__)


def taxonomy_digest(topics: Sequence[Topic]) -> str:
    """A short digest of everything the scorer reads from a taxonomy (names, text, order)."""
    data = [[t.name, t.label, t.description, list(t.examples)] for t in topics]
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()[:12]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0))))


def _normalise(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.asarray(v / np.maximum(norms, 1e-12), dtype=_F32)


@dataclass(frozen=True)
class _Prototypes:
    """Embedded taxonomy: example vectors per topic, centroids, definitions."""

    examples: tuple[np.ndarray, ...]  # per topic (n_t, dim)
    centroids: np.ndarray  # (T, dim)
    definitions: np.ndarray  # (T, dim)


_proto_cache: dict[tuple[str, str], _Prototypes] = {}
_calibration_cache: dict[tuple[str, str], np.ndarray] = {}
_proto_lock = threading.Lock()


def _texts_of(topic: Topic) -> list[str]:
    # A topic without examples (keywords only) falls back to its label as the one example.
    return list(topic.examples) or [topic.label]


def _prototypes(encoder: Encoder, topics: Sequence[Topic], digest: str) -> _Prototypes:
    key = (encoder.name, digest)
    with _proto_lock:
        cached = _proto_cache.get(key)
        if cached is not None:
            return cached
        texts: list[str] = []
        for t in topics:
            texts.extend(_texts_of(t))
        texts.extend(f"{t.label}: {t.description}" for t in topics)
        vectors = np.asarray(encoder.encode(texts), dtype=_F32)
        examples: list[np.ndarray] = []
        start = 0
        for t in topics:
            n = len(_texts_of(t))
            examples.append(vectors[start : start + n])
            start += n
        protos = _Prototypes(
            examples=tuple(examples),
            centroids=_normalise(np.stack([e.mean(axis=0) for e in examples])),
            definitions=vectors[start:],
        )
        _proto_cache[key] = protos
        return protos


def _blend(best: np.ndarray, centroid: np.ndarray, definition: np.ndarray) -> np.ndarray:
    w_best, w_centroid, w_definition = WEIGHTS
    return np.asarray(w_best * best + w_centroid * centroid + w_definition * definition)


def _top_k_mean(sims: np.ndarray) -> np.ndarray:
    """Mean of the ``TOP_K`` highest values along the last axis (all of them if fewer)."""
    k = min(TOP_K, sims.shape[-1])
    part = np.sort(sims, axis=-1)[..., -k:]
    return np.asarray(part.mean(axis=-1))


def _relative(s: np.ndarray) -> np.ndarray:
    """(N, T) blended similarities -> (N, T, 3) features: vs the mean, vs the best other, raw."""
    t = s.shape[1]
    z = s - s.mean(axis=1, keepdims=True)
    if t == 1:
        margin = np.zeros_like(s)
    else:
        top2 = np.sort(s, axis=1)[:, -2:]
        best_other = np.where(s >= top2[:, 1:2], top2[:, 0:1], top2[:, 1:2])
        margin = s - best_other
    return np.stack([z, margin, s], axis=-1)


def _fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    *,
    l2: np.ndarray | float,
    sample_weight: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    iterations: int = 50,
) -> np.ndarray:
    """Weights (last one the bias) of an L2-regularised logistic regression, by Newton's method.

    Deterministic: no random init, no shuffling. ``l2`` may be one value or one per weight
    (the bias is never penalised). ``prior`` (one per weight, default all zero) is where the
    penalty pulls each weight and where the search starts. A step that would increase the
    penalised loss is halved until it does not (far from the optimum a full Newton step can
    overshoot). Stops when the step is tiny.
    """
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))]).astype(np.float64)
    sw = np.ones(n) if sample_weight is None else sample_weight.astype(np.float64)
    penalty = np.broadcast_to(np.asarray(l2, dtype=np.float64), (d,)).copy()
    reg = np.append(penalty, 0.0)
    centre = np.zeros(d + 1) if prior is None else np.append(prior, 0.0).astype(np.float64)

    def loss(weights: np.ndarray) -> float:
        z = xb @ weights
        data = np.sum(sw * (np.logaddexp(0.0, z) - y * z))
        return float(data + 0.5 * np.sum(reg * (weights - centre) ** 2))

    w = centre.copy()
    current = loss(w)
    for _ in range(iterations):
        p = _sigmoid(xb @ w)
        grad = xb.T @ (sw * (p - y)) + reg * (w - centre)
        hess = (xb * (sw * p * (1 - p))[:, None]).T @ xb + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while (new := loss(w - scale * step)) > current + 1e-12 * (1.0 + abs(current)):
            if scale < 1e-6:
                break
            scale /= 2
        w -= scale * step
        current = new
        if float(np.abs(scale * step).max()) < 1e-7:
            break
    return w


@dataclass(frozen=True)
class FitReport:
    """What :meth:`TopicScorer.fit` did: which topics got a head, from how many positives."""

    trained: dict[str, int]
    skipped: dict[str, int]
    examples: int


def has_words(text: str) -> bool:
    """Whether ``text`` has a letter in any script. Blank text, "??", "!!!", an order number or
    emoji alone say nothing about what a post is about: their embedding is mostly the encoder's
    prefix, which can land near any topic ("??" scored 0.55 for outages)."""
    return any(ch.isalpha() for ch in text)


class TopicScorer:
    """Scores texts' embeddings against a taxonomy (see the module docstring)."""

    def __init__(
        self, topics: Sequence[Topic], encoder: Encoder, *, threshold: float | None = None
    ) -> None:
        if not topics:
            raise ValueError("a topic scorer needs at least one topic")
        self.topics: tuple[Topic, ...] = tuple(topics)
        self.names: tuple[str, ...] = tuple(t.name for t in self.topics)
        self.encoder = encoder
        self.threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        self.digest = taxonomy_digest(self.topics)
        self._protos = _prototypes(encoder, self.topics, self.digest)
        self._calibration = self._calibrate()
        self._heads: dict[int, np.ndarray] = {}
        self._rows = 0  # labelled rows behind the heads; 0: no bound (format 1 files)

    @property
    def version(self) -> str:
        """Changes with the encoder, the taxonomy and the trained heads."""
        h = hashlib.sha256(f"{self.encoder.name}|{self.digest}".encode())
        for index in sorted(self._heads):
            h.update(self._heads[index].astype(np.float64).tobytes())
        if self._heads:
            h.update(f"|rows={self._rows}".encode())
        return f"topics-{FORMAT_VERSION}+{h.hexdigest()[:8]}"

    # -- zero-shot ----------------------------------------------------------------------------

    def _similarity(self, x: np.ndarray) -> np.ndarray:
        """(N, dim) embeddings -> (N, T) blended similarities."""
        p = self._protos
        best = np.stack([_top_k_mean(x @ e.T) for e in p.examples], axis=1)
        return _blend(best, x @ p.centroids.T, x @ p.definitions.T)

    def _calibrate(self) -> np.ndarray:
        """Fit (a, b, c, d) of the zero-shot calibration, leave-one-out on the examples."""
        key = (self.encoder.name, self.digest)
        with _proto_lock:
            cached = _calibration_cache.get(key)
        if cached is not None:
            return cached
        weights = self._fit_calibration()
        with _proto_lock:
            _calibration_cache[key] = weights
        return weights

    def _fit_calibration(self) -> np.ndarray:
        p = self._protos
        features: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        n_topics = len(self.topics)
        for ti, vectors in enumerate(p.examples):
            if len(vectors) < 2:
                continue
            for i in range(len(vectors)):
                x = vectors[i : i + 1]
                rest = np.delete(vectors, i, axis=0)
                best = np.stack([_top_k_mean(x @ e.T) for e in p.examples], axis=1)
                best[0, ti] = _top_k_mean(x @ rest.T)[0]
                centroids = p.centroids.copy()
                centroids[ti] = _normalise(rest.mean(axis=0))
                s = _blend(best, x @ centroids.T, x @ p.definitions.T)
                features.append(_relative(s)[0])
                y = np.zeros(n_topics)
                y[ti] = 1.0
                targets.append(y)
        if not features:
            return np.array([20.0, 20.0, 0.0, -1.0])  # no examples to learn from: fixed slopes
        # Off-topic chatter is a negative for every topic: without it, the relative features
        # would always crown some topic, even for "lol".
        background = np.asarray(self.encoder.encode(BACKGROUND), dtype=_F32)
        features.extend(_relative(self._similarity(background)))
        targets.extend(np.zeros((len(background), n_topics)))
        x_all = np.concatenate(features)
        y_all = np.concatenate(targets)
        # Balance: each topic's positive counts as much as the (T-1) negatives beside it.
        weights = np.where(y_all == 1.0, float(max(1, n_topics - 1)) / 2.0, 1.0)
        return _fit_logistic(x_all, y_all, l2=CALIBRATION_L2, sample_weight=weights)

    def _zero_shot_logits(self, x: np.ndarray) -> np.ndarray:
        feats = _relative(self._similarity(x))
        w = self._calibration
        return np.asarray(feats @ w[:-1] + w[-1])

    # -- scoring ------------------------------------------------------------------------------

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, T) topic probabilities in [0, 1], columns in taxonomy order."""
        x = np.asarray(embeddings, dtype=_F32)
        if x.ndim != 2 or x.shape[1] != self._protos.centroids.shape[1]:
            raise ValueError(
                f"expected embeddings of shape (N, {self._protos.centroids.shape[1]}) from "
                f"{self.encoder.name}, got {x.shape}"
            )
        if len(x) == 0:
            return np.zeros((0, len(self.topics)))
        logits = self._zero_shot_logits(x)
        for index, w in self._heads.items():
            logits[:, index] = np.hstack([x, logits[:, index : index + 1]]) @ w[:-1] + w[-1]
        probs = _sigmoid(logits)
        if self._heads and self._rows:
            # n labelled rows cannot show an error rate below about 1 in 2(n+1): a head's
            # probability is kept that far from 0 and 1 (0.5 stays 0.5, the order is kept).
            eps = 1.0 / (2 * (self._rows + 1))
            cols = sorted(self._heads)
            probs[:, cols] = eps + (1.0 - 2.0 * eps) * probs[:, cols]
        return probs

    def score(self, embeddings: np.ndarray) -> list[dict[str, float]]:
        """Per row: topic name -> probability, only topics at/above the threshold, best first."""
        probs = self.probabilities(embeddings)
        # Best first; the loop stops at the first probability that cannot round up to the
        # threshold (most rows keep one topic or none, so few of the T columns are looked at).
        floor = self.threshold - 1e-4
        out: list[dict[str, float]] = []
        for row, order in zip(probs, np.argsort(-probs, axis=1), strict=True):
            found: dict[str, float] = {}
            for j in order:
                p = float(row[j])
                if p < floor:
                    break
                if (rounded := round(p, 4)) >= self.threshold:
                    found[self.names[j]] = rounded
            out.append(found)
        return out

    def score_texts(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """:meth:`score` after encoding ``texts`` with the scorer's encoder; text without a word
        has no topic (:func:`has_words`)."""
        found = self.score(self.encoder.encode(texts))
        return [
            topics if has_words(text) else {} for text, topics in zip(texts, found, strict=True)
        ]

    # -- labelled examples --------------------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[Iterable[str]],
        *,
        embeddings: np.ndarray | None = None,
        l2: float = HEAD_L2,
    ) -> FitReport:
        """Train a head per topic from texts labelled with sets of topic names.

        ``labels[i]`` lists the topics of ``texts[i]`` (empty: about none of them, a useful
        negative). Unknown topic names raise :class:`ValueError` naming them. ``embeddings``
        skips encoding when the caller has them already. Replaces earlier heads.

        Each head is a logistic regression over ``[embedding, zero-shot logit]``. The embedding
        is scaled to unit variance per dimension (``sqrt(dim)``: the encoders' vectors have
        norm 1) so that ``l2`` means the same for any encoder; the zero-shot logit's weight is
        pulled towards 1 (:data:`ZERO_SHOT_PRIOR_L2`), so a head starts as the zero-shot scorer
        and moves as far as the labels show. Stored weights act on the raw embedding. (Heads
        fitted before format 2 penalised the raw embedding, too strongly for it to matter, and
        left the zero-shot weight and the bias free: on small or separable data those grew
        until probabilities were exactly 1.0.)
        """
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} label sets")
        index = {n: i for i, n in enumerate(self.names)}
        y = np.zeros((len(texts), len(self.names)))
        for row, names in enumerate(labels):
            for name in names:
                if name not in index:
                    raise ValueError(
                        f"label {name!r} (row {row}) is not a topic; valid: {', '.join(self.names)}"
                    )
                y[row, index[name]] = 1.0
        x = np.asarray(self.encoder.encode(texts) if embeddings is None else embeddings, dtype=_F32)
        zero_shot = self._zero_shot_logits(x) if len(x) else np.zeros_like(y)
        heads: dict[int, np.ndarray] = {}
        trained: dict[str, int] = {}
        skipped: dict[str, int] = {}
        dim = x.shape[1] if x.ndim == 2 else 0
        scale = float(np.sqrt(dim))
        penalty = np.append(np.full(dim, l2), ZERO_SHOT_PRIOR_L2)
        prior = np.append(np.zeros(dim), 1.0)
        for j, name in enumerate(self.names):
            positives = int(y[:, j].sum())
            if positives < MIN_POSITIVES or positives == len(y):
                skipped[name] = positives
                continue
            features = np.hstack([x.astype(np.float64) * scale, zero_shot[:, j : j + 1]])
            pos_weight = (len(y) - positives) / positives
            weights = np.where(y[:, j] == 1.0, min(pos_weight, 10.0), 1.0)
            w = _fit_logistic(features, y[:, j], l2=penalty, sample_weight=weights, prior=prior)
            w[:dim] *= scale  # weights on the raw embedding
            heads[j] = w
            trained[name] = positives
        self._heads = heads
        self._rows = len(texts)
        return FitReport(trained=trained, skipped=skipped, examples=len(texts))

    def heads_path(self, models_dir: str | Path) -> Path:
        """Where heads for this encoder and taxonomy live in ``models_dir``: the file name
        carries both, so heads for another taxonomy are never picked up by mistake."""
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.encoder.name)
        return Path(models_dir) / f"topics-{safe}-{self.digest}.npz"

    def load_if_present(self, models_dir: str | Path) -> bool:
        """Load :meth:`heads_path` if it exists (True), else stay zero-shot (False)."""
        path = self.heads_path(models_dir)
        if not path.is_file():
            return False
        self.load(path)
        return True

    def save(self, path: str | Path) -> Path:
        """Write the trained heads (a few KB per topic) with what they were trained for."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        names = [self.names[i] for i in sorted(self._heads)]
        weights = (
            np.stack([self._heads[i] for i in sorted(self._heads)])
            if self._heads
            else np.zeros((0, 0))
        )
        meta = {
            "format": FORMAT_VERSION,
            "encoder": self.encoder.name,
            "taxonomy_digest": self.digest,
            "topics": names,
            "rows": self._rows,
        }
        with target.open("wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), weights=weights)
        return target

    def load(self, path: str | Path) -> None:
        """Read heads written by :meth:`save` for this encoder and taxonomy.

        Raises :class:`~pipeline.errors.ConfigError` when the file is missing, unreadable or
        was trained for a different encoder or taxonomy.
        """
        source = Path(path)
        hint = "run `careradar train --task topics` again for this taxonomy and encoder"
        try:
            with np.load(source, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                weights = np.asarray(data["weights"], dtype=np.float64)
        except FileNotFoundError:
            raise ConfigError(f"{source}: topic heads file not found", hint=hint) from None
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{source}: not a topic heads file ({exc})", hint=hint) from exc
        if meta.get("format") not in (1, FORMAT_VERSION):
            raise ConfigError(f"{source}: unknown format {meta.get('format')!r}", hint=hint)
        if meta.get("encoder") != self.encoder.name:
            raise ConfigError(
                f"{source}: trained with encoder {meta.get('encoder')!r}, "
                f"but the configured encoder is {self.encoder.name!r}",
                hint=hint,
            )
        if meta.get("taxonomy_digest") != self.digest:
            raise ConfigError(
                f"{source}: trained for another taxonomy (digest {meta.get('taxonomy_digest')}, "
                f"this one is {self.digest})",
                hint=hint,
            )
        index = {n: i for i, n in enumerate(self.names)}
        names = list(meta.get("topics", []))
        if len(names) != len(weights) or any(n not in index for n in names):
            raise ConfigError(f"{source}: topic list does not match its weights", hint=hint)
        rows = meta.get("rows", 0)
        if meta["format"] >= 2 and not (isinstance(rows, int) and rows > 0):
            raise ConfigError(f"{source}: no labelled row count", hint=hint)
        if meta["format"] == 1 and names:
            log.warning(
                "%s: topic heads from an older careradar, whose scores can be overconfident "
                "(exactly 1.0); %s",
                source,
                hint,
            )
        self._heads = {index[n]: weights[k] for k, n in enumerate(names)}
        self._rows = rows if meta["format"] >= 2 else 0
