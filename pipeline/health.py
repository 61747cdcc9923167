"""Collector health: a source that keeps failing or goes quiet raises an alert once.

After every real run the runner asks ``HealthMonitor.check`` two questions about the source:

- **failing**: have the last ``health.failures`` runs (default 3) all failed? One failure is
  noise (a timeout, a 503); a streak means someone has to act.
- **silent**: has no new item arrived for longer than is normal for this source? "Normal" is
  either configured (``silence_after: 6h``) or learned (``auto``): four times the 90th
  percentile of the gaps between runs that brought new items over the last 30 days, and never
  less than three hours. A source needs five such gaps before ``auto`` judges it; until then it
  stays quiet rather than guess.

Each condition goes through the alert ledger in the store (``record_alert``/``resolve_alert``),
so it fires once per incident however many runs see it, and once more when it clears. A
failing source does not also report silence (the failure explains the silence), following
alertmanager's inhibition rule "source down mutes volume dropped".

Hooks receive a ``HealthEvent``; the CLI logs it, alert sinks (Slack, webhook, e-mail) plug in
the same way.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pipeline.config import AppConfig, SourceConfig, format_duration
from pipeline.errors import CareradarError
from pipeline.sinks.store import Store

log = logging.getLogger(__name__)

LEARN_WINDOW = timedelta(days=30)
MIN_GAPS = 5
AUTO_FACTOR = 4.0
AUTO_FLOOR = 3 * 3600.0


@dataclass(frozen=True)
class HealthEvent:
    source: str
    kind: str  # "failing" | "silent" | "refusing" (pushed requests refused)
    state: str  # "firing" | "resolved"
    message: str
    hint: str | None
    at: datetime

    @property
    def key(self) -> str:
        return f"source-{self.kind}:{self.source}"


class HealthHook(Protocol):
    def __call__(self, event: HealthEvent) -> None: ...


def log_health(event: HealthEvent) -> None:
    """The default hook: one log line per state change."""
    if event.state == "firing":
        log.warning("%s: %s", event.source, event.message)
    else:
        log.info("%s: %s", event.source, event.message)


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]


def silence_threshold(productive: list[datetime], *, configured: float | str) -> float | None:
    """Seconds without new items after which a source counts as silent, or None (no judgement).

    ``productive`` are the start times of the runs that brought new items, oldest first.
    """
    if configured == "off":
        return None
    if isinstance(configured, int | float):
        return float(configured)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(productive)]
    if len(gaps) < MIN_GAPS:
        return None
    return max(AUTO_FACTOR * _p90(gaps), AUTO_FLOOR)


class HealthMonitor:
    def __init__(
        self,
        cfg: AppConfig,
        store: Store,
        hooks: Iterable[HealthHook] = (log_health,),
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.hooks = list(hooks)
        self.clock = clock
        self._refusals: dict[str, int] = {}
        self._accepting: set[str] = set()

    def check(self, src: SourceConfig, *, status: str, new: int, error: str | None) -> None:
        """Update both conditions for ``src`` after a run that ended with ``status``."""
        if status in ("not_configured", "dry_run"):
            return
        try:
            self._failing(src, status, error)
            if status != "error":  # a failing source is silent for a known reason
                self._silent(src, new)
        except CareradarError as e:  # health bookkeeping must never fail a run
            log.error("%s: could not update collector health: %s", src.name, e.message)

    def intake(self, src: SourceConfig, *, accepted: bool, reason: str | None = None) -> None:
        """After a pushed request (chat webhook): a streak of refused signatures alerts.

        Pushed sources have no runs to fail: when the chat tool's secret and ours drift apart,
        every message is refused with 401 and nothing else would say so. The streak is counted
        in this process; the alert goes through the same ledger, once per incident.
        """
        try:
            if accepted:
                # One ledger write per process and recovery, not one per message.
                if src.name in self._refusals or src.name not in self._accepting:
                    self._refusals.pop(src.name, None)
                    self._accepting.add(src.name)
                    self._resolve(src, "refusing", "signed webhook requests are accepted again")
                return
            self._accepting.discard(src.name)
            count = self._refusals[src.name] = self._refusals.get(src.name, 0) + 1
            if count >= self.cfg.health.failures:
                self._fire(
                    src,
                    "refusing",
                    f"{count} webhook requests in a row were refused; last: {reason or '?'}",
                    "check that the chat tool signs with the same secret as this source's "
                    "`secret`, and that both clocks are right (replay window)",
                )
        except CareradarError as e:
            log.error("%s: could not update intake health: %s", src.name, e.message)

    def _emit(self, event: HealthEvent) -> None:
        for hook in self.hooks:
            try:
                hook(event)
            except Exception:
                log.exception("%s: a health hook failed", event.source)

    def _fire(self, src: SourceConfig, kind: str, message: str, hint: str | None) -> None:
        event = HealthEvent(src.name, kind, "firing", message, hint, self.clock())
        if self.store.record_alert(
            event.key,
            kind=f"source_{kind}",
            reason=message,
            source=src.name,
            payload={"hint": hint} if hint else None,
        ):
            self._emit(event)

    def _resolve(self, src: SourceConfig, kind: str, message: str) -> None:
        event = HealthEvent(src.name, kind, "resolved", message, None, self.clock())
        if self.store.resolve_alert(event.key):
            self._emit(event)

    def _failing(self, src: SourceConfig, status: str, error: str | None) -> None:
        if status != "error":
            self._resolve(src, "failing", "recovered: the last run succeeded")
            return
        (state,) = self.store.source_status([src.name])
        if state.consecutive_failures < self.cfg.health.failures:
            return
        self._fire(
            src,
            "failing",
            f"{state.consecutive_failures} runs in a row failed; last error: {error or '?'}",
            f"see: careradar status; then: careradar collect {src.name} --debug",
        )

    def _silent(self, src: SourceConfig, new: int) -> None:
        if new > 0:
            self._resolve(src, "silent", "new items are arriving again")
            return
        now = self.clock()
        productive = self.store.productive_runs(src.name, since=now - LEARN_WINDOW)
        threshold = silence_threshold(productive, configured=src.silence_after)
        if threshold is None or not productive:
            return
        quiet = (now - productive[-1]).total_seconds()
        if quiet > threshold:
            self._fire(
                src,
                "silent",
                f"no new items for {format_duration(quiet)} "
                f"(normal: within {format_duration(threshold)})",
                "check the source still publishes and the query/keywords still match; "
                f"set silence_after on '{src.name}' to tune this",
            )
