"""Chat intake at the HTTP level (FastAPI TestClient, real store) and transcript import.

Every request is signed the way a sender would sign it (HMAC over the raw bytes); the failure
cases check the status, the message and that nothing reached the store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipeline import registry
from pipeline.collectors.base import CollectContext
from pipeline.collectors.chat import ChatCollector, ChatSource, external_id, intake_warnings
from pipeline.config import AppConfig, load_config
from pipeline.errors import ConfigError
from pipeline.items import Status
from pipeline.runner import Runner
from pipeline.sinks.store import Store
from pipeline.web.app import create_app
from pipeline.web.intake import ReplayGuard

DATA = Path(__file__).resolve().parent.parent / "data" / "chat"
SECRET = "test-chat-secret-0123456789"
CHATWOOT_SECRET = "chatwoot-webhook-secret-abc"

CONFIG = f"""
sources:
  - name: web-chat
    kind: chat
    secret: {SECRET}
  - name: chatwoot
    kind: chat
    format: chatwoot
    secret: {CHATWOOT_SECRET}
    brand: Brewista
  - name: unsigned
    kind: chat
  - name: retired
    kind: chat
    secret: whatever
    enabled: false
"""


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def sign(body: bytes, secret: str = SECRET, t: int | None = None) -> str:
    stamp = int(time.time()) if t is None else t
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def chatwoot_headers(body: bytes, secret: str = CHATWOOT_SECRET) -> dict[str, str]:
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Chatwoot-Signature": f"sha256={digest}", "X-Chatwoot-Timestamp": str(stamp)}


def make_config(tmp_path: Path, store_url: str, text: str = CONFIG) -> AppConfig:
    path = tmp_path / "careradar.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, registry.source_models(), database_url=store_url)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'chat.db'}")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def client(tmp_path: Path, sqlite_store: Store) -> Iterator[TestClient]:
    cfg = make_config(tmp_path, sqlite_store.url)
    with TestClient(create_app(cfg, store=sqlite_store)) as c:
        yield c


def post(client: TestClient, body: bytes, source: str = "web-chat", **headers: str) -> Any:
    sent = {"Content-Type": "application/json", "X-Careradar-Signature": sign(body)}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return client.post(f"/intake/chat/{source}", content=body, headers=sent)


def nothing_stored(store: Store) -> bool:
    return store.count("items") == 0 and store.count("bad_inputs") == 0


# --- the happy path, on both databases ----------------------------------------------------


def test_customer_message_is_stored_classified_with_a_two_minute_clock(
    tmp_path: Path, store: Store
) -> None:
    cfg = make_config(tmp_path, store.url)
    with TestClient(create_app(cfg, store=store)) as client:
        r = post(client, fixture("generic_customer.json"))
        assert r.status_code == 202, r.text
        answer = r.json()
        assert answer["stored"] == 1 and answer["new"] == 1
        # The answer comes after the store has the item, its classification and its SLA row.
        row = store.get_item(answer["ids"][0])
        assert row is not None
        assert row.external_id == external_id("conv-1001", "m-1") == "conv-1001#m-1"
        assert row.thread_id == "conv-1001"
        assert row.channel == "chat" and row.platform == "chat"
        assert not row.author_is_brand
        assert row.model_version is not None and row.sentiment is not None
        assert row.target_seconds == 120
        assert row.created_at.isoformat() == "2026-03-02T09:15:00+00:00"
        assert row.due_at is not None and (row.due_at - row.created_at).total_seconds() == 120
        assert row.first_response_at is None and row.status == Status.NEW
        assert row.raw["metadata"] == {"page": "/orders/A12345", "widget": "web"}


def test_agent_message_in_the_conversation_is_the_response(tmp_path: Path, store: Store) -> None:
    cfg = make_config(tmp_path, store.url)
    with TestClient(create_app(cfg, store=store)) as client:
        customer_id = post(client, fixture("generic_customer.json")).json()["ids"][0]
        r = post(client, fixture("generic_agent_reply.json"))
        assert r.status_code == 202
        assert r.json()["responded"] == 1
        row = store.get_item(customer_id)
        assert row is not None
        assert row.status == Status.RESPONDED
        assert row.first_response_at is not None
        assert row.first_response_at.isoformat() == "2026-03-02T09:16:10+00:00"
        assert row.breached is False  # 70 s after the customer, inside 2 minutes


def test_a_bot_auto_reply_does_not_stop_the_clock(client: TestClient, sqlite_store: Store) -> None:
    customer_id = post(client, fixture("generic_customer.json")).json()["ids"][0]
    bot = post(client, fixture("generic_bot_reply.json"))
    assert bot.status_code == 202 and bot.json()["responded"] == 0
    bot_row = sqlite_store.get_item(bot.json()["ids"][0])
    assert bot_row is not None
    assert bot_row.author_is_brand and bot_row.thread_id is None and bot_row.due_at is None
    assert bot_row.raw["conversation_id"] == "conv-1001" and bot_row.raw["author_role"] == "bot"
    row = sqlite_store.get_item(customer_id)
    assert row is not None and row.first_response_at is None and row.status == Status.NEW
    # The human agent's reply, which came later, is what stops it.
    assert post(client, fixture("generic_agent_reply.json")).json()["responded"] == 1
    row = sqlite_store.get_item(customer_id)
    assert row is not None and row.status == Status.RESPONDED


def test_a_list_of_events_in_several_languages(client: TestClient, sqlite_store: Store) -> None:
    r = post(client, fixture("generic_batch.json"))
    assert r.status_code == 202, r.text
    ids = r.json()["ids"]
    assert len(ids) == 3
    rows = [row for row in (sqlite_store.get_item(i) for i in ids) if row is not None]
    # Malay and Indonesian are near-identical in a short sentence; either is right.
    assert [row.language for row in rows] in (["ms", "zh", "es"], ["id", "zh", "es"])
    by_text = {row.external_id: row for row in rows if row}
    # epoch seconds, epoch milliseconds, an offset: all the same UTC instant scheme
    assert by_text["conv-2001#1"].created_at.isoformat() == "2026-03-02T09:00:00+00:00"
    assert by_text["conv-2002#1"].created_at.isoformat() == "2026-03-02T09:01:00+00:00"
    assert by_text["conv-2003#1"].created_at.isoformat() == "2026-03-02T09:02:00+00:00"
    assert by_text["conv-2002#1"].brand == "Brewista"


def test_posting_the_same_message_again_stores_it_once(
    client: TestClient, sqlite_store: Store
) -> None:
    body = fixture("generic_customer.json")
    now = int(time.time())
    first = post(client, body, X_Careradar_Signature=sign(body, t=now)).json()
    # Signed again (another timestamp, so another signature): a retry, not a replay.
    again = post(client, body, X_Careradar_Signature=sign(body, t=now - 1))
    assert again.status_code == 202
    assert again.json()["ids"] == first["ids"] and again.json()["new"] == 0
    assert sqlite_store.count("items") == 1


def test_a_timestamp_ahead_of_the_server_is_taken_as_arrival_time(
    client: TestClient, sqlite_store: Store
) -> None:
    event = json.loads(fixture("generic_customer.json"))
    event["timestamp"] = "2099-01-01T00:00:00Z"
    r = post(client, json.dumps(event).encode())
    row = sqlite_store.get_item(r.json()["ids"][0])
    assert row is not None and row.created_at.year < 2099
    assert abs(row.created_at.timestamp() - time.time()) < 60


def test_the_short_path_works_when_there_is_one_chat_source(
    tmp_path: Path, sqlite_store: Store
) -> None:
    one = f"sources:\n  - {{name: only, kind: chat, secret: {SECRET}}}\n"
    cfg = make_config(tmp_path, sqlite_store.url, one)
    body = fixture("generic_customer.json")
    with TestClient(create_app(cfg, store=sqlite_store, preload=False)) as c:
        r = c.post("/intake/chat", content=body, headers={"X-Careradar-Signature": sign(body)})
    assert r.status_code == 202 and r.json()["stored"] == 1


def test_the_short_path_is_refused_with_several_chat_sources(client: TestClient) -> None:
    body = fixture("generic_customer.json")
    r = client.post("/intake/chat", content=body, headers={"X-Careradar-Signature": sign(body)})
    assert r.status_code == 404
    assert "/intake/chat/<source>" in r.json()["detail"]


# --- signatures: 401 and nothing stored -----------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "missing X-Careradar-Signature header"),
        ("v1=" + "0" * 64, "malformed X-Careradar-Signature header"),
        ("t=abc,v1=" + "0" * 64, "malformed signature timestamp"),
        ("t={now},v1=xyz", "malformed signature"),
        ("t={now},v1=" + "0" * 64, "signature does not match"),
        ("wrong-secret", "signature does not match"),
        ("t={old},v1=valid", "outside the replay window"),
        ("t={future},v1=valid", "outside the replay window"),
    ],
)
def test_bad_or_missing_signature_is_401_and_nothing_is_stored(
    client: TestClient, sqlite_store: Store, header: str | None, expected: str
) -> None:
    body = fixture("generic_customer.json")
    now = int(time.time())
    headers = {"Content-Type": "application/json"}
    if header == "wrong-secret":
        headers["X-Careradar-Signature"] = sign(body, secret="not-the-secret")
    elif header is not None and header.endswith("v1=valid"):
        # a minute past the 300 s window: at 1 s past, a slow first request (the app warming
        # up) let the clock catch up and the "future" stamp fell inside the window
        t = now - 360 if "{old}" in header else now + 360
        headers["X-Careradar-Signature"] = sign(body, t=t)
    elif header is not None:
        headers["X-Careradar-Signature"] = header.format(now=now)
    r = client.post("/intake/chat/web-chat", content=body, headers=headers)
    assert r.status_code == 401
    assert expected in r.json()["detail"]
    assert SECRET not in r.text
    assert nothing_stored(sqlite_store)


def test_a_streak_of_refused_signatures_alerts_once_and_clears_when_one_is_accepted(
    client: TestClient, sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A rotated secret on one side refuses every message; that must not stay silent."""
    body = fixture("generic_customer.json")
    forged = {"X-Careradar-Signature": sign(body, secret="the-old-secret")}
    for _ in range(2):
        assert client.post("/intake/chat/web-chat", content=body, headers=forged).status_code == 401
    assert sqlite_store.firing_alerts("web-chat") == []  # two refusals: not yet an incident
    with caplog.at_level(logging.WARNING, logger="pipeline.health"):
        for _ in range(3):
            r = client.post("/intake/chat/web-chat", content=body, headers=forged)
            assert r.status_code == 401
    (alert,) = sqlite_store.firing_alerts("web-chat")
    assert alert["kind"] == "source_refusing"
    assert "5 webhook requests in a row were refused" in alert["reason"]  # kept up to date
    assert "signature does not match" in alert["reason"]
    assert SECRET not in alert["reason"] and "the-old-secret" not in alert["reason"]
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1  # once
    assert post(client, body).status_code == 202
    assert sqlite_store.firing_alerts("web-chat") == []


def test_a_signature_over_a_different_body_is_refused(
    client: TestClient, sqlite_store: Store
) -> None:
    signed = fixture("generic_customer.json")
    tampered = signed.replace(b"still hasn't arrived", b"arrived, thanks")
    r = client.post(
        "/intake/chat/web-chat", content=tampered, headers={"X-Careradar-Signature": sign(signed)}
    )
    assert r.status_code == 401
    assert nothing_stored(sqlite_store)


def test_a_replayed_request_is_refused(client: TestClient, sqlite_store: Store) -> None:
    body = fixture("generic_customer.json")
    headers = {"X-Careradar-Signature": sign(body)}
    assert client.post("/intake/chat/web-chat", content=body, headers=headers).status_code == 202
    again = client.post("/intake/chat/web-chat", content=body, headers=headers)
    assert again.status_code == 401
    assert "already used" in again.json()["detail"]
    assert sqlite_store.count("items") == 1


def test_rotating_secrets_any_matching_v1_is_accepted(client: TestClient) -> None:
    body = fixture("generic_customer.json")
    t = int(time.time())
    old = sign(body, secret="the-old-secret", t=t).split("v1=")[1]
    header = f"t={t},v1={old},{sign(body, t=t).split(',')[1]}"
    r = client.post(
        "/intake/chat/web-chat", content=body, headers={"X-Careradar-Signature": header}
    )
    assert r.status_code == 202


def test_replay_guard_forgets_expired_and_bounds_its_memory() -> None:
    guard = ReplayGuard(max_entries=3)
    assert guard.claim(("s", 1, "a"), expires_at=100, now=0)
    assert not guard.claim(("s", 1, "a"), expires_at=100, now=50)
    assert guard.claim(("s", 1, "a"), expires_at=300, now=101)  # expired: a new claim
    for n in range(5):
        guard.claim(("s", 2, str(n)), expires_at=1_000, now=102)
    assert len(guard) == 3
    guard.release(("s", 2, "4"))
    assert guard.claim(("s", 2, "4"), expires_at=1_000, now=103)


# --- sources that cannot take requests ----------------------------------------------------


@pytest.mark.parametrize(
    ("source", "status", "expected"),
    [
        ("no-such-source", 404, "no chat source named 'no-such-source'"),
        ("unsigned", 503, "not configured: it has no 'secret'"),
        ("retired", 503, "not configured (enabled: false)"),
    ],
)
def test_unknown_or_unconfigured_sources(
    client: TestClient, sqlite_store: Store, source: str, status: int, expected: str
) -> None:
    r = post(client, fixture("generic_customer.json"), source=source)
    assert r.status_code == status
    assert expected in r.json()["detail"]
    assert nothing_stored(sqlite_store)


def test_config_check_warns_about_a_chat_source_without_a_secret(
    tmp_path: Path, sqlite_store: Store
) -> None:
    cfg = make_config(tmp_path, sqlite_store.url)
    warnings = intake_warnings(cfg)
    assert len(warnings) == 1
    assert "'unsigned'" in warnings[0] and "503" in warnings[0]


def test_the_secret_is_never_shown(tmp_path: Path, sqlite_store: Store) -> None:
    cfg = make_config(tmp_path, sqlite_store.url)
    src = cfg.source("web-chat")
    assert SECRET not in repr(src) and SECRET not in str(src.model_dump())


# --- bodies: 400, 413, 422 ----------------------------------------------------------------


def test_missing_field_is_422_naming_the_field_and_recorded_as_bad_input(
    client: TestClient, sqlite_store: Store
) -> None:
    r = post(client, fixture("generic_missing_timestamp.json"))
    assert r.status_code == 422
    assert r.json()["detail"] == "timestamp: required field is missing"
    assert sqlite_store.count("items") == 0
    bad = sqlite_store.bad_inputs(source="web-chat")
    assert [b["reason"] for b in bad] == ["timestamp: required field is missing"]


def test_one_bad_event_in_a_list_refuses_the_request(
    client: TestClient, sqlite_store: Store
) -> None:
    r = post(client, fixture("generic_batch_one_bad.json"))
    assert r.status_code == 422
    assert r.json()["detail"].startswith("events[1].author_role: 'admin' is not one of")
    assert sqlite_store.count("items") == 0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"conversation_id": None}, "conversation_id: required field is missing"),
        ({"message_id": ["a"]}, "message_id: expected a string or an integer, got a list"),
        ({"message_id": "   "}, "message_id: is empty"),
        ({"text": 42}, "text: expected a string, got a number"),
        ({"text": "  "}, "text: is empty"),
        ({"timestamp": "yesterday-ish"}, "timestamp: 'yesterday-ish' is not a date and time"),
        ({"timestamp": True}, "timestamp: expected ISO-8601 text or epoch seconds"),
        ({"metadata": "x"}, "metadata: expected an object, got a string"),
        ({"conversation_id": "c" * 300}, "conversation_id: longer than 200 characters"),
    ],
)
def test_malformed_fields_are_named(
    client: TestClient, sqlite_store: Store, change: dict[str, Any], expected: str
) -> None:
    event = json.loads(fixture("generic_customer.json"))
    event.update(change)
    r = post(client, json.dumps(event).encode())
    assert r.status_code == 422
    assert r.json()["detail"].startswith(expected), r.json()["detail"]
    assert sqlite_store.count("items") == 0


def test_user_text_in_errors_is_truncated(client: TestClient) -> None:
    event = json.loads(fixture("generic_customer.json"))
    event["author_role"] = "<script>" + "x" * 5_000
    r = post(client, json.dumps(event).encode())
    assert r.status_code == 422
    assert len(r.json()["detail"]) < 150 and "x" * 100 not in r.text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"conversation_id": "c", ', "body is not valid JSON"),
        (b"", "body is not valid JSON"),
        (b"[]", "empty list"),
        (b'"just a string"', "expected a JSON object, got a string"),
        (b"[1]", "events[0]: expected a JSON object, got a number"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_not_json_or_not_an_event_is_422(
    client: TestClient, sqlite_store: Store, body: bytes, expected: str
) -> None:
    r = post(client, body)
    assert r.status_code == 422
    assert expected in r.json()["detail"]
    assert sqlite_store.count("items") == 0


def test_invalid_utf8_is_400(client: TestClient, sqlite_store: Store) -> None:
    body = fixture("generic_customer.json").replace(b"Hi,", b"Hi \xff\xfe,")
    r = post(client, body)
    assert r.status_code == 400
    assert "not UTF-8" in r.json()["detail"]
    assert nothing_stored(sqlite_store)


def test_a_body_over_the_cap_is_413_before_the_signature_is_checked(
    client: TestClient, sqlite_store: Store
) -> None:
    event = json.loads(fixture("generic_customer.json"))
    event["text"] = "a" * (300 * 1024)
    body = json.dumps(event).encode()
    r = post(client, body)
    assert r.status_code == 413
    assert "larger than 262144 bytes" in r.json()["detail"]
    unsigned = client.post(
        "/intake/chat/web-chat", content=body, headers={"X-Careradar-Signature": "junk"}
    )
    assert unsigned.status_code == 413
    assert nothing_stored(sqlite_store)


def test_too_many_events_is_413(client: TestClient, sqlite_store: Store) -> None:
    event = json.loads(fixture("generic_customer.json"))
    events = [dict(event, message_id=f"m-{n}") for n in range(501)]
    r = post(client, json.dumps(events, separators=(",", ":")).encode())
    assert r.status_code == 413 and "500 events" in r.json()["detail"]
    assert sqlite_store.count("items") == 0


# --- Chatwoot ---------------------------------------------------------------------------------


def post_chatwoot(client: TestClient, name: str) -> Any:
    body = fixture(name)
    return client.post("/intake/chat/chatwoot", content=body, headers=chatwoot_headers(body))


def test_chatwoot_incoming_outgoing_and_bot(client: TestClient, sqlite_store: Store) -> None:
    incoming = post_chatwoot(client, "chatwoot_incoming.json")
    assert incoming.status_code == 202, incoming.text
    customer = sqlite_store.get_item(incoming.json()["ids"][0])
    assert customer is not None
    assert customer.external_id == "5/77#58213" and customer.thread_id == "5/77"
    assert customer.platform == "chatwoot" and customer.brand == "Brewista"
    assert customer.author == "Jordan Lee" and not customer.author_is_brand
    assert customer.created_at.isoformat() == "2026-03-02T12:00:05+00:00"
    assert customer.target_seconds == 120
    assert "jordan.lee@example.org" not in json.dumps(customer.raw)

    bot = post_chatwoot(client, "chatwoot_bot.json")
    assert bot.json()["responded"] == 0
    automation = post_chatwoot(client, "chatwoot_automation.json")
    assert automation.status_code == 202, automation.text
    assert automation.json()["responded"] == 0
    customer = sqlite_store.get_item(customer.id)
    assert customer is not None and customer.status == Status.NEW

    outgoing = post_chatwoot(client, "chatwoot_outgoing.json")
    assert outgoing.json()["responded"] == 1
    customer = sqlite_store.get_item(customer.id)
    assert customer is not None and customer.status == Status.RESPONDED
    assert customer.first_response_at is not None
    assert customer.first_response_at.isoformat() == "2026-03-02T12:01:30+00:00"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("chatwoot_private_note.json", "private note"),
        ("chatwoot_activity.json", "message_type 'activity'"),
        ("chatwoot_conversation_created.json", "event 'conversation_created'"),
    ],
)
def test_chatwoot_notes_activity_and_other_events_are_acknowledged_and_ignored(
    client: TestClient, sqlite_store: Store, name: str, reason: str
) -> None:
    r = post_chatwoot(client, name)
    assert r.status_code == 202
    assert r.json()["stored"] == 0 and r.json()["ignored"] == 1
    assert reason in r.json()["ignored_reasons"][0]
    assert nothing_stored(sqlite_store)


def test_chatwoot_attachment_only_message_still_gets_a_clock(
    client: TestClient, sqlite_store: Store
) -> None:
    r = post_chatwoot(client, "chatwoot_attachment_only.json")
    row = sqlite_store.get_item(r.json()["ids"][0])
    assert row is not None
    assert row.text == "[attachment: image]" and row.due_at is not None
    assert row.created_at.isoformat() == "2026-03-02T12:40:00+00:00"


def test_chatwoot_signature_needs_its_timestamp_header(
    client: TestClient, sqlite_store: Store
) -> None:
    body = fixture("chatwoot_incoming.json")
    headers = chatwoot_headers(body)
    del headers["X-Chatwoot-Timestamp"]
    r = client.post("/intake/chat/chatwoot", content=body, headers=headers)
    assert r.status_code == 401 and "missing X-Chatwoot-Timestamp" in r.json()["detail"]
    wrong = chatwoot_headers(body, secret=SECRET)
    r = client.post("/intake/chat/chatwoot", content=body, headers=wrong)
    assert r.status_code == 401 and "does not match" in r.json()["detail"]
    assert nothing_stored(sqlite_store)


def test_chatwoot_payload_missing_the_conversation_is_422(client: TestClient) -> None:
    payload = json.loads(fixture("chatwoot_incoming.json"))
    del payload["conversation"]["id"]
    body = json.dumps(payload).encode()
    r = client.post("/intake/chat/chatwoot", content=body, headers=chatwoot_headers(body))
    assert r.status_code == 422
    assert r.json()["detail"] == "conversation.id: required field is missing"


# --- transcript import via collect() ----------------------------------------------------


def transcript_config(tmp_path: Path, store_url: str) -> AppConfig:
    for name in ("transcript.jsonl", "transcript.csv"):
        (tmp_path / name).write_bytes(fixture(name))
    text = """
sources:
  - name: chat-jsonl
    kind: chat
    path: transcript.jsonl
    first_run_max_age: null   # the fixtures are from March; keep their clocks
  - name: chat-csv
    kind: chat
    path: transcript.csv
    first_run_max_age: null
    timezone: Europe/Berlin
    columns: {conversation_id: Chat, message_id: Msg, author_role: Who, author: Name,
              text: Body, timestamp: Sent At, brand: Brand}
  - name: live-only
    kind: chat
    secret: x
"""
    return make_config(tmp_path, store_url, text)


def test_transcript_import_from_jsonl(tmp_path: Path, sqlite_store: Store) -> None:
    cfg = transcript_config(tmp_path, sqlite_store.url)
    runner = Runner(cfg, sqlite_store)
    result = runner.run_once("chat-jsonl")
    assert result.status == "partial", result.error
    assert (result.new, result.bad, result.responded) == (4, 2, 1)
    reasons = sorted(b["reason"] for b in sqlite_store.bad_inputs(source="chat-jsonl"))
    assert reasons[0].startswith("not valid JSON")
    assert reasons[1] == "text: required field is missing"
    mia = sqlite_store.find_item("chat-jsonl", "t-1#1")
    assert mia is not None and mia.status == Status.RESPONDED
    assert mia.first_response_at is not None
    assert (
        mia.first_response_at.isoformat() == "2026-02-10T08:01:30+00:00"
    )  # the agent, not the bot
    ola = sqlite_store.find_item("chat-jsonl", "t-4#1")
    assert ola is not None and ola.target_seconds == 120 and ola.status == Status.NEW
    # The cursor remembers the file: a second run stores nothing new.
    again = runner.run_once("chat-jsonl")
    assert again.new == 0 and sqlite_store.count("items") == 4


def test_transcript_import_from_csv_with_a_column_mapping(
    tmp_path: Path, sqlite_store: Store
) -> None:
    cfg = transcript_config(tmp_path, sqlite_store.url)
    result = Runner(cfg, sqlite_store).run_once("chat-csv")
    assert result.status == "ok", result.error
    assert (result.new, result.responded) == (3, 1)
    lena = sqlite_store.find_item("chat-csv", "c-9#1")
    assert lena is not None and lena.status == Status.RESPONDED
    # "2026-02-11 14:00:00" has no offset: read in Europe/Berlin (UTC+1 in February).
    assert lena.created_at.isoformat() == "2026-02-11T13:00:00+00:00"
    anon = sqlite_store.find_item("chat-csv", "c-10#1")
    assert anon is not None and anon.author is None and anon.brand == "Brewista"


def test_without_a_path_collect_yields_nothing(tmp_path: Path, sqlite_store: Store) -> None:
    cfg = transcript_config(tmp_path, sqlite_store.url)
    src = cfg.source("live-only")
    assert isinstance(src, ChatSource)
    assert list(ChatCollector(src, CollectContext(app=cfg)).collect(None)) == []


def test_unknown_transcript_column_field_is_a_config_error(
    tmp_path: Path, sqlite_store: Store
) -> None:
    text = "sources:\n  - {name: c, kind: chat, path: x.jsonl, columns: {body: Text}}\n"
    with pytest.raises(ConfigError, match=r"sources\[0\]\.columns: unknown field\(s\) body"):
        make_config(tmp_path, sqlite_store.url, text)
