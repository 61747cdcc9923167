"""Chat intake: ``POST /intake/chat/{source}`` (and ``POST /intake/chat`` with one chat source).

A chat tool pushes each message here the moment it is written; the handler stores it
(normalize -> classify -> SLA -> store, one transaction, through ``Runner.ingest``) and answers
``202 {"stored": n, "ids": [...]}`` only once the store has it, so when the sender sees the
answer a customer message already has its two-minute clock.

/intake is authenticated by the request signature alone (no session, no API key), so the order
of checks matters: nothing from the body is parsed, stored or echoed before the HMAC over the
raw bytes has been verified.

1. unknown source -> 404; source disabled or without a secret -> 503 "not configured";
2. body over :data:`MAX_BODY_BYTES` -> 413 (by Content-Length, or while streaming: a body is
   never buffered beyond the cap);
3. signature missing, malformed, wrong, outside the replay window or seen before -> 401;
4. not UTF-8 -> 400; not JSON, or an event missing a field -> 422 naming the field (the whole
   request is refused and recorded in bad_inputs; the sender fixes it and sends it again);
5. store unavailable -> 503 with Retry-After; the replay guard forgets the request, so the
   sender's identical retry is accepted.

The signature is Stripe-style: ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw
body>")>``; Chatwoot's ``sha256=<hex>`` with the timestamp in ``X-Chatwoot-Timestamp`` is the
same HMAC in two headers and is accepted too. Replays inside the window are caught by a bounded
in-memory set of (timestamp, signature) pairs: per process, so a multi-process deployment relies
on the window plus idempotent message ids (a replayed message is stored once, whatever happens).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from pipeline.collectors.chat import (
    ChatMessage,
    ChatSource,
    parse_chatwoot,
    parse_generic,
    show,
    to_item,
)
from pipeline.config import AppConfig, format_duration
from pipeline.errors import BadInput, CareradarError, TransientError
from pipeline.items import BadInputRecord, Item, now_utc
from pipeline.runner import Runner

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
"""Largest request body accepted. A chat message is a few hundred bytes; a batch of a few
hundred events still fits."""

MAX_EVENTS = 500
"""Most events in one request (a list); more is refused with 413."""

REPLAY_MAX_ENTRIES = 100_000
"""Signatures remembered for replay detection; past this the oldest are forgotten first."""

_MAX_SIGNATURES = 5  # v1 values in one header (Stripe sends several while a secret rotates)

router = APIRouter(prefix="/intake", tags=["intake"])


class IntakeError(Exception):
    """An HTTP answer other than 202, with a message safe to show the sender."""

    def __init__(self, status: int, detail: str, *, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = dict(extra or {})

    def response(self) -> JSONResponse:
        headers = {}
        if "retry_after" in self.extra:
            headers["Retry-After"] = str(self.extra.pop("retry_after"))
        return JSONResponse({"detail": self.detail, **self.extra}, self.status, headers=headers)


class ReplayGuard:
    """Remembers accepted (source, timestamp, signature) triples until their window closes.

    Bounded: expired entries are dropped on every call, and past ``max_entries`` the oldest go
    first (an attacker would need that many valid signatures inside one window to push one out,
    and a pushed-out replay is still stored only once thanks to idempotent message ids).
    """

    def __init__(self, max_entries: int = REPLAY_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, int, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, key: tuple[str, int, str], expires_at: float, now: float) -> bool:
        """True when ``key`` was not seen before (and is now remembered)."""
        with self._lock:
            self._prune(now)
            if key in self._seen:
                return False
            self._seen[key] = expires_at
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
            return True

    def release(self, key: tuple[str, int, str]) -> None:
        """Forget ``key``: the request failed on our side and its retry must be accepted."""
        with self._lock:
            self._seen.pop(key, None)

    def _prune(self, now: float) -> None:
        # Entries are added in arrival order; expiry follows the sender's timestamp, so an
        # expired entry can sit behind a live one. Sweep from the front while they are expired.
        while self._seen:
            key, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[key]

    def __len__(self) -> int:
        return len(self._seen)


@dataclass
class IntakeState:
    """What the intake router needs, built once by ``create_app``."""

    cfg: AppConfig
    clock: Callable[[], float] = time.time
    max_body_bytes: int = MAX_BODY_BYTES
    replay: ReplayGuard = field(default_factory=ReplayGuard)

    @property
    def chat_sources(self) -> dict[str, ChatSource]:
        return {s.name: s for s in self.cfg.sources if isinstance(s, ChatSource)}


# --- the checks, in order --------------------------------------------------------------------


def resolve_source(state: IntakeState, name: str | None) -> ChatSource:
    sources = state.chat_sources
    if name is None:
        if len(sources) != 1:
            raise IntakeError(
                404,
                f"{len(sources)} chat sources are configured; post to /intake/chat/<source>",
            )
        src = next(iter(sources.values()))
    else:
        found = sources.get(name)
        if found is None:
            raise IntakeError(
                404,
                f"no chat source named {show(name)}; the URL must end in the name of a "
                "'kind: chat' source from the config",
            )
        src = found
    if not src.enabled:
        raise IntakeError(503, f"chat source '{src.name}' is not configured (enabled: false)")
    if not src.has_secret:
        raise IntakeError(
            503,
            f"chat source '{src.name}' is not configured: it has no 'secret' to check "
            "signatures with",
        )
    return src


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) anything over ``limit`` without buffering past it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise IntakeError(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise IntakeError(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise IntakeError(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _signature_parts(src: ChatSource, headers: Mapping[str, str]) -> tuple[int, list[str]]:
    name = src.signature_header_name
    value = headers.get(name.lower())
    if not value:
        raise IntakeError(401, f"missing {name} header")
    stamp: str | None = None
    sigs: list[str] = []
    value = value.strip()
    if value.lower().startswith("sha256="):
        sigs = [value[7:].strip()]
        stamp = headers.get(src.timestamp_header.lower())
        if stamp is None:
            raise IntakeError(401, f"missing {src.timestamp_header} header")
    else:
        for part in value.split(","):
            key, _, val = part.strip().partition("=")
            if key == "t":
                stamp = val.strip()
            elif key == "v1":
                sigs.append(val.strip())
        if stamp is None or not sigs:
            raise IntakeError(401, f"malformed {name} header; expected t=<unix seconds>,v1=<hex>")
    stamp = stamp.strip()
    if not stamp.isdigit() or len(stamp) > 12:
        raise IntakeError(401, f"malformed signature timestamp {show(stamp, 20)}")
    sigs = [s.lower() for s in sigs[:_MAX_SIGNATURES]]
    if not all(len(s) == 64 and all(c in "0123456789abcdef" for c in s) for s in sigs):
        raise IntakeError(401, "malformed signature; expected 64 hex digits of HMAC-SHA256")
    return int(stamp), sigs


def verify_signature(
    state: IntakeState, src: ChatSource, headers: Mapping[str, str], body: bytes
) -> tuple[str, int, str]:
    """Check the HMAC and the replay window; returns the replay key of an accepted request."""
    stamp, sigs = _signature_parts(src, headers)
    now = state.clock()
    if abs(now - stamp) > src.replay_window:
        raise IntakeError(
            401,
            f"signature timestamp is outside the replay window "
            f"(±{format_duration(src.replay_window)}); sign each request when it is sent, "
            "and check the sender's clock",
        )
    assert src.secret is not None  # resolve_source checked it
    key = src.secret.get_secret_value().encode("utf-8")
    expected = hmac.new(key, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    matched = next((s for s in sigs if hmac.compare_digest(expected, s)), None)
    if matched is None:
        raise IntakeError(401, "signature does not match (check the secret and sign the raw body)")
    replay_key = (src.name, stamp, matched)
    if not state.replay.claim(replay_key, stamp + src.replay_window, now):
        raise IntakeError(401, "this signature was already used (replayed request)")
    return replay_key


def decode(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise IntakeError(400, f"body is not UTF-8 (invalid byte at offset {e.start})") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise IntakeError(422, f"body is not valid JSON: {e}") from None
    except RecursionError:
        raise IntakeError(422, "body is JSON nested too deeply to be a chat event") from None


@dataclass
class Parsed:
    items: list[Item] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _located(prefix: str, reason: str) -> str:
    """``events[2]`` + ``timestamp: ...`` -> ``events[2].timestamp: ...``."""
    if not prefix:
        return reason
    head, sep, _ = reason.partition(": ")
    if sep and head.replace(".", "").replace("_", "").isalnum():
        return f"{prefix}.{reason}"
    return f"{prefix}: {reason}"


def parse_events(src: ChatSource, doc: Any, *, now: datetime) -> Parsed:
    """Every event in the body (one object or a list) as an item, an ignore reason or an
    error naming the event and the field."""
    events = doc if isinstance(doc, list) else [doc]
    if isinstance(doc, list) and not doc:
        raise IntakeError(422, "empty list: send one event or a list of events")
    if len(events) > MAX_EVENTS:
        raise IntakeError(413, f"more than {MAX_EVENTS} events in one request")
    out = Parsed()
    for i, event in enumerate(events):
        prefix = f"events[{i}]" if isinstance(doc, list) else ""
        try:
            got: ChatMessage | str
            if src.format == "chatwoot":
                got = parse_chatwoot(event, src)
            else:
                got = parse_generic(event, src)
            if isinstance(got, str):
                out.ignored.append(_located(prefix, got))
                continue
            out.items.append(to_item(got, src, now=now))
        except BadInput as e:
            out.errors.append(_located(prefix, e.reason))
    return out


# --- the endpoint ----------------------------------------------------------------------------


def _store(runner: Runner, src: ChatSource, items: Sequence[Item]) -> dict[str, Any]:
    result = runner.ingest(src, items)
    keys = [i.key for i in items]
    found = runner.store.existing(keys) if runner.store is not None else {}
    ids = [found[k].id for k in keys if k in found]
    return {
        "stored": len(ids),
        "new": result.new,
        "responded": result.responded,
        "ids": ids,
    }


def _record_bad(runner: Runner, src: ChatSource, errors: Sequence[str], body: bytes) -> None:
    records = [
        BadInputRecord.from_raw(src.name, reason, f"POST /intake/chat/{src.name}", body)
        for reason in errors
    ]
    try:
        runner.ingest(src, [], bad=records)
    except CareradarError as e:
        log.warning("%s: could not record a refused webhook call: %s", src.name, e.message)


async def _health(runner: Runner, src: ChatSource, *, accepted: bool, reason: str = "") -> None:
    if runner.health is not None:
        await run_in_threadpool(runner.health.intake, src, accepted=accepted, reason=reason)


async def _handle(request: Request, name: str | None) -> JSONResponse:
    state: IntakeState = request.app.state.intake
    runner: Runner = request.app.state.runner
    replay_key = None
    src: ChatSource | None = None
    try:
        src = resolve_source(state, name)
        body = await read_body(request, state.max_body_bytes)
        replay_key = verify_signature(state, src, request.headers, body)
        parsed = parse_events(src, decode(body), now=now_utc())
        if parsed.errors:
            await run_in_threadpool(_record_bad, runner, src, parsed.errors, body)
            detail = parsed.errors[0]
            if len(parsed.errors) > 1:
                detail += f" (and {len(parsed.errors) - 1} more)"
            raise IntakeError(422, detail, extra={"errors": parsed.errors[:20]})
        answer: dict[str, Any] = {"stored": 0, "new": 0, "responded": 0, "ids": []}
        if parsed.items:
            answer = await run_in_threadpool(_store, runner, src, parsed.items)
        answer["ignored"] = len(parsed.ignored)
        if parsed.ignored:
            answer["ignored_reasons"] = parsed.ignored[:20]
        log.info(
            "%s: %d chat message(s) stored (%d new, %d ignored)",
            src.name,
            answer["stored"],
            answer["new"],
            len(parsed.ignored),
        )
        await _health(runner, src, accepted=True)
        return JSONResponse(answer, status_code=202)
    except IntakeError as e:
        if e.status >= 500 and replay_key is not None:
            state.replay.release(replay_key)
        if e.status == 401 and src is not None:
            await _health(runner, src, accepted=False, reason=e.detail)
        return e.response()
    except TransientError as e:
        if replay_key is not None:
            state.replay.release(replay_key)
        log.warning("chat intake: store unavailable: %s", e.message)
        retry = round(e.retry_after) if e.retry_after else 5
        return IntakeError(
            503,
            "the store is unavailable; nothing was stored, retry later",
            extra={"retry_after": retry},
        ).response()
    except Exception as e:
        if replay_key is not None:
            state.replay.release(replay_key)
        message = e.message if isinstance(e, CareradarError) else f"{type(e).__name__}: {e}"
        log.error("chat intake failed: %s", message, exc_info=log.isEnabledFor(logging.DEBUG))
        return IntakeError(500, "could not store the message; see the server log").response()


@router.post("/chat", status_code=202, summary="Chat message(s) for the only chat source")
async def chat_default(request: Request) -> JSONResponse:
    return await _handle(request, None)


@router.post("/chat/{source}", status_code=202, summary="Chat message(s) for one chat source")
async def chat_source(source: str, request: Request) -> JSONResponse:
    return await _handle(request, source)
