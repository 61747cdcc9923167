"""``kind: chat``: live chat messages, pushed by a chat tool or imported from transcripts.

Chat cannot wait for a polling cycle: the promise is two minutes. So the main way in is the web
app's signed webhook (``POST /intake/chat/{source}``, see ``pipeline/web/intake.py``), which
turns each event into an :class:`Item` with the functions below and stores it at once through
``Runner.ingest``. ``collect()`` serves the other way in, a transcript import (JSONL or CSV of
the same generic events), and reuses the file collector's readers and cursors for it; without
``path`` it yields nothing.

Two payload shapes are understood:

* **generic**: careradar's own event (``conversation_id``, ``message_id``, ``author_role``,
  ``author``, ``text``, ``timestamp``, optional ``brand`` and ``metadata``), documented in the
  README, for any tool that can post JSON;
* **chatwoot**: Chatwoot's ``message_created`` webhook.

Who speaks decides the clock: a customer message starts it, an agent message in the same
conversation stops it (the store's response detection). A bot's auto-reply ("thanks, an agent
will be with you shortly") must do neither, so bot messages are stored as brand posts *outside*
the conversation thread (``thread_id`` empty, the conversation kept in ``raw``): they are on
record, never need a reply, and never count as the response.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from pipeline.collectors.base import CollectContext, parse_timestamp
from pipeline.collectors.file import FileCollector, FileSource
from pipeline.config import AppConfig, Duration, SourceConfig, TimeZoneName
from pipeline.errors import BadInput
from pipeline.items import Batch, Channel, Cursor, Item
from pipeline.registry import register_collector

ROLES = ("customer", "agent", "bot")
EVENT_FIELDS = (
    "conversation_id",
    "message_id",
    "author_role",
    "author",
    "text",
    "timestamp",
    "brand",
    "metadata",
)
REQUIRED_FIELDS = ("conversation_id", "message_id", "author_role", "text", "timestamp")
ID_MAX_CHARS = 200
"""Longest conversation or message id accepted; ids are keys, not content."""

DEFAULT_SIGNATURE_HEADERS = {"generic": "X-Careradar-Signature", "chatwoot": "X-Chatwoot-Signature"}
DEFAULT_TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
DEFAULT_PLATFORMS = {"generic": "chat", "chatwoot": "chatwoot"}

# Chatwoot's message_type, as a name or as the Rails enum number.
_CHATWOOT_TYPES = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}


class ChatSource(SourceConfig):
    kind: Literal["chat"] = "chat"
    channel: Literal["chat"] = "chat"
    secret: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key shared with the chat tool (${ENV}); without it the webhook "
        "answers 503",
    )
    format: Literal["generic", "chatwoot"] = Field(
        default="generic", description="webhook payload shape"
    )
    signature_header: str | None = Field(
        default=None,
        description="header carrying the signature (default X-Careradar-Signature, or "
        "X-Chatwoot-Signature for format chatwoot)",
    )
    timestamp_header: str = Field(
        default=DEFAULT_TIMESTAMP_HEADER,
        description="header carrying the signed timestamp when the signature header has only "
        "'sha256=<hex>' (Chatwoot's style)",
    )
    replay_window: Duration = Field(
        default=300, description="accept a signed timestamp at most this far from the clock"
    )
    path: str | None = Field(
        default=None, description="transcript import: JSONL/CSV file or glob of generic events"
    )
    transcript_format: Literal["auto", "jsonl", "csv", "json"] = "auto"
    columns: dict[str, str] = Field(
        default_factory=dict, description="transcripts: event field -> column name in the file"
    )
    encoding: str = Field(default="utf-8", description="text encoding of transcript files")
    timezone: TimeZoneName = Field(
        default="UTC", description="zone for timestamps without an offset"
    )

    @property
    def polled(self) -> bool:
        return self.path is not None

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(EVENT_FIELDS))
        if unknown:
            valid = ", ".join(EVENT_FIELDS)
            raise ValueError(f"unknown field(s) {', '.join(unknown)}; valid fields are: {valid}")
        return v

    @field_validator("replay_window")
    @classmethod
    def _sane_window(cls, v: float) -> float:
        if not 1 <= v <= 86_400:
            raise ValueError("replay_window must be between 1s and 1d (5m is usual)")
        return v

    @property
    def signature_header_name(self) -> str:
        return self.signature_header or DEFAULT_SIGNATURE_HEADERS[self.format]

    @property
    def platform_name(self) -> str:
        return self.platform or DEFAULT_PLATFORMS[self.format]

    @property
    def has_secret(self) -> bool:
        return self.secret is not None and bool(self.secret.get_secret_value())


def intake_warnings(cfg: AppConfig) -> list[str]:
    """What ``config check`` should say about chat sources that validate but cannot work."""
    out = []
    for s in cfg.sources:
        if isinstance(s, ChatSource) and s.enabled and not s.has_secret:
            out.append(
                f"sources '{s.name}': no 'secret', so POST /intake/chat/{s.name} answers 503 "
                "(set secret: ${SOME_ENV_VAR} to accept signed webhooks)"
            )
    return out


# --- one event -> one item --------------------------------------------------------------------


def show(value: Any, limit: int = 40) -> str:
    """A value quoted for an error message, cut short: errors never echo a whole payload."""
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _identifier(record: Mapping[str, Any], field: str, label: str | None = None) -> str:
    name = label or field
    value = record.get(field)
    if value is None:
        raise BadInput(f"{name}: required field is missing")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadInput(f"{name}: expected a string or an integer, got {_json_type(value)}")
    text = str(value).strip()
    if not text:
        raise BadInput(f"{name}: is empty")
    if len(text) > ID_MAX_CHARS:
        raise BadInput(f"{name}: longer than {ID_MAX_CHARS} characters")
    return text


def external_id(conversation_id: str, message_id: str) -> str:
    """``conversation#message``: unique even where message ids restart in every conversation.

    ``%`` and ``#`` in the conversation id are escaped, so two different pairs never produce
    the same key.
    """
    conv = conversation_id.replace("%", "%25").replace("#", "%23")
    return f"{conv}#{message_id}"


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A chat event after validation, whatever shape it arrived in."""

    conversation_id: str
    message_id: str
    role: str  # customer | agent | bot
    author: str | None
    text: str
    created_at: datetime
    brand: str | None
    raw: Mapping[str, Any]


def to_item(msg: ChatMessage, src: ChatSource, *, now: datetime) -> Item:
    """The item for one message; see the module docstring for why bots sit outside the thread.

    A timestamp ahead of the server clock is taken as the arrival time: a sender whose clock
    runs fast must not push the due time out.
    """
    raw = dict(msg.raw)
    raw["author_role"] = msg.role
    raw["conversation_id"] = msg.conversation_id
    raw["message_id"] = msg.message_id
    try:
        return Item(
            source=src.name,
            channel=Channel.CHAT,
            external_id=external_id(msg.conversation_id, msg.message_id),
            text=msg.text,
            created_at=min(msg.created_at, now),
            platform=src.platform_name,
            brand=msg.brand or src.brand,
            thread_id=None if msg.role == "bot" else msg.conversation_id,
            author=msg.author,
            author_is_brand=msg.role != "customer",
            collected_at=now,
            raw=raw,
        )
    except (TypeError, ValueError) as e:
        raise BadInput(str(e)) from None


def parse_generic(record: Any, src: ChatSource) -> ChatMessage:
    """Validate one generic event; ``BadInput`` names the field that is wrong."""
    if not isinstance(record, Mapping):
        raise BadInput(f"expected a JSON object, got {_json_type(record)}")
    missing = [f for f in REQUIRED_FIELDS if record.get(f) is None]
    if missing:
        raise BadInput(f"{missing[0]}: required field is missing")
    conversation = _identifier(record, "conversation_id")
    message = _identifier(record, "message_id")
    role = record.get("author_role")
    if not isinstance(role, str) or role.strip().lower() not in ROLES:
        raise BadInput(f"author_role: {show(role)} is not one of: {', '.join(ROLES)}")
    text = record.get("text")
    if not isinstance(text, str):
        raise BadInput(f"text: expected a string, got {_json_type(text)}")
    if not text.strip():
        raise BadInput("text: is empty")
    author = record.get("author")
    if author is not None and not isinstance(author, str | int):
        raise BadInput(f"author: expected a string, got {_json_type(author)}")
    brand = record.get("brand")
    if brand is not None and not isinstance(brand, str):
        raise BadInput(f"brand: expected a string, got {_json_type(brand)}")
    metadata = record.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise BadInput(f"metadata: expected an object, got {_json_type(metadata)}")
    created = _timestamp(record.get("timestamp"), src)
    raw: dict[str, Any] = {"format": "generic"}
    if metadata:
        raw["metadata"] = dict(metadata)
    return ChatMessage(
        conversation_id=conversation,
        message_id=message,
        role=role.strip().lower(),
        author=_optional(author),
        text=text,
        created_at=created,
        brand=_optional(brand),
        raw=raw,
    )


def _timestamp(value: Any, src: ChatSource) -> datetime:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadInput(
            f"timestamp: expected ISO-8601 text or epoch seconds, got {_json_type(value)}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise BadInput("timestamp: not a finite number")
    try:
        return parse_timestamp(value, default_tz=src.timezone, what="timestamp")
    except BadInput as e:
        raise BadInput(f"timestamp: {e.reason.removeprefix('timestamp ')}") from None
    except (OverflowError, OSError, ValueError):
        raise BadInput(f"timestamp: {show(value)} is out of range") from None


def _optional(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def parse_chatwoot(payload: Any, src: ChatSource) -> ChatMessage | str:
    """One Chatwoot webhook payload: a message, or the reason it is ignored.

    ``message_created`` with ``message_type`` incoming is the customer, outgoing an agent
    (or a bot, when Chatwoot says the sender is an agent bot). Private notes, activity lines
    ("conversation was resolved"), templates and every other event are acknowledged and
    ignored: they are nobody talking to the customer.
    """
    if not isinstance(payload, Mapping):
        raise BadInput(f"expected a JSON object, got {_json_type(payload)}")
    event = payload.get("event")
    if event != "message_created":
        return f"event {show(event)} is not message_created"
    message_type = payload.get("message_type")
    if isinstance(message_type, int) and not isinstance(message_type, bool):
        message_type = _CHATWOOT_TYPES.get(message_type, str(message_type))
    if message_type not in ("incoming", "outgoing"):
        return f"message_type {show(message_type)} is not a conversation message"
    if payload.get("private") is True:
        return "private note"
    conversation = payload.get("conversation")
    if not isinstance(conversation, Mapping):
        raise BadInput("conversation: required object is missing")
    conv_id = _identifier(conversation, "id", "conversation.id")
    account = payload.get("account")
    if isinstance(account, Mapping) and account.get("id") is not None:
        # conversation.id is Chatwoot's per-account display id: qualify it by the account.
        conv_id = f"{_identifier(account, 'id', 'account.id')}/{conv_id}"
    message_id = _identifier(payload, "id")
    sender = _mapping(payload.get("sender"))
    sender_type = str(sender.get("type") or "").lower()
    if message_type == "incoming":
        role = "customer"
    elif sender_type == "user":
        role = "agent"  # a person on the team answered
    else:
        # An agent bot, an automation rule or a campaign (these come without a sender): an
        # automatic message must not stop the customer's clock.
        role = "bot"
    content = payload.get("content")
    if content is not None and not isinstance(content, str):
        raise BadInput(f"content: expected a string, got {_json_type(content)}")
    text = (content or "").strip()
    attachments = payload.get("attachments")
    kinds = []
    if isinstance(attachments, list):
        kinds = [str(a.get("file_type") or "file") for a in attachments if isinstance(a, Mapping)]
    if not text:
        if not kinds:
            return "message has neither content nor attachments"
        # An image-only message still needs an answer: keep it, saying what was sent.
        text = " ".join(f"[attachment: {k}]" for k in kinds)
    created = _timestamp(payload.get("created_at"), src)
    author = sender.get("name")
    raw: dict[str, Any] = {
        "format": "chatwoot",
        "message_type": message_type,
        "sender_type": sender_type or None,
        "sender_id": sender.get("id"),
        "inbox_id": _mapping(payload.get("inbox")).get("id"),
    }
    if kinds:
        raw["attachments"] = kinds
    return ChatMessage(
        conversation_id=conv_id,
        message_id=message_id,
        role=role,
        author=_optional(author),
        text=text,
        created_at=created,
        brand=None,
        raw=raw,
    )


# --- the collector: transcript import ----------------------------------------------------------


class _TranscriptReader(FileCollector):
    """The file collector's readers and cursors, with chat events as the record shape."""

    def __init__(self, cfg: FileSource, ctx: CollectContext, chat: ChatSource) -> None:
        super().__init__(cfg, ctx)
        self.chat = chat

    def to_item(self, record: Mapping[str, Any]) -> Item:
        if self.chat.columns:
            renamed = {self.chat.columns.get(f, f): f for f in EVENT_FIELDS}
            record = {renamed.get(k, k): v for k, v in record.items()}
        # CSV cells are strings; an empty optional cell means "not given".
        record = {k: (None if v == "" else v) for k, v in record.items()}
        msg = parse_generic(record, self.chat)
        return to_item(msg, self.chat, now=self.ctx.clock())


@register_collector("chat", config=ChatSource, channel="chat")
class ChatCollector:
    """Collects nothing by polling: messages arrive through the webhook. With ``path`` set,
    ``collect`` imports transcripts of generic events incrementally (cursor per file)."""

    def __init__(self, cfg: ChatSource, ctx: CollectContext) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.name = cfg.name
        self.channel = Channel.CHAT
        self._reader: _TranscriptReader | None = None
        if cfg.path is not None:
            file_cfg = FileSource(
                name=cfg.name,
                kind="file",
                channel="chat",
                brand=cfg.brand,
                platform=cfg.platform_name,
                batch_size=cfg.batch_size,
                path=cfg.path,
                format=cfg.transcript_format,
                encoding=cfg.encoding,
                timezone=cfg.timezone,
            )
            self._reader = _TranscriptReader(file_cfg, ctx, cfg)

    def collect(self, cursor: Cursor | None) -> Iterator[Batch]:
        if self._reader is None:
            return
        yield from self._reader.collect(cursor)
