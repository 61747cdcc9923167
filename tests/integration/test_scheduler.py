"""``careradar run`` under the scheduler: jobs are configured as promised, and SIGTERM stops the
real process cleanly after the batch in progress, with that batch stored and its cursor saved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from pipeline import registry
from pipeline.config import load_config
from pipeline.runner import Runner, RunResult
from pipeline.scheduler import build_scheduler, hold_off


def test_one_job_per_enabled_source_with_safe_defaults(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(
        "scheduler: {misfire_grace: 45s}\n"
        "sources:\n"
        "  - {name: a, kind: file, channel: social, path: a.jsonl,"
        " schedule: {every: 90s, jitter: 5s}}\n"
        "  - {name: b, kind: file, channel: email, path: b.jsonl,"
        " schedule: {cron: '*/10 * * * *'}}\n"
        "  - {name: c, kind: file, channel: chat, path: c.jsonl, enabled: false}\n",
        encoding="utf-8",
    )
    cfg = load_config(cfg_file, registry.source_models())
    scheduler = build_scheduler(Runner(cfg, None))
    scheduler.start(paused=True)  # job defaults are applied when the scheduler starts
    try:
        jobs = {j.id: j for j in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    assert set(jobs) == {"collect:a", "collect:b"}
    a = jobs["collect:a"]
    assert a.trigger.interval == timedelta(seconds=90)
    assert a.trigger.jitter == 5
    assert (a.coalesce, a.max_instances, a.misfire_grace_time) == (True, 1, 45)
    assert "*/10" in str(jobs["collect:b"].trigger)


def test_retry_after_holds_the_next_run_back(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(
        "sources:\n  - {name: a, kind: file, channel: social, path: a.jsonl,"
        " schedule: {every: 60s}}\n",
        encoding="utf-8",
    )
    scheduler = build_scheduler(Runner(load_config(cfg_file, registry.source_models()), None))
    scheduler.start(paused=True)
    try:
        now = datetime.now(UTC)
        hold_off(scheduler, RunResult(source="a", status="error", retry_after=900), now=now)
        held = scheduler.get_job("collect:a").next_run_time
        hold_off(scheduler, RunResult(source="a", status="error", retry_after=5), now=now)
        unchanged = scheduler.get_job("collect:a").next_run_time
    finally:
        scheduler.shutdown(wait=False)
    assert held == now + timedelta(seconds=900)
    assert unchanged == held  # a shorter wait never pulls a run forward


def test_sigterm_finishes_the_batch_and_exits(tmp_path):
    now = datetime.now(UTC)
    rows = 3_000
    with (tmp_path / "s.jsonl").open("w", encoding="utf-8") as f:
        for i in range(rows):
            row = {
                "id": f"s{i}",
                "text": f"parcel {i} is late again, where is it",
                "created_at": (now - timedelta(minutes=5)).isoformat(),
            }
            f.write(json.dumps(row) + "\n")
    db = tmp_path / "s.db"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"database: {{url: 'sqlite:///{db}'}}\n"
        "sources:\n"
        "  - {name: s, kind: file, channel: social, path: s.jsonl, batch_size: 20,"
        " schedule: {every: 1h}}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(cfg), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    engine = create_engine(f"sqlite:///{db}", poolclass=NullPool)
    try:
        deadline = time.monotonic() + 120
        stored = 0
        while time.monotonic() < deadline and stored == 0:
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            try:
                with engine.connect() as conn:
                    stored = conn.execute(text("SELECT count(*) FROM items")).scalar() or 0
            except Exception:  # the schema may not exist yet
                stored = 0
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()[-2000:]
        with engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM items")).scalar()
            cursor = conn.execute(text("SELECT value FROM cursors WHERE source = 's'")).scalar()
            run = conn.execute(
                text("SELECT status, items_seen FROM collector_runs ORDER BY id DESC LIMIT 1")
            ).one()
        # Stopped early, between batches: whole batches stored, the cursor right after them.
        assert 0 < count < rows
        assert count % 20 == 0
        position = json.loads(cursor)["files"] if isinstance(cursor, str) else cursor["files"]
        assert next(iter(position.values()))["position"] > 0
        assert run.status == "ok" and run.items_seen == count
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        engine.dispose()
