"""`careradar classify`: one result per input line, in order, whatever the bytes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.items import Classification
from pipeline.nlp import classify_io
from pipeline.nlp.classify_io import classify_lines, parse_line
from pipeline.nlp.lexicon import LexiconClassifier

DATA = Path(__file__).parents[1] / "data" / "nlp_b"
INPUT = DATA / "classify_input.txt"
RESULT_KEYS = {
    "line",
    "sentiment",
    "probabilities",
    "is_complaint",
    "complaint_score",
    "topics",
    "urgency",
    "entities",
    "language",
    "language_supported",
    "model_version",
}
ERROR_LINES = {2, 3, 4, 6, 7}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "careradar.yaml"
    path.write_text(
        "classifier:\n  kind: lexicon\n  products: [HeatMax 3000]\n  batch_size: 2\n", "utf-8"
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    captured = capsys.readouterr()
    return int(e.value.code or 0), captured.out, captured.err


def test_json_one_object_per_line_in_order(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--config", str(config), "classify", "--json", str(INPUT))
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 13))
    assert {r["line"] for r in rows if "error" in r} == ERROR_LINES
    for r in rows:
        if "error" in r:
            assert r["error"].startswith(f"line {r['line']}: ")
            assert r["model_version"].startswith("lexicon-1")
        else:
            assert set(r) - {"id"} == RESULT_KEYS
            assert set(r["probabilities"]) == {"negative", "neutral", "positive"}
            assert r["urgency"] in ("low", "normal", "high")
    assert "not valid UTF-8" in rows[3]["error"]
    assert rows[5]["id"] == 2 and rows[6]["id"] == 3


def test_json_content(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--config", str(config), "classify", "--json", str(INPUT))
    rows = {r["line"]: r for r in map(json.loads, out.splitlines())}
    assert rows[1]["is_complaint"] and rows[1]["sentiment"] == "negative"
    assert "delivery" in rows[1]["topics"]
    assert {"label": "ORDER_ID", "text": "A12345", "start": 51, "end": 57} in rows[1]["entities"]
    record = rows[5]
    assert record["id"] == "r-1" and record["language"] == "en"
    assert "billing" in record["topics"]
    assert [e["label"] for e in record["entities"]] == ["PRODUCT", "MONEY"]
    assert rows[8]["sentiment"] in ("positive", "neutral")  # "{sarcasm} ..." is text, not JSON
    assert rows[9]["language"] == "zh" and rows[9]["language_supported"] is False
    assert "delivery" in rows[9]["topics"]
    assert rows[12]["sentiment"] == "positive"  # the trailing CR is not part of the text


def test_pii_never_printed(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--config", str(config), "classify", "--json", str(INPUT))
    assert "jo.lee@example.com" not in out and "345 6789" not in out
    row = json.loads(out.splitlines()[10])
    assert {"label": "EMAIL", "text": "[email]", "start": 12, "end": 30} in row["entities"]
    _, table, _ = run(capsys, "--config", str(config), "classify", str(INPUT))
    assert "jo.lee@example.com" not in table and "[email]" in table


def test_table_output(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--config", str(config), "classify", str(INPUT))
    assert code == 0
    assert "sentiment" in out.splitlines()[0]
    assert out.count("error") == len(ERROR_LINES)
    assert "12 lines classified" in err and "5 errors" in err


def test_stdin_bytes(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"\xef\xbb\xbfmy order never arrived\n\xc3\x28\n\nok thanks"  # BOM, bad byte, no EOL
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    _, out, _ = run(capsys, "--config", str(config), "classify", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4]
    assert ["error" in r for r in rows] == [False, True, True, False]
    assert rows[0]["is_complaint"] is True


def test_missing_file_is_a_readable_error(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--config", str(config), "classify", "/nonexistent/in.txt")
    assert code == 2
    assert "/nonexistent/in.txt: cannot read" in err


def test_parse_line_detects_per_line() -> None:
    assert parse_line(1, b'{"text": "hi", "id": [1]}').text == "hi"
    assert parse_line(1, b'{"text": "hi", "id": [1]}').id is None  # only scalar ids echo
    assert parse_line(1, b'{"text": 5}').error is not None
    assert parse_line(1, b'["a list"]').text == '["a list"]'
    assert parse_line(1, b"{not json").text == "{not json"
    assert parse_line(1, b"\x80").error is not None


class FailsOnBoom(LexiconClassifier):
    """The real lexicon classifier, except that any text containing BOOM raises."""

    def classify(self, items: Any) -> list[Classification]:
        if any("BOOM" in i.text for i in items):
            raise RuntimeError("model exploded")
        return super().classify(items)


def test_a_failing_text_costs_only_its_own_line() -> None:
    data = b"first fine\nBOOM\nthird fine\nfourth fine\nfifth\n"
    chunks = list(classify_lines(io.BytesIO(data), FailsOnBoom(), chunk_lines=2))
    assert [len(c) for c in chunks] == [2, 2, 1]  # streamed in chunks of two
    rows = [r for chunk in chunks for _, r in chunk]
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5]
    assert "model exploded" in rows[1]["error"]
    assert all("error" not in r for i, r in enumerate(rows) if i != 1)


def test_overlong_line_is_skipped_not_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classify_io, "MAX_LINE_BYTES", 50)
    data = b"short one\n" + b"x" * 500 + b"\nafter it\n"
    rows = [r for c in classify_lines(io.BytesIO(data), LexiconClassifier()) for _, r in c]
    assert [r["line"] for r in rows] == [1, 2, 3]
    assert "longer than the 50-byte limit" in rows[1]["error"]
    assert "error" not in rows[2]


class CountingLexicon(LexiconClassifier):
    """Records the batch sizes it is called with."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def classify(self, items: Any) -> list[Classification]:
        self.batches.append(len(items))
        return super().classify(items)


def test_classifies_in_batches_not_one_by_one() -> None:
    data = b"".join(f"text number {i}\n".encode() for i in range(600))
    clf = CountingLexicon()
    rows = [r for c in classify_lines(io.BytesIO(data), clf, chunk_lines=256) for _, r in c]
    assert len(rows) == 600
    assert clf.batches == [256, 256, 88]


@pytest.mark.slow
def test_subprocess_without_config_uses_defaults(tmp_path: Path) -> None:
    # A real process, real stdin bytes, no config file anywhere: the default configuration.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "classify", "--json"],
        input=b"my parcel never arrived\n\xff\n\n",
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [("error" in r) for r in rows] == [False, True, True]
