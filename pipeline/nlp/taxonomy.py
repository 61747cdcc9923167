"""The topic taxonomy: which topics exist and how to recognise them.

A taxonomy file is YAML with a ``topics`` list (see ``config/taxonomy.yaml`` for every key,
commented). The built-in default ships inside the package as ``pipeline/data/taxonomy.yaml``,
byte-identical to the documented ``config/taxonomy.yaml``.

Every validation error is a :class:`~pipeline.errors.ConfigError` naming the file and the
topic index and key, e.g. ``config/taxonomy.yaml: topics[3].name: 'Delivery' is not a slug``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

from pipeline.errors import ConfigError

__all__ = ["DEFAULT_TAXONOMY", "Topic", "default_taxonomy_text", "load_taxonomy", "parse_taxonomy"]

DEFAULT_TAXONOMY: Final = "pipeline/data/taxonomy.yaml"
"""How the built-in taxonomy is named in error messages."""

_SLUG = re.compile(r"[a-z][a-z0-9_]{0,63}")
_KEYS: Final = ("name", "label", "description", "examples", "keywords")
_HINT = "see config/taxonomy.yaml for the format; every key is described in its header"


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic: a stable ``name`` (slug), a display ``label`` and how to recognise it."""

    name: str
    label: str
    description: str
    examples: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


def _fail(source: str, where: str, problem: str) -> ConfigError:
    return ConfigError(f"{source}: {where}: {problem}", hint=_HINT)


def _text(source: str, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, where, f"expected non-empty text, got {value!r}")
    return " ".join(value.split())


def _texts(source: str, where: str, value: Any, *, lower: bool) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(source, where, f"expected a list of strings, got {type(value).__name__}")
    out: list[str] = []
    for j, entry in enumerate(value):
        text = _text(source, f"{where}[{j}]", entry)
        if lower:
            text = text.casefold()
        if text not in out:
            out.append(text)
    return tuple(out)


def _topic(source: str, index: int, raw: Any) -> Topic:
    where = f"topics[{index}]"
    if not isinstance(raw, dict):
        raise _fail(source, where, f"expected a mapping with keys {', '.join(_KEYS)}")
    unknown = sorted(str(k) for k in raw if k not in _KEYS)
    if unknown:
        raise _fail(
            source,
            f"{where}.{unknown[0]}",
            f"unknown key; valid keys are: {', '.join(_KEYS)}",
        )
    for key in ("name", "label", "description"):
        if key not in raw:
            raise _fail(source, f"{where}.{key}", "required key is missing")
    name = _text(source, f"{where}.name", raw["name"])
    if not _SLUG.fullmatch(name):
        raise _fail(
            source,
            f"{where}.name",
            f"{name!r} is not a slug (lowercase letters, digits and _, starting with a letter)",
        )
    topic = Topic(
        name=name,
        label=_text(source, f"{where}.label", raw["label"]),
        description=_text(source, f"{where}.description", raw["description"]),
        examples=_texts(source, f"{where}.examples", raw.get("examples"), lower=False),
        keywords=_texts(source, f"{where}.keywords", raw.get("keywords"), lower=True),
    )
    if not topic.examples and not topic.keywords:
        raise _fail(source, where, f"topic {name!r} needs examples or keywords (or both)")
    return topic


def parse_taxonomy(data: Any, source: str = "<taxonomy>") -> list[Topic]:
    """Validate already-parsed YAML; ``source`` names the file in error messages."""
    if not isinstance(data, dict) or "topics" not in data:
        raise _fail(
            source, "topics", "required key is missing (the file must hold `topics: [...]`)"
        )
    unknown = sorted(str(k) for k in data if k != "topics")
    if unknown:
        raise _fail(source, unknown[0], "unknown key; the only top-level key is: topics")
    raw_topics = data["topics"]
    if not isinstance(raw_topics, list) or not raw_topics:
        raise _fail(source, "topics", "expected a non-empty list of topics")
    topics: list[Topic] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_topics):
        topic = _topic(source, i, raw)
        if topic.name in seen:
            raise _fail(
                source,
                f"topics[{i}].name",
                f"duplicate topic name {topic.name!r} (also topics[{seen[topic.name]}])",
            )
        seen[topic.name] = i
        topics.append(topic)
    return topics


def _parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: {where}: invalid YAML: {problem}", hint=_HINT) from exc


def default_taxonomy_text() -> str:
    """The text of the built-in taxonomy file."""
    return resources.files("pipeline").joinpath("data", "taxonomy.yaml").read_text("utf-8")


def load_taxonomy(path: str | Path | None = None) -> list[Topic]:
    """Load and validate a taxonomy file; ``None`` loads the built-in default."""
    if path is None:
        source, text = DEFAULT_TAXONOMY, default_taxonomy_text()
    else:
        source = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(
                f"{source}: taxonomy file not found",
                hint="check the path, or leave the setting out to use the built-in taxonomy",
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read taxonomy file: {exc}", hint=_HINT) from exc
    return parse_taxonomy(_parse_yaml(text, source), source)
