"""Collector health on the real store: a failure streak and a silence alert once per incident,
and once more on recovery; a failing source does not also report silence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline import registry
from pipeline.config import AppConfig, SourceConfig, load_config
from pipeline.errors import TransientError
from pipeline.health import HealthEvent, silence_threshold
from pipeline.items import Batch, Channel, Cursor, Item
from pipeline.nlp.lexicon import LexiconClassifier
from pipeline.runner import Runner

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


class Scripted:
    """A collector whose next run either fails or yields ``n`` new items."""

    name = "s"
    channel = Channel.SOCIAL

    def __init__(self, plan: list[int | str], clock: list[datetime]) -> None:
        self.plan, self.clock, self.serial = plan, clock, 0

    def collect(self, cursor: Cursor | None) -> Iterator[Batch]:
        step = self.plan.pop(0)
        if step == "fail":
            raise TransientError("HTTP 503 from feeds.example", retry_after=30)
        items = []
        for _ in range(int(step)):
            self.serial += 1
            items.append(
                Item(
                    source="s",
                    channel=Channel.SOCIAL,
                    external_id=f"i{self.serial}",
                    text=f"my parcel {self.serial} is late again",
                    created_at=self.clock[0] - timedelta(minutes=1),
                )
            )
        yield Batch(items=items, cursor={"n": self.serial})


def cfg_for(tmp_path: Path, extra: str = "") -> AppConfig:
    p = tmp_path / "c.yaml"
    p.write_text(
        "health: {failures: 3}\n"
        "sources:\n"
        f"  - {{name: s, kind: file, channel: social, path: s.jsonl{extra}}}\n",
        encoding="utf-8",
    )
    return load_config(p, registry.source_models())


class Harness:
    def __init__(self, tmp_path: Path, store, plan: list[int | str], extra: str = "") -> None:
        self.now = [T0]
        self.events: list[HealthEvent] = []
        self.collector = Scripted(plan, self.now)
        collector = self.collector

        class R(Runner):
            def build_collector(self, src: SourceConfig) -> Scripted:  # type: ignore[override]
                return collector

        self.runner = R(
            cfg_for(tmp_path, extra),
            store,
            classifier=LexiconClassifier(),
            health_hooks=[self.events.append],
            clock=lambda: self.now[0],
        )

    def run(self, steps: int = 1, every: timedelta = timedelta(minutes=30)) -> None:
        for _ in range(steps):
            self.runner.run_once("s")
            self.now[0] += every

    def seen(self) -> list[tuple[str, str]]:
        return [(e.kind, e.state) for e in self.events]


def test_failure_streak_alerts_once_and_once_on_recovery(store, tmp_path):
    h = Harness(tmp_path, store, [1, "fail", "fail", "fail", "fail", "fail", 1, 1])
    h.run(3)
    assert h.seen() == []  # two failures are noise
    h.run()
    assert h.seen() == [("failing", "firing")]
    assert "3 runs in a row failed" in h.events[0].message
    assert "HTTP 503" in h.events[0].message
    h.run(2)  # still failing: no repeat
    assert h.seen() == [("failing", "firing")]
    assert [a["kind"] for a in store.firing_alerts("s")] == ["source_failing"]
    h.run()
    assert h.seen() == [("failing", "firing"), ("failing", "resolved")]
    assert store.firing_alerts("s") == []
    h.run()
    assert len(h.events) == 2


def test_silence_is_learned_and_alerts_once(store, tmp_path):
    # Items every 30 minutes for 8 runs: normal gap 30 min, threshold max(4 x 30m, 3h) = 3h.
    h = Harness(tmp_path, store, [1] * 8 + [0] * 10 + [2])
    h.run(8)
    h.run(6)  # 3h of nothing: not yet over the threshold
    assert h.seen() == []
    h.run()
    assert h.seen() == [("silent", "firing")]
    assert "no new items for" in h.events[0].message
    h.run(3)
    assert h.seen() == [("silent", "firing")]
    h.run()
    assert h.seen() == [("silent", "firing"), ("silent", "resolved")]


def test_failing_source_does_not_also_report_silence(store, tmp_path):
    h = Harness(tmp_path, store, [1] * 8 + ["fail"] * 12, extra=", silence_after: 1h")
    h.run(20)
    assert h.seen() == [("failing", "firing")]


def test_configured_silence(store, tmp_path):
    h = Harness(tmp_path, store, [1, 0, 0, 0], extra=", silence_after: 45m")
    h.run(4)
    assert h.seen() == [("silent", "firing")]


def test_silence_off(store, tmp_path):
    off = Harness(tmp_path, store, [1] * 8 + [0] * 20, extra=", silence_after: 'off'")
    off.run(28)
    assert off.seen() == []


@pytest.mark.parametrize(
    ("gaps_min", "configured", "expected"),
    [
        ([30] * 4, "auto", None),  # too little history to judge
        ([30] * 5, "auto", 3 * 3600.0),  # floor
        ([60] * 9 + [600], "auto", 4 * 60 * 60.0),  # one outlier in ten is ignored
        ([60] * 8 + [600] * 2, "auto", 4 * 600 * 60.0),  # p90 of ten gaps
        ([30] * 5, 7200.0, 7200.0),
        ([30] * 5, "off", None),
    ],
)
def test_silence_threshold(gaps_min, configured, expected):
    times = [T0]
    for g in gaps_min:
        times.append(times[-1] + timedelta(minutes=g))
    assert silence_threshold(times, configured=configured) == expected


def test_a_transient_failure_carries_the_sources_retry_after(store, tmp_path):
    h = Harness(tmp_path, store, ["fail"])
    result = h.runner.run_once("s")
    assert (result.status, result.retry_after) == ("error", 30)
    assert "HTTP 503" in (result.error or "")
