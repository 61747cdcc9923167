"""Chat intake over a real socket: uvicorn serving the app, httpx posting signed events.

The server runs in a thread (``serve_in_thread``) over a SQLite store, and once as the real
``careradar serve`` command in a subprocess.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from pipeline import registry
from pipeline.config import load_config
from pipeline.items import Status
from pipeline.sinks.store import Store
from pipeline.web.app import create_app, serve_in_thread

DATA = Path(__file__).resolve().parent.parent / "data" / "chat"
SECRET = "integration-secret-5b1d"
ROOT = Path(__file__).resolve().parents[2]


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    t = int(time.time())
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Careradar-Signature": f"t={t},v1={digest}"}


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "careradar.yaml"
    path.write_text(
        "database:\n"
        f"  url: sqlite:///{tmp_path / 'chat.db'}\n"
        "sources:\n"
        "  - name: web-chat\n"
        "    kind: chat\n"
        "    secret: ${CHAT_TEST_SECRET}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Store]]:
    monkeypatch.setenv("CHAT_TEST_SECRET", SECRET)
    cfg = load_config(write_config(tmp_path), registry.source_models())
    store = Store.open(cfg.database.url)
    try:
        with serve_in_thread(create_app(cfg, store=store)) as url:
            yield url, store
    finally:
        store.close()


def test_signed_events_over_http(server: tuple[str, Store]) -> None:
    url, store = server
    with httpx.Client(base_url=url, timeout=10) as http:
        body = (DATA / "generic_customer.json").read_bytes()
        r = http.post("/intake/chat/web-chat", content=body, headers=sign(body))
        assert r.status_code == 202, r.text
        (item_id,) = r.json()["ids"]
        # Stored, classified and on the clock by the time the 202 arrived.
        row = store.get_item(item_id)
        assert row is not None
        assert row.target_seconds == 120 and row.model_version is not None
        assert row.status == Status.NEW and row.first_response_at is None

        reply = (DATA / "generic_agent_reply.json").read_bytes()
        r = http.post("/intake/chat/web-chat", content=reply, headers=sign(reply))
        assert r.status_code == 202 and r.json()["responded"] == 1
        row = store.get_item(item_id)
        assert row is not None and row.status == Status.RESPONDED
        assert row.first_response_at is not None

        before = store.count("items")
        forged = json.dumps(
            {
                "conversation_id": "conv-9",
                "message_id": "x",
                "author_role": "customer",
                "text": "forged",
                "timestamp": "2026-03-02T10:00:00Z",
            }
        ).encode()
        r = http.post("/intake/chat/web-chat", content=forged, headers=sign(forged, "guess"))
        assert r.status_code == 401
        assert store.count("items") == before
        assert store.count("bad_inputs") == 0


def test_a_streamed_body_over_the_cap_is_cut_off_with_413(server: tuple[str, Store]) -> None:
    url, store = server
    sent = 0

    def chunks() -> Iterator[bytes]:
        # No Content-Length: the server must count while reading and stop at the cap.
        nonlocal sent
        for _ in range(64):
            sent += 16_384
            yield b"x" * 16_384

    with httpx.Client(base_url=url, timeout=10) as http:
        try:
            r = http.post("/intake/chat/web-chat", content=chunks(), headers=sign(b"ignored"))
        except httpx.WriteError:
            pytest.fail("the server closed the connection instead of answering 413")
        assert r.status_code == 413
        assert "larger than 262144 bytes" in r.json()["detail"]
    assert store.count("items") == 0


def test_concurrent_messages_are_all_stored(server: tuple[str, Store]) -> None:
    url, store = server
    template = json.loads((DATA / "generic_customer.json").read_bytes())

    def send(n: int) -> int:
        # Distinct words: the same text in two conversations would be a cross-post (one clock).
        text = f"{template['text']} My order number is Z{n:05d}."
        event = dict(template, conversation_id=f"conv-c{n}", message_id="1", text=text)
        body = json.dumps(event).encode()
        with httpx.Client(base_url=url, timeout=30) as http:
            return http.post("/intake/chat/web-chat", content=body, headers=sign(body)).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(send, range(24)))
    assert codes == [202] * 24
    assert store.count("items") == 24
    assert store.count("sla") == 24


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
def test_careradar_serve_command(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    port = _free_port()
    env = dict(os.environ, CHAT_TEST_SECRET=SECRET)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(config), "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        body = (DATA / "generic_customer.json").read_bytes()
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.post(
                    f"http://127.0.0.1:{port}/intake/chat/web-chat",
                    content=body,
                    headers=sign(body),
                    timeout=10,
                )
                break
            except httpx.ConnectError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    _, err = proc.communicate(timeout=10)
                    pytest.fail(f"careradar serve did not come up: {err.decode()[-2000:]}")
                time.sleep(0.2)
        assert r.status_code == 202, r.text
        assert r.json()["stored"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert SECRET.encode() not in err
    with Store.open(f"sqlite:///{tmp_path / 'chat.db'}") as store:
        assert store.count("items") == 1
