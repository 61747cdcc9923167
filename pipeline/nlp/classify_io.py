"""Line-oriented classification for ``careradar classify``: bytes in, one JSON object per line out.

Why a module of its own: the CLI stays a thin printer, and the rules here (what a line is, what
an error looks like, how order is kept) are tested without a terminal.

- Input is read as **bytes**, one line at a time, so invalid UTF-8 in one line is that line's
  error, not a crash, and a file of any size streams (:data:`CHUNK_LINES` lines in memory at
  once). A line longer than :data:`MAX_LINE_BYTES` is skipped to its end and reported.
- Each line is detected on its own: a JSON object with a ``"text"`` string is a record (its
  optional ``"id"`` is echoed and ``"language"`` used as a hint); anything else, including a
  line that starts with ``{`` but is not valid JSON, is the text itself. A UTF-8 byte order
  mark at the start of the input is ignored.
- Every input line gives exactly one output object, in input order, with ``"line"`` (1-based).
  An empty line, undecodable bytes, a JSON object without text or a classifier failure give an
  object with an ``"error"`` field instead of the classification.
- Entity texts are redacted in the context of their line
  (:func:`~pipeline.nlp.pii.redact_part`), so an e-mail address or phone number never reaches
  the output, and an order number after "订单号" is not mistaken for a phone number.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final

from pipeline.items import Channel, Classification, Item, now_utc
from pipeline.nlp.base import Classifier
from pipeline.nlp.pii import redact_part

__all__ = [
    "CHUNK_LINES",
    "MAX_LINE_BYTES",
    "Line",
    "classify_lines",
    "parse_line",
    "read_lines",
]

log = logging.getLogger(__name__)

CHUNK_LINES: Final = 256
"""Lines classified together: big enough for batched inference, small enough to stream."""
MAX_LINE_BYTES: Final = 1 << 20
"""Longer lines are reported as errors, never loaded (same limit as the file collector)."""
_BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Line:
    """One input line: its text, or why it has none."""

    number: int
    text: str | None = None
    error: str | None = None
    id: Any = None
    language: str | None = None


def parse_line(number: int, raw: bytes) -> Line:
    """Decode and interpret one line (without its line break)."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Line(
            number,
            error=f"line {number}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); re-encode the input as UTF-8",
        )
    stripped = decoded.strip()
    if not stripped:
        return Line(number, error=f"line {number}: empty line, nothing to classify")
    if stripped.startswith("{"):
        try:
            record = json.loads(stripped)
        except ValueError:
            record = None  # "{sarcasm} great service": text that happens to start with a brace
        if isinstance(record, dict):
            return _record(number, record)
    return Line(number, text=decoded)


def _record(number: int, record: dict[str, Any]) -> Line:
    ident = record.get("id")
    if not isinstance(ident, str | int | float | bool | type(None)):
        ident = None
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        got = "missing" if text is None else f"{type(text).__name__} {text!r}"[:60]
        return Line(
            number,
            id=ident,
            error=f'line {number}: JSON object needs a non-empty "text" string ({got})',
        )
    language = record.get("language")
    return Line(
        number,
        text=text,
        id=ident,
        language=language if isinstance(language, str) and language.strip() else None,
    )


def read_lines(stream: IO[bytes]) -> Iterator[Line]:
    """Every line of ``stream`` as a :class:`Line`, numbered from 1, never more than
    :data:`MAX_LINE_BYTES` of one line in memory."""
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            size = len(raw)
            while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                raw = stream.readline(MAX_LINE_BYTES)
                size += len(raw)
            yield Line(
                number,
                error=f"line {number}: {size:,} bytes, longer than the {MAX_LINE_BYTES:,}-byte "
                "limit; split the text",
            )
            continue
        yield parse_line(number, raw.rstrip(b"\n"))


def _chunks(lines: Iterator[Line], size: int) -> Iterator[list[Line]]:
    chunk: list[Line] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _item(line: Line, text: str) -> Item:
    return Item(
        source="classify",
        channel=Channel.SOCIAL,
        external_id=f"line-{line.number}",
        text=text,
        created_at=now_utc(),
        language=line.language,
    )


def _classify(classifier: Classifier, items: Sequence[Item]) -> list[Classification | str]:
    """Classify a chunk; if the classifier fails on it, one item at a time, so one bad text
    costs only its own row."""
    try:
        results = list(classifier.classify(items))
        if len(results) == len(items):
            return list(results)
        log.warning("classifier returned %d results for %d texts", len(results), len(items))
    except Exception as exc:  # a model bug must not lose the other lines
        log.warning("classifier failed on a chunk (%s); retrying one line at a time", exc)
    one_by_one: list[Classification | str] = []
    for item in items:
        try:
            [result] = classifier.classify([item])
        except Exception as exc:
            one_by_one.append(f"classification failed: {type(exc).__name__}: {exc}")
        else:
            one_by_one.append(result)
    return one_by_one


def _result(line: Line, c: Classification) -> dict[str, Any]:
    out: dict[str, Any] = {"line": line.number}
    if line.id is not None:
        out["id"] = line.id
    out.update(
        sentiment=c.sentiment.value,
        probabilities={k: round(float(v), 4) for k, v in c.sentiment_scores.items()},
        is_complaint=c.is_complaint,
        complaint_score=round(float(c.complaint_score), 4),
        topics={k: round(float(v), 4) for k, v in c.topics.items()},
        urgency=c.urgency.value,
        entities=[
            {
                "label": e.label,
                "text": redact_part(line.text or "", e.text, e.start, e.end),
                "start": e.start,
                "end": e.end,
            }
            for e in c.entities
        ],
        language=c.language,
        language_supported=c.language_supported,
        model_version=c.model_version,
    )
    return out


def _error(line: Line, message: str, version: str) -> dict[str, Any]:
    out: dict[str, Any] = {"line": line.number}
    if line.id is not None:
        out["id"] = line.id
    out["error"] = message
    out["model_version"] = version
    return out


def classify_lines(
    stream: IO[bytes], classifier: Classifier, *, chunk_lines: int = CHUNK_LINES
) -> Iterator[list[tuple[Line, dict[str, Any]]]]:
    """Per chunk of input lines, ``(line, output object)`` pairs in input order."""
    for chunk in _chunks(read_lines(stream), max(1, chunk_lines)):
        todo = [line for line in chunk if line.text is not None]
        results = _classify(classifier, [_item(line, line.text or "") for line in todo])
        by_number = dict(zip((line.number for line in todo), results, strict=True))
        out: list[tuple[Line, dict[str, Any]]] = []
        for line in chunk:
            if line.error is not None:
                out.append((line, _error(line, line.error, classifier.version)))
                continue
            result = by_number[line.number]
            if isinstance(result, str):
                out.append(
                    (line, _error(line, f"line {line.number}: {result}", classifier.version))
                )
            else:
                out.append((line, _result(line, result)))
        yield out
