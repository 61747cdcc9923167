"""Names -> components. Collectors and classifiers register under a kind name; config refers to
them by that name; an unknown name is answered with the list of valid ones.

Built-in modules are imported lazily the first time the registry is consulted, so importing the
registry stays cheap and a collector module can import the registry to register itself.
Third-party packages can add components through the ``careradar.collectors`` and
``careradar.classifiers`` entry-point groups.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, TypeVar

from pipeline.config import AppConfig, SourceConfig
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

_BUILTIN_COLLECTORS = (
    "pipeline.collectors.file",
    "pipeline.collectors.feed",
    "pipeline.collectors.reviews",
    "pipeline.collectors.reddit",
    "pipeline.collectors.mail",
    "pipeline.collectors.chat",
)
_BUILTIN_CLASSIFIERS = ("pipeline.nlp.builtin",)


@dataclass(frozen=True)
class CollectorSpec:
    kind: str
    factory: Callable[..., Any]
    config_model: type[SourceConfig]
    channel: str | None  # fixed channel of the kind, if it has one


@dataclass(frozen=True)
class ClassifierSpec:
    name: str
    factory: Callable[[AppConfig], Any]


_collectors: dict[str, CollectorSpec] = {}
_classifiers: dict[str, ClassifierSpec] = {}
_loaded = False

T = TypeVar("T")


def register_collector(
    kind: str, *, config: type[SourceConfig], channel: str | None = None
) -> Callable[[T], T]:
    def deco(factory: T) -> T:
        _collectors[kind] = CollectorSpec(kind, factory, config, channel)  # type: ignore[arg-type]
        return factory

    return deco


def register_classifier(name: str) -> Callable[[T], T]:
    def deco(factory: T) -> T:
        _classifiers[name] = ClassifierSpec(name, factory)  # type: ignore[arg-type]
        return factory

    return deco


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in (*_BUILTIN_COLLECTORS, *_BUILTIN_CLASSIFIERS):
        importlib.import_module(module)
    for group in ("careradar.collectors", "careradar.classifiers"):
        for ep in entry_points(group=group):
            try:
                ep.load()
            except Exception as e:  # a broken plug-in must not take the built-ins down
                log.warning("plug-in %s from %s failed to load: %s", ep.name, ep.value, e)


def source_models() -> dict[str, type[SourceConfig]]:
    _load()
    return {k: spec.config_model for k, spec in _collectors.items()}


def collector_spec(kind: str) -> CollectorSpec:
    _load()
    try:
        return _collectors[kind]
    except KeyError:
        raise ConfigError(_unknown("collector kind", kind, _collectors)) from None


def classifier_names() -> list[str]:
    _load()
    return sorted(_classifiers)


def build_classifier(cfg: AppConfig) -> Any:
    _load()
    name = cfg.classifier.kind
    spec = _classifiers.get(name)
    if spec is None:
        raise ConfigError(
            f"classifier.kind: {_unknown('classifier', name, _classifiers)}",
            hint="set classifier.kind in the config file",
        )
    return spec.factory(cfg)


def _unknown(what: str, name: str, known: dict[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    suggestion = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {what} '{name}'{suggestion}; valid values are: {', '.join(sorted(known))}"
