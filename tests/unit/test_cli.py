"""The command line as a person and a script use it: real demo data, real SQLite file."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.nlp.pii import redact as redact_note

ROOT = Path(__file__).resolve().parents[2]


def cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    captured = capsys.readouterr()
    return int(e.value.code or 0), captured.out, captured.err


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The bundled demo config and data, copied so the test owns its database."""
    tmp = tmp_path_factory.mktemp("demo")
    shutil.copytree(ROOT / "config", tmp / "config")
    cfg = tmp / "config" / "demo.yaml"
    text = cfg.read_text(encoding="utf-8").replace(
        "${CARERADAR_DEMO_DB:-sqlite:///demo.db}", f"sqlite:///{tmp / 'demo.db'}"
    )
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        main(["--config", str(cfg), "run", "--once", "--json"])
    assert e.value.code == 0
    return cfg


def test_run_once_json_reports_every_source(demo, capsys):
    # A second run: every cursor is at the end of its file, so nothing is read again.
    code, out, _ = cli(capsys, "--config", str(demo), "run", "--once", "--json")
    assert code == 0
    results = {r["source"]: r for r in json.loads(out)}
    assert set(results) == {"demo-social", "demo-reviews", "demo-email", "demo-chat", "demo-forum"}
    assert all((r["status"], r["seen"], r["new"]) == ("ok", 0, 0) for r in results.values())


def test_triage_list_json(demo, capsys):
    code, out, _ = cli(capsys, "--config", str(demo), "triage", "list", "--json", "-n", "500")
    assert code == 0
    queue = json.loads(out)
    assert queue, "the demo must put something in the queue"
    assert all(r["status"] in ("new", "acknowledged") for r in queue)
    assert all(not r["author_is_brand"] for r in queue)
    assert {r["channel"] for r in queue} >= {"chat", "social", "email"}
    # Live items come first: nothing more than an hour overdue leads the queue.
    from datetime import datetime, timedelta

    first_due = datetime.fromisoformat(queue[0]["due_at"])
    assert first_due > datetime.now(first_due.tzinfo) - timedelta(hours=1)
    # PII never reaches the output.
    blob = json.dumps(queue)
    assert "4111 1111 1111 1111" not in blob
    assert "[card]" in blob or "[phone]" in blob or "[email]" in blob


def test_triage_actions_write_history(demo, capsys):
    _, out, _ = cli(capsys, "--config", str(demo), "triage", "list", "--json", "-n", "1")
    item_id = json.loads(out)[0]["id"]
    code, out, _ = cli(capsys, "--config", str(demo), "triage", "ack", str(item_id), "--as", "mei")
    assert code == 0 and "acknowledged" in out
    code, _, _ = cli(capsys, "--config", str(demo), "triage", "assign", str(item_id), "lead-anna")
    assert code == 0
    code, out, _ = cli(capsys, "--config", str(demo), "items", "show", str(item_id), "--json")
    shown = json.loads(out)
    assert shown["assignee"] == "lead-anna"
    assert [e["to_value"] for e in shown["events"]][-2:] == ["acknowledged", "lead-anna"]
    assert shown["events"][-2]["actor"] == "mei"


def test_items_show_unknown_is_one_line_with_hint(demo, capsys):
    code, _, err = cli(capsys, "--config", str(demo), "items", "show", "999999")
    assert code == 1
    assert "error: no item '999999'" in err
    assert "hint:" in err
    assert "Traceback" not in err


def test_bad_inputs_and_status(demo, capsys):
    code, out, _ = cli(capsys, "--config", str(demo), "bad-inputs", "--json")
    assert code == 0
    bad = json.loads(out)
    where = {b["location"] for b in bad}
    assert "social.jsonl line 17" in where
    assert any(b["source"] == "demo-reviews" for b in bad)
    code, out, _ = cli(capsys, "--config", str(demo), "status", "--json")
    status = {s["source"]: s for s in json.loads(out)}
    assert status["demo-social"]["bad_total"] == 3
    assert status["demo-reviews"]["bad_total"] == 1
    assert status["demo-chat"]["last_status"] == "ok"
    assert status["demo-chat"]["items_total"] == 34


def test_export_csv_is_redacted(demo, capsys):
    code, out, _ = cli(capsys, "--config", str(demo), "export", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) >= 200
    assert "4111 1111 1111 1111" not in out
    assert {"due_at", "first_response_at", "breached", "sentiment"} <= set(rows[0])


def test_collect_dry_run_writes_nothing(demo, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    data = tmp_path / "n.jsonl"
    data.write_text(
        json.dumps(
            {"id": "n1", "text": "refund still missing??", "created_at": "2026-11-23T10:00:00Z"}
        )
        + "\n",
        encoding="utf-8",
    )
    cfg.write_text(
        f"database: {{url: 'sqlite:///{tmp_path / 'd.db'}'}}\n"
        "sources:\n  - {name: news, kind: file, channel: social, path: n.jsonl}\n",
        encoding="utf-8",
    )
    code, out, _ = cli(capsys, "--config", str(cfg), "collect", "news", "--dry-run", "--json")
    assert code == 0
    preview = json.loads(out)
    assert [i["external_id"] for i in preview["items"]] == ["n1"]
    item = preview["items"][0]
    assert item["classification"]["is_complaint"] is True
    assert item["sla"]["policy"] == "social"
    assert item["sla"]["due_at"] == "2026-11-23T11:00:00Z"
    assert item["content_hash"] and item["fingerprint"]
    assert preview["cursor"]["files"]
    assert not (tmp_path / "d.db").exists()


def test_entities_are_shown_redacted_in_their_context(tmp_path, capsys):
    # The lexicon keeps the raw address in its EMAIL entity; every view must redact it. The
    # order number after 订单号 is an order number there, not the phone number it looks like.
    data = tmp_path / "n.jsonl"
    text = "订单号 48213579 还没发货, write to jane.doe@example.com"
    data.write_text(
        json.dumps({"id": "n1", "text": text, "created_at": "2026-11-23T10:00:00Z"}) + "\n",
        encoding="utf-8",
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"database: {{url: 'sqlite:///{tmp_path / 'd.db'}'}}\n"
        "classifier: {kind: lexicon}\n"
        "sources:\n  - {name: news, kind: file, channel: chat, path: n.jsonl}\n",
        encoding="utf-8",
    )
    assert cli(capsys, "--config", str(cfg), "run", "--once", "--json")[0] == 0
    listed = cli(capsys, "--config", str(cfg), "items", "list", "--json")[1]
    queued = cli(capsys, "--config", str(cfg), "triage", "list", "--json")[1]
    exported = cli(capsys, "--config", str(cfg), "export", "--format", "jsonl")[1]
    rows = {
        "items list": json.loads(listed),
        "triage list": json.loads(queued),
        "export": [json.loads(line) for line in exported.splitlines()],
    }
    for name, out in rows.items():
        assert "jane.doe@example.com" not in json.dumps(out, ensure_ascii=False), name
        shown = {e["label"]: e["text"] for e in out[0]["entities"]}
        assert shown["EMAIL"] == "[email]" and shown["ORDER_ID"] == "48213579", name


def test_broken_config_exits_2_naming_the_key(tmp_path, capsys):
    cfg = tmp_path / "prod.yaml"
    cfg.write_text("sources:\n  - {name: a, kind: rss2}\n", encoding="utf-8")
    code, _, err = cli(capsys, "--config", str(cfg), "config", "check")
    assert code == 2
    assert "prod.yaml: sources[0].kind: unknown collector kind 'rss2'" in err
    assert "valid values are: chat, email, feed, file, reddit, reviews" in " ".join(err.split())
    assert "Traceback" not in err


def test_config_check_warns_and_summarises(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "sources:\n  - {name: slow, kind: file, channel: social, path: x, schedule: {every: 2h}}\n",
        encoding="utf-8",
    )
    code, out, _ = cli(capsys, "--config", str(cfg), "config", "check", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["sources"][0]["sla_policy"] == "social"
    assert summary["warnings"] and "every 2h" in summary["warnings"][0]


def test_missing_config_file(capsys):
    code, _, err = cli(capsys, "--config", "/nonexistent/c.yaml", "status")
    assert code == 2
    assert "config file not found" in err


def test_python_dash_m_is_the_same_cli():
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "version", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"]


NOTE_EMAIL = "mei.tan@example.com"
NOTE_PHONE = "+60 12-345 6789"
NOTE = f"customer asked to call {NOTE_PHONE} or write to {NOTE_EMAIL}"


def _assert_note_redacted(out: str) -> None:
    assert NOTE_EMAIL not in out
    assert NOTE_PHONE not in out
    assert "[email]" in out and "[phone]" in out


def test_label_and_event_notes_are_redacted_on_screen(demo, capsys):
    """Staff notes may quote the customer's e-mail or phone: every command that shows them
    redacts them like the item text (the store keeps the original)."""
    _, out, _ = cli(capsys, "--config", str(demo), "items", "list", "--json", "-n", "1")
    item_id = str(json.loads(out)[0]["id"])
    base = ("--config", str(demo))
    code, out, _ = cli(capsys, *base, "triage", "label", item_id, "--urgency", "low",
                       "--note", NOTE, "--as", "mei")  # fmt: skip
    assert code == 0
    _assert_note_redacted(out)
    code, out, _ = cli(capsys, *base, "triage", "label", item_id, "--sentiment", "neutral",
                       "--note", NOTE, "--json")  # fmt: skip
    assert code == 0
    assert json.loads(out)["labels"]["sentiment"]["note"] == redact_note(NOTE)
    _assert_note_redacted(out)
    code, _, _ = cli(capsys, *base, "triage", "ack", item_id, "--note", NOTE)
    assert code == 0

    code, out, _ = cli(capsys, *base, "items", "show", item_id)
    assert code == 0
    assert "corrected: urgency low" in out  # the label line is there, its note redacted
    _assert_note_redacted(out)
    code, out, _ = cli(capsys, *base, "items", "show", item_id, "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["labels"]["urgency"]["note"] == redact_note(NOTE)
    notes = [e["note"] for e in shown["events"] if e["note"] and "customer" in e["note"]]
    assert len(notes) >= 3  # urgency label, sentiment label, ack
    assert set(notes) == {redact_note(NOTE)}
    _assert_note_redacted(out)

    # The store keeps the original; only `export --no-redact` gives it back.
    code, out, _ = cli(capsys, *base, "export", "--format", "jsonl", "--no-redact")
    assert code == 0 and NOTE_EMAIL in out


def _runtime(capsys, tmp_path: Path, classifier: str) -> dict | None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"classifier: {{{classifier}}}\n", encoding="utf-8")
    code, out, _ = cli(capsys, "--config", str(cfg), "config", "check", "--json")
    assert code == 0
    return json.loads(out)["classifier_runtime"]


def test_config_check_shows_the_e5_runtime_this_cpu_runs(tmp_path, capsys):
    from pipeline.nlp.e5torch import bf16_native

    runtime = _runtime(capsys, tmp_path, "kind: model")
    assert runtime is not None
    assert runtime["requested"] == "bf16"
    assert runtime["effective"] == ("bf16" if bf16_native() else "fp32")
    assert (runtime["reason"] is None) == bf16_native()
    assert _runtime(capsys, tmp_path, "kind: model, e5_runtime: int8") == {
        "requested": "int8",
        "effective": "int8",
        "reason": None,
    }
    # nothing routed to e5: the setting has no effect, so no runtime is shown
    assert _runtime(capsys, tmp_path, "kind: model, encoder: minilm") is None


@pytest.mark.parametrize("native", [True, False])
def test_config_check_e5_runtime_on_either_cpu(native, tmp_path, capsys, monkeypatch):
    from pipeline.nlp import e5torch

    monkeypatch.setattr(e5torch, "bf16_native", lambda: native)
    runtime = _runtime(capsys, tmp_path, "kind: model")
    assert runtime is not None
    if native:
        assert runtime == {"requested": "bf16", "effective": "bf16", "reason": None}
    else:
        assert (runtime["requested"], runtime["effective"]) == ("bf16", "fp32")
        assert "no native bfloat16" in runtime["reason"]
    code, out, _ = cli(capsys, "--config", str(tmp_path / "c.yaml"), "config", "check")
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("e5 runtime:"))
    if native:
        assert line == "e5 runtime: bf16"
    else:
        assert line.startswith("e5 runtime: fp32 (requested bf16; this CPU has no native")


def test_config_check_for_the_lexicon_does_not_load_torch(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("classifier: {kind: lexicon}\n", encoding="utf-8")
    script = (
        "import json, sys\n"
        "from pipeline.cli import main\n"
        "try:\n"
        f"    main(['--config', {str(cfg)!r}, 'config', 'check', '--json'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print('torch' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["classifier_runtime"] is None
    assert done.stderr.strip() == "False"
