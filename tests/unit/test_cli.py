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
