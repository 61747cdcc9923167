"""``kind: file``: items from JSONL, CSV or JSON dumps (exports, transcripts, replays).

The cursor remembers, per file, how far it was read (a byte offset for JSONL, a record index for
CSV and JSON) plus a hash of the file's first bytes, so an appended file is read on from where it
stopped and a replaced or truncated file is read again from the start (idempotent upserts make
re-reading safe). A record that cannot be used becomes a bad-input record naming file and line.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from pipeline.collectors.base import CollectContext, parse_bool, parse_timestamp
from pipeline.config import SourceConfig, TimeZoneName
from pipeline.errors import BadInput, ConfigError, NotConfigured
from pipeline.items import BadInputRecord, Batch, Channel, Cursor, Item
from pipeline.registry import register_collector

CANONICAL = (
    "external_id",
    "text",
    "created_at",
    "channel",
    "platform",
    "brand",
    "thread_id",
    "parent_id",
    "author",
    "author_is_brand",
    "url",
    "title",
    "language",
)
# Column names understood without a mapping.
_ALIASES = {"id": "external_id"}
_HEAD_BYTES = 4_096
_MAX_LINE_BYTES = 1_048_576


def _aware_anchor(v: datetime | None) -> datetime | None:
    if v is not None and v.tzinfo is None:
        raise ValueError("replay_anchor needs a zone, e.g. 2026-01-15T12:00:00Z")
    return v


ReplayAnchor = Annotated[datetime | None, AfterValidator(_aware_anchor)]
"""An instant with a zone that becomes "now" at collection (replay of a saved export)."""


class FileSource(SourceConfig):
    kind: Literal["file"] = "file"
    path: str = Field(description="file or glob (e.g. exports/*.jsonl), relative to the config")
    format: Literal["auto", "jsonl", "csv", "json"] = "auto"
    mapping: dict[str, str] = Field(
        default_factory=dict, description="careradar field -> column name in the file"
    )
    encoding: str = Field(default="utf-8", description="text encoding of the file")
    timezone: TimeZoneName = Field(
        default="UTC", description="zone for timestamps without an offset"
    )
    replay_anchor: ReplayAnchor = Field(
        default=None,
        description="replay mode: shift timestamps so this instant becomes 'now' at collection",
    )

    @field_validator("mapping")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(CANONICAL))
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)}; valid fields are: {', '.join(CANONICAL)}"
            )
        return v


def _format_of(path: Path, configured: str) -> str:
    if configured != "auto":
        return configured
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".json":
        return "json"
    raise BadInput(f"cannot tell the format of {path.name}; set format: jsonl, csv or json")


def _head_hash(path: Path, length: int = _HEAD_BYTES) -> tuple[str, int]:
    """Hash of the file's first ``length`` bytes (fewer if it is shorter), and how many.

    Comparing the same prefix the cursor saw tells "appended to" from "replaced".
    """
    with path.open("rb") as f:
        head = f.read(length)
    return hashlib.sha256(head).hexdigest()[:16], len(head)


@register_collector("file", config=FileSource)
class FileCollector:
    def __init__(self, cfg: FileSource, ctx: CollectContext) -> None:
        if cfg.channel is None:
            raise ConfigError(
                f"source '{cfg.name}': a file source needs 'channel' "
                "(chat, social, email, review or forum)"
            )
        self.cfg = cfg
        self.ctx = ctx
        self.name = cfg.name
        self.channel = Channel(cfg.channel)
        self._columns = {field: cfg.mapping.get(field, field) for field in CANONICAL}
        self._shift = None
        if cfg.replay_anchor is not None:
            self._shift = ctx.clock() - cfg.replay_anchor

    # -- discovery ------------------------------------------------------------------------------

    def files(self) -> list[Path]:
        pattern = str(self.ctx.app.resolve_path(self.cfg.path))
        found = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
        if not found:
            raise NotConfigured(
                f"source '{self.name}': no file matches {pattern}",
                hint="check 'path' (relative paths are relative to the config file)",
            )
        return found

    def collect(self, cursor: Cursor | None) -> Iterator[Batch]:
        state: dict[str, Any] = {
            k: dict(v) for k, v in dict((cursor or {}).get("files", {})).items()
        }
        for path in self.files():
            key = str(path.resolve())
            prev = state.get(key)
            size = path.stat().st_size
            position = 0
            same_file = False
            if prev:
                seen_head, _ = _head_hash(path, int(prev.get("head_len", _HEAD_BYTES)))
                same_file = seen_head == prev.get("head") and int(prev.get("size", 0)) <= size
            head, head_len = _head_hash(path)
            if prev and same_file:
                position = int(prev.get("position", 0))
                if prev.get("complete") and int(prev.get("size", 0)) == size:
                    continue  # read to its end before, and unchanged since
            try:
                fmt = _format_of(path, self.cfg.format)
            except BadInput as e:
                yield Batch(bad=[BadInputRecord.from_raw(self.name, e.reason, str(path), head)])
                continue
            reader = {"jsonl": self._read_jsonl, "csv": self._read_csv, "json": self._read_json}[
                fmt
            ]
            for items, bad, new_position, complete in reader(path, position):
                state[key] = {
                    "head": head,
                    "head_len": head_len,
                    "size": size,
                    "position": new_position,
                    "complete": complete,
                }
                yield Batch(
                    items=items, bad=bad, cursor={"files": {k: dict(v) for k, v in state.items()}}
                )

    # -- readers: each yields (items, bad, position after them, reached the end) ------------

    def _read_jsonl(
        self, path: Path, offset: int
    ) -> Iterator[tuple[list[Item], list[BadInputRecord], int, bool]]:
        items: list[Item] = []
        bad: list[BadInputRecord] = []
        with path.open("rb") as f:
            f.seek(offset)
            line_no = self._line_number(path, offset)
            pos = offset
            while True:
                line = f.readline(_MAX_LINE_BYTES + 1)
                if not line:
                    break
                line_no += 1
                where = f"{path.name} line {line_no}"
                if len(line) > _MAX_LINE_BYTES and not line.endswith(b"\n"):
                    # An enormous line: record it and skip to its end without holding it.
                    digest = hashlib.sha256(line)
                    while chunk := f.readline(_MAX_LINE_BYTES):
                        digest.update(chunk)
                        if chunk.endswith(b"\n"):
                            break
                    bad.append(
                        BadInputRecord(
                            self.name,
                            f"line longer than {_MAX_LINE_BYTES} bytes",
                            where,
                            digest.hexdigest(),
                            line[:200].decode("utf-8", "replace"),
                        )
                    )
                    pos = f.tell()
                    continue
                if not line.endswith(b"\n"):
                    # The last line may still be being written; take it only if it is complete.
                    try:
                        json.loads(line)
                    except ValueError:
                        break
                pos = f.tell()
                if not line.strip():
                    continue
                self._parse_line(line, where, items, bad)
                if len(items) + len(bad) >= self.cfg.batch_size:
                    yield items, bad, pos, False
                    items, bad = [], []
        yield items, bad, pos, True

    def _line_number(self, path: Path, offset: int) -> int:
        if offset == 0:
            return 0
        with path.open("rb") as f:
            return f.read(offset).count(b"\n")

    def _decode(self, data: bytes, where: str, bad: list[BadInputRecord]) -> str:
        try:
            return data.decode(self.cfg.encoding)
        except UnicodeDecodeError as e:
            # Keep the record with replacement characters, and say where the bytes were wrong.
            bad.append(
                BadInputRecord.from_raw(
                    self.name,
                    f"invalid {self.cfg.encoding} at byte {e.start}; kept with replacement "
                    "characters",
                    where,
                    data,
                )
            )
            return data.decode(self.cfg.encoding, errors="replace")
        except LookupError:
            raise ConfigError(
                f"source '{self.name}': unknown encoding '{self.cfg.encoding}'"
            ) from None

    def _parse_line(
        self, line: bytes, where: str, items: list[Item], bad: list[BadInputRecord]
    ) -> None:
        text = self._decode(line, where, bad)
        try:
            record = json.loads(text)
        except ValueError as e:
            bad.append(BadInputRecord.from_raw(self.name, f"not valid JSON: {e}", where, line))
            return
        self._add(record, where, line, items, bad)

    def _add(
        self,
        record: Any,
        where: str,
        raw: bytes,
        items: list[Item],
        bad: list[BadInputRecord],
    ) -> None:
        try:
            if not isinstance(record, Mapping):
                raise BadInput(f"expected an object, got {type(record).__name__}")
            items.append(self.to_item(record))
        except BadInput as e:
            bad.append(BadInputRecord.from_raw(self.name, e.reason, where, raw))

    def _read_csv(
        self, path: Path, index: int
    ) -> Iterator[tuple[list[Item], list[BadInputRecord], int, bool]]:
        bad: list[BadInputRecord] = []
        text = self._decode(path.read_bytes(), path.name, bad if index == 0 else [])
        dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
        reader = csv.DictReader(
            io.StringIO(text.removeprefix("\ufeff"), newline=""), dialect=dialect
        )
        items: list[Item] = []
        position = index
        try:
            for n, row in enumerate(reader):
                if n < index:
                    continue
                position = n + 1
                where = f"{path.name} row {n + 2}"  # + header, 1-based like a spreadsheet
                if None in row:
                    extra = row.pop(None)
                    bad.append(
                        BadInputRecord.from_raw(
                            self.name,
                            f"{len(extra)} more fields than the header",
                            where,
                            json.dumps(row, default=str),
                        )
                    )
                    continue
                raw = json.dumps(row, ensure_ascii=False).encode("utf-8")
                self._add(row, where, raw, items, bad)
                if len(items) + len(bad) >= self.cfg.batch_size:
                    yield items, bad, position, False
                    items, bad = [], []
        except csv.Error as e:
            bad.append(
                BadInputRecord.from_raw(
                    self.name,
                    f"CSV stops parsing: {e}",
                    f"{path.name} line {reader.line_num}",
                    text[-500:],
                )
            )
        yield items, bad, position, True

    def _read_json(
        self, path: Path, index: int
    ) -> Iterator[tuple[list[Item], list[BadInputRecord], int, bool]]:
        bad: list[BadInputRecord] = []
        data = path.read_bytes()
        try:
            doc = json.loads(self._decode(data, path.name, bad))
        except ValueError as e:
            bad.append(BadInputRecord.from_raw(self.name, f"not valid JSON: {e}", path.name, data))
            yield [], bad, 0, True
            return
        records = doc.get("items") if isinstance(doc, dict) else doc
        if not isinstance(records, list):
            reason = 'expected a list of objects (or {"items": [...]})'
            bad.append(BadInputRecord.from_raw(self.name, reason, path.name, data))
            yield [], bad, 0, True
            return
        items: list[Item] = []
        for n, record in enumerate(records[index:], start=index):
            raw = json.dumps(record, ensure_ascii=False, default=str).encode("utf-8")
            self._add(record, f"{path.name} item {n}", raw, items, bad)
            if len(items) + len(bad) >= self.cfg.batch_size:
                yield items, bad, n + 1, False
                items, bad = [], []
        yield items, bad, len(records), True

    # -- one record -> one item -----------------------------------------------------------------

    def _get(self, record: Mapping[str, Any], field: str) -> Any:
        column = self._columns[field]
        if column in record:
            value = record[column]
        else:
            value = next(
                (record[a] for a, f in _ALIASES.items() if f == field and a in record), None
            )
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    def to_item(self, record: Mapping[str, Any]) -> Item:
        text = self._get(record, "text")
        title = self._get(record, "title")
        if text is not None and not isinstance(text, str):
            text = str(text)
        if not text and not title:
            raise BadInput(f"no text (looked in column '{self._columns['text']}')")
        created = parse_timestamp(
            self._get(record, "created_at"),
            default_tz=self.cfg.timezone,
            what=f"created_at (column '{self._columns['created_at']}')",
        )
        if self._shift is not None:
            created = created + self._shift
        external_id = self._get(record, "external_id")
        if external_id is None:
            # No id column: a stable id from what identifies the post, so re-reads dedupe.
            basis = json.dumps([text, title, self._get(record, "author"), created.isoformat()])
            external_id = "h-" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:24]
        channel = self._get(record, "channel") or self.channel.value
        try:
            channel = Channel(str(channel).lower())
        except ValueError:
            raise BadInput(
                f"channel '{channel}' is not one of: {', '.join(c.value for c in Channel)}"
            ) from None
        mapped = {self._columns[f] for f in CANONICAL} | set(_ALIASES)
        extra = {k: v for k, v in record.items() if k not in mapped}
        thread = self._get(record, "thread_id")
        parent = self._get(record, "parent_id")
        try:
            return Item(
                source=self.name,
                channel=channel,
                external_id=str(external_id),
                text=text or "",
                title=title,
                created_at=created,
                platform=str(self._get(record, "platform") or self.cfg.platform or "file"),
                brand=self._get(record, "brand") or self.cfg.brand,
                thread_id=str(thread) if thread is not None else None,
                parent_id=str(parent) if parent is not None else None,
                author=self._str(self._get(record, "author")),
                author_is_brand=parse_bool(
                    self._get(record, "author_is_brand"), what="author_is_brand"
                ),
                url=self._str(self._get(record, "url")),
                language=self._str(self._get(record, "language")),
                collected_at=self.ctx.clock(),
                raw=extra,
            )
        except (TypeError, ValueError) as e:
            raise BadInput(str(e)) from None

    @staticmethod
    def _str(value: Any) -> str | None:
        return None if value is None else str(value)
