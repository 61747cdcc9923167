"""Measure topic scoring (pipeline.nlp.topics) on labelled public data mapped to the taxonomy.

Usage: ``python benchmarks/topics_eval.py [--encoder e5-small] [--data ../shared/data]``

Data (licences in models/topics.md): banking77 intents and CFPB complaint issues, each mapped
to one of the taxonomy's consumer topics only where the mapping is clear (the maps below);
every other intent/issue is left out rather than guessed. Each kept text has exactly one gold
topic.

Reported per data set: zero-shot top-1 accuracy (argmax over the taxonomy's topics), multi-label
micro/macro F1 at the default threshold (predicted set = topics scored >= 0.5, gold set = the one
mapped topic), and the same after :meth:`TopicScorer.fit` on labelled examples: banking77 with
50 training texts per intent-topic pair from its own train split (seeded sample), evaluated on
its test split; CFPB with 5-fold cross-validation (it has no split).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.nlp.encoders import load_encoder  # noqa: E402
from pipeline.nlp.taxonomy import load_taxonomy  # noqa: E402
from pipeline.nlp.topics import TopicScorer  # noqa: E402

BANKING77 = {
    "card_arrival": "delivery",
    "card_delivery_estimate": "delivery",
    "extra_charge_on_statement": "billing",
    "transaction_charged_twice": "billing",
    "Refund_not_showing_up": "billing",
    "request_refund": "billing",
    "card_payment_fee_charged": "billing",
    "transfer_fee_charged": "billing",
    "cash_withdrawal_charge": "billing",
    "passcode_forgotten": "account",
    "pin_blocked": "account",
    "edit_personal_details": "account",
    "unable_to_verify_identity": "account",
    "card_not_working": "product_quality",
    "contactless_not_working": "product_quality",
    "virtual_card_not_working": "product_quality",
    "terminate_account": "cancellation",
    "cancel_transfer": "cancellation",
    "compromised_card": "privacy",
    "card_payment_not_recognised": "privacy",
    "cash_withdrawal_not_recognised": "privacy",
    "direct_debit_payment_not_recognised": "privacy",
    "lost_or_stolen_phone": "privacy",
    "pending_transfer": "wait_times",
    "pending_top_up": "wait_times",
    "pending_cash_withdrawal": "wait_times",
    "transfer_timing": "wait_times",
    "exchange_rate": "pricing",
    "card_payment_wrong_exchange_rate": "pricing",
}
CFPB = {
    "Trouble during payment process": "billing",
    "Problem with a purchase shown on your statement": "billing",
    "Fees or interest": "billing",
    "Problem when making payments": "billing",
    "Charged fees or interest you didn't expect": "billing",
    "Charged fees or interest I didn't expect": "billing",
    "Problem with a lender or other company charging your account": "billing",
    "Unexpected or other fees": "billing",
    "Closing an account": "cancellation",
    "Closing your account": "cancellation",
    "Problem with fraud alerts or security freezes": "privacy",
    "Fraud or scam": "privacy",
    "Credit monitoring or identity theft protection services": "privacy",
    "Identity theft protection or other monitoring services": "privacy",
    "Unauthorized transactions or other transaction problem": "privacy",
    "Threatened to contact someone or share information improperly": "privacy",
    "Improper contact or sharing of info": "privacy",
    "Communication tactics": "customer_service",
    "Problem with customer service": "customer_service",
}


def _read(
    path: Path, text_col: str, label_col: str, mapping: dict[str, str]
) -> list[tuple[str, str, str]]:
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            topic = mapping.get(row[label_col])
            if topic and row[text_col].strip():
                rows.append((row[text_col].strip(), topic, row[label_col]))
    return rows


def _metrics(scorer: TopicScorer, emb: np.ndarray, gold: list[str]) -> dict[str, float]:
    probs = scorer.probabilities(emb)
    names = list(scorer.names)
    top1 = float(np.mean([names[int(np.argmax(p))] == g for p, g in zip(probs, gold, strict=True)]))
    tp: dict[str, int] = defaultdict(int)
    fp: dict[str, int] = defaultdict(int)
    fn: dict[str, int] = defaultdict(int)
    for p, g in zip(probs, gold, strict=True):
        pred = {names[j] for j in range(len(names)) if p[j] >= scorer.threshold}
        for n in pred:
            if n == g:
                tp[n] += 1
            else:
                fp[n] += 1
        if g not in pred:
            fn[g] += 1

    def f1(t: int, f_p: int, f_n: int) -> float:
        return 2 * t / (2 * t + f_p + f_n) if t + f_p + f_n else 0.0

    micro = f1(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    present = sorted(set(gold))
    macro = float(np.mean([f1(tp[n], fp[n], fn[n]) for n in present]))
    return {"top1": round(top1, 3), "micro_f1": round(micro, 3), "macro_f1": round(macro, 3)}


def _embed(encoder_name: str, texts: list[str], cache: Path) -> np.ndarray:
    if cache.exists():
        data = np.asarray(np.load(cache), dtype=np.float32)
        if data.shape[0] == len(texts):
            return data
    emb = load_encoder(encoder_name).encode(texts)
    np.save(cache, emb)
    return emb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", default="e5-small")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--per-label", type=int, default=50)
    ap.add_argument("--cache", default="/tmp/careradar-topics-eval")
    args = ap.parse_args()
    data = Path(args.data)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    encoder = load_encoder(args.encoder)
    t0 = time.perf_counter()
    scorer = TopicScorer(load_taxonomy(), encoder)
    report: dict[str, object] = {
        "encoder": encoder.name,
        "calibration": scorer._calibration.round(3).tolist(),
    }

    # banking77: zero-shot on test; fit on a seeded sample of train
    test = _read(data / "banking77" / "test.csv", "text", "label", BANKING77)
    train = _read(data / "banking77" / "train.csv", "text", "label", BANKING77)
    rng = random.Random(13)
    by_label: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for row in train:
        by_label[row[2]].append(row)
    sample = [
        r
        for lab in sorted(by_label)
        for r in rng.sample(by_label[lab], min(args.per_label, len(by_label[lab])))
    ]
    e_test = _embed(args.encoder, [r[0] for r in test], cache / f"{encoder.name}-b77-test.npy")
    e_train = _embed(
        args.encoder,
        [r[0] for r in sample],
        cache / f"{encoder.name}-b77-train{args.per_label}.npy",
    )
    gold = [r[1] for r in test]
    b77: dict[str, object] = {
        "test_texts": len(test),
        "train_texts": len(sample),
        "zero_shot": _metrics(scorer, e_test, gold),
    }
    fitted = TopicScorer(load_taxonomy(), encoder)
    fitted.fit([r[0] for r in sample], [[r[1]] for r in sample], embeddings=e_train)
    b77["fitted"] = _metrics(fitted, e_test, gold)
    report["banking77"] = b77

    # CFPB: zero-shot on all mapped rows; 5-fold cross-validated fit
    rows = _read(data / "cfpb_complaints_sample" / "cfpb_narratives.csv", "text", "issue", CFPB)
    e_rows = _embed(args.encoder, [r[0] for r in rows], cache / f"{encoder.name}-cfpb.npy")
    gold_c = [r[1] for r in rows]
    cf: dict[str, object] = {
        "texts": len(rows),
        "per_topic": {t: gold_c.count(t) for t in sorted(set(gold_c))},
    }
    cf["zero_shot"] = _metrics(scorer, e_rows, gold_c)
    order = list(range(len(rows)))
    random.Random(7).shuffle(order)
    folds = [order[k::5] for k in range(5)]
    probs_all = np.zeros((len(rows), len(scorer.names)))
    for k in range(5):
        held = set(folds[k])
        tr = [i for i in order if i not in held]
        s = TopicScorer(load_taxonomy(), encoder)
        s.fit([rows[i][0] for i in tr], [[rows[i][1]] for i in tr], embeddings=e_rows[tr])
        probs_all[folds[k]] = s.probabilities(e_rows[folds[k]])

    class _Fixed:
        names = scorer.names
        threshold = scorer.threshold

        def probabilities(self, _e: np.ndarray) -> np.ndarray:
            return probs_all

    cf["fitted_5fold"] = _metrics(_Fixed(), e_rows, gold_c)  # type: ignore[arg-type]
    report["cfpb"] = cf
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["machine"] = f"{platform.machine()} python {platform.python_version()}"
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
