"""A real ``careradar run --once`` process is killed with SIGKILL in the middle of a run, then run
again: every item is stored exactly once, with one classification and one SLA row each.

This is the at-least-once-in, idempotent-upsert guarantee tested against the real thing: a
separate process, a real signal, and the real SQLite file or PostgreSQL database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.helpers import fresh_postgres_url, require_postgres

ROWS = 6_000
BATCH = 25


def _write_source(tmp_path: Path, db_url: str) -> Path:
    now = datetime.now(UTC)
    with (tmp_path / "big.jsonl").open("w", encoding="utf-8") as f:
        for i in range(ROWS):
            words = ["refund", "late", "broken", "thanks", "love", "login", "charged twice"]
            row = {
                "id": f"k{i}",
                "text": f"message {i}: my {words[i % len(words)]} problem number {i * 7919 % 1000}",
                "created_at": (now - timedelta(seconds=ROWS - i)).isoformat(),
                "thread_id": f"t{i // 3}",
            }
            f.write(json.dumps(row) + "\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"database: {{url: '{db_url}'}}\n"
        "sources:\n"
        f"  - {{name: big, kind: file, channel: social, path: big.jsonl, batch_size: {BATCH}}}\n",
        encoding="utf-8",
    )
    return cfg


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)


def _run(cfg: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(cfg), "run", "--once"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _kill_mid_run(cfg: Path, engine) -> int:
    proc = _run(cfg)
    deadline = time.monotonic() + 120
    stored = 0
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"run ended before it could be killed: {err.decode()[-2000:]}")
            try:
                stored = _count(engine, "items")
            except Exception:  # the schema may not exist yet
                stored = 0
            if stored >= BATCH * 4:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    return stored


def _check_resume(cfg: Path, url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        stored = _kill_mid_run(cfg, engine)
        at_kill = _count(engine, "items")
        assert 0 < stored <= at_kill < ROWS, "the kill must land in the middle of the run"
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "--config", str(cfg), "run", "--once", "--json"],
            capture_output=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        result = json.loads(done.stdout)[0]
        assert result["status"] == "ok"
        assert _count(engine, "items") == ROWS
        assert _count(engine, "classifications") == ROWS
        assert _count(engine, "sla") <= ROWS
        with engine.connect() as conn:
            dupes = conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT source, external_id FROM items "
                    "GROUP BY source, external_id HAVING count(*) > 1) d"
                )
            ).scalar()
            assert dupes == 0
            cursor = conn.execute(text("SELECT value FROM cursors WHERE source = 'big'")).scalar()
        assert cursor is not None
        # The second run picked up where the first stopped: it did not re-read everything.
        assert result["seen"] <= ROWS - at_kill + BATCH
    finally:
        engine.dispose()


@pytest.mark.slow
def test_kill9_mid_run_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    _check_resume(_write_source(tmp_path, url), url)


@pytest.mark.slow
@pytest.mark.postgres
def test_kill9_mid_run_postgres(tmp_path):
    require_postgres()
    with fresh_postgres_url() as url:
        cfg = _write_source(tmp_path, url)
        subprocess.run(
            [sys.executable, "-m", "pipeline", "--config", str(cfg), "db", "upgrade"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        _check_resume(cfg, url)
