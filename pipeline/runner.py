"""One cycle of one source: collect -> normalize -> classify -> SLA -> store -> hooks -> cursor.

``Runner.run_once`` is the only way items enter the store. ``careradar run``, ``collect``, the
scheduler, tests and benchmarks all call it. Guarantees:

- The cursor is written in the same transaction as the batch it covers, so a crash (even
  ``kill -9``) at any point either loses the whole batch's effect, which the next run re-reads,
  or keeps all of it. Upserts are idempotent, so re-reading never stores anything twice.
- An item is classified once per content and model version: unchanged items are skipped.
- A bad record is stored as a bad input and the batch goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from pipeline import registry, sla
from pipeline.collectors.base import CollectContext, Collector
from pipeline.config import AppConfig, SourceConfig, account_key
from pipeline.errors import (
    CareradarError,
    ConfigError,
    NotConfigured,
    StoreError,
    TerminalError,
    TransientError,
)
from pipeline.health import HealthHook, HealthMonitor, log_health
from pipeline.items import (
    AwaitingItem,
    BadInputRecord,
    Batch,
    Channel,
    Classification,
    Item,
    ProcessedItem,
    now_utc,
)
from pipeline.nlp.base import Classifier
from pipeline.nlp.language import detect_languages
from pipeline.nlp.normalize import clean_text, fingerprint
from pipeline.sinks.store import Store, WriteResult

log = logging.getLogger(__name__)

CLASSIFY_CHUNK_BATCHES: Final = 16
"""Items per classifier call, in units of ``classifier.batch_size`` (see ``Runner._classify``)."""

_WEB_URL = re.compile(r"^https?://", re.IGNORECASE)

STORE_RETRIES = (0.5, 2.0, 5.0)
"""Back-off (seconds, before jitter) when the database drops out in the middle of a batch."""


class StoredHook(Protocol):
    """Called after a batch is durable, with what was written (alerts plug in here)."""

    def __call__(self, source: SourceConfig, processed: Sequence[ProcessedItem]) -> None: ...


@dataclass
class RunResult:
    source: str
    status: str = "ok"  # ok | partial | error | not_configured | dry_run
    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicate: int = 0
    bad: int = 0
    responded: int = 0
    batches: int = 0
    error: str | None = None
    hint: str | None = None
    started_at: datetime = field(default_factory=now_utc)
    duration_s: float = 0.0
    lag_seconds: float | None = None
    retry_after: float | None = None  # the source asked us to wait this long (HTTP Retry-After)
    newest_created_at: datetime | None = None
    dry_run_items: list[ProcessedItem] = field(default_factory=list)
    dry_run_bad: list[Any] = field(default_factory=list)
    dry_run_cursor: Any = None  # where the cursor would move (dry runs do not move it)

    @property
    def failed(self) -> bool:
        return self.status == "error"

    def add(self, w: WriteResult) -> None:
        self.new += w.new
        self.updated += w.updated
        self.unchanged += w.unchanged
        self.duplicate += w.duplicate
        self.bad += w.bad
        self.responded += w.responded

    def to_json(self) -> dict[str, Any]:
        out = {
            k: v
            for k, v in dataclasses.asdict(self).items()
            if k
            not in (
                "dry_run_items",
                "dry_run_bad",
                "dry_run_cursor",
                "started_at",
                "newest_created_at",
            )
        }
        out["started_at"] = _iso(self.started_at)
        out["newest_created_at"] = _iso(self.newest_created_at)
        return out


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat().replace("+00:00", "Z")


class Runner:
    """Holds what is expensive to build once (store, classifier) and runs sources through it."""

    def __init__(
        self,
        cfg: AppConfig,
        store: Store | None,
        *,
        classifier: Classifier | None = None,
        hooks: Iterable[StoredHook] = (),
        health_hooks: Iterable[HealthHook] = (log_health,),
        clock: Callable[[], datetime] = now_utc,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self._classifier = classifier
        self.hooks = list(hooks)
        self.clock = clock
        self.sleep = sleep
        self.stop_event = threading.Event()
        self._classify_lock = threading.Lock()
        self._brands = sorted((b.name for b in cfg.brands), key=len, reverse=True)
        self._accounts_by_platform: dict[str, frozenset[str]] = {}
        self.health = (
            None if store is None else HealthMonitor(cfg, store, health_hooks, clock=clock)
        )

    @property
    def classifier(self) -> Classifier:
        if self._classifier is None:
            self._classifier = registry.build_classifier(self.cfg)
        return self._classifier

    # -- the cycle ------------------------------------------------------------------------------

    def run_once(
        self,
        source: SourceConfig | str,
        *,
        dry_run: bool = False,
        on_batch: Callable[[RunResult], None] | None = None,
    ) -> RunResult:
        src = self.cfg.source(source) if isinstance(source, str) else source
        result = RunResult(source=src.name, started_at=self.clock())
        t0 = time.perf_counter()
        run_id = None
        try:
            if not dry_run:
                run_id = self._store().start_run(src.name, started_at=result.started_at)
            collector = self.build_collector(src)
            cursor = None if dry_run and self.store is None else self._store().get_cursor(src.name)
            # A source's first run reads its history; old items there are record, not work.
            no_clock_before = (
                result.started_at - timedelta(seconds=src.first_run_max_age)
                if cursor is None and src.first_run_max_age is not None
                else None
            )
            for batch in collector.collect(cursor):
                self._one_batch(src, batch, result, run_id, dry_run, no_clock_before)
                if on_batch is not None:
                    on_batch(result)
                if self.stop_event.is_set():
                    log.info("%s: stopping after this batch (shutdown requested)", src.name)
                    break
            if dry_run:
                result.status = "dry_run"
            elif result.bad:
                result.status = "partial"
        # Outcomes are logged at INFO: every caller (CLI, scheduler) reports the RunResult
        # itself, and the same line twice is noise. Tracebacks only with --debug.
        except NotConfigured as e:
            result.status = "not_configured"
            result.error, result.hint = e.message, e.hint
            log.info("%s: skipped: %s", src.name, e.message)
        except (TransientError, TerminalError, ConfigError, StoreError) as e:
            result.status = "error"
            result.error, result.hint = e.message, e.hint
            if isinstance(e, TransientError):
                result.retry_after = e.retry_after
            log.info("%s: failed: %s", src.name, e.message)
        except Exception as e:
            result.status = "error"
            result.error = f"unexpected {type(e).__name__}: {e}"
            result.hint = "run with --debug for the traceback, and report it"
            log.error(
                "%s: run failed: %s",
                src.name,
                result.error,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
        result.duration_s = time.perf_counter() - t0
        if run_id is not None:
            self._finish(run_id, result)
            if self.health is not None:
                self.health.check(src, status=result.status, new=result.new, error=result.error)
        return result

    def build_collector(self, src: SourceConfig) -> Collector:
        if not src.enabled:
            raise NotConfigured(f"source '{src.name}' is disabled (enabled: false)")
        spec = registry.collector_spec(src.kind)
        store = self.store

        def awaiting(since: datetime) -> list[AwaitingItem]:
            return [] if store is None else store.awaiting_response(src.name, since=since)

        ctx = CollectContext(app=self.cfg, clock=self.clock, awaiting_response=awaiting)
        collector: Collector = spec.factory(src, ctx)
        return collector

    def ingest(
        self,
        source: SourceConfig | str,
        items: Sequence[Item],
        *,
        bad: Sequence[BadInputRecord] = (),
    ) -> RunResult:
        """Store items that were pushed to us (chat webhooks) rather than collected.

        The same path as one batch of ``run_once``: normalize -> classify -> SLA -> store (one
        transaction, response detection included) -> hooks, so a pushed customer message has
        its SLA row when this returns. There is no cursor and no collector run is recorded
        (one row per webhook call would drown the health figures). Store failures raise
        (``TransientError`` after the usual retries, ``StoreError``): the caller answers its
        sender, who can retry; upserts make a retry harmless.
        """
        src = self.cfg.source(source) if isinstance(source, str) else source
        result = RunResult(source=src.name, started_at=self.clock())
        t0 = time.perf_counter()
        self._one_batch(src, Batch(items=list(items), bad=list(bad)), result, None, False)
        if result.bad:
            result.status = "partial"
        result.duration_s = time.perf_counter() - t0
        return result

    def _store(self) -> Store:
        if self.store is None:
            raise ConfigError("no store is open")
        return self.store

    def _finish(self, run_id: int, r: RunResult) -> None:
        try:
            self._store().finish_run(
                run_id,
                status=r.status,
                seen=r.seen,
                new=r.new,
                updated=r.updated,
                duplicate=r.duplicate,
                bad=r.bad,
                error=r.error,
                lag_seconds=r.lag_seconds,
                newest_created_at=r.newest_created_at,
            )
        except CareradarError as e:  # health bookkeeping must not turn a good run into a crash
            log.error("%s: could not record the run: %s", r.source, e.message)

    def _one_batch(
        self,
        src: SourceConfig,
        batch: Batch,
        result: RunResult,
        run_id: int | None,
        dry_run: bool,
        no_clock_before: datetime | None = None,
    ) -> None:
        result.batches += 1
        result.seen += len(batch.items)
        items = self.normalize(batch.items)
        processed = self.process(src, items, no_clock_before=no_clock_before)
        newest = max((i.created_at for i in items), default=None)
        if newest is not None and (
            result.newest_created_at is None or newest > result.newest_created_at
        ):
            result.newest_created_at = newest
            result.lag_seconds = max(0.0, (self.clock() - newest).total_seconds())
        if dry_run:
            result.dry_run_items.extend(p for p in processed if p.classification is not None)
            result.dry_run_bad.extend(batch.bad)
            result.dry_run_cursor = batch.cursor
            result.bad += len(batch.bad)
            return
        written = self._write_with_retry(src, processed, batch, run_id)
        result.add(written)
        # Items that were only re-read count as unchanged, not as skipped work.
        result.unchanged += len(items) - len(processed)
        for hook in self.hooks:
            try:
                hook(src, processed)
            except Exception:
                log.exception("%s: a stored-hook failed; the batch is stored regardless", src.name)

    def _write_with_retry(
        self, src: SourceConfig, processed: list[ProcessedItem], batch: Batch, run_id: int | None
    ) -> WriteResult:
        store = self._store()
        for attempt, delay in enumerate((*STORE_RETRIES, None)):
            try:
                return store.write_batch(
                    processed, bad=batch.bad, source=src.name, cursor=batch.cursor, run_id=run_id
                )
            except TransientError as e:
                if delay is None:
                    raise
                wait = delay * (0.5 + random.random())  # jitter, not crypto
                log.warning(
                    "%s: store unavailable (%s); retry %d/%d in %.1fs",
                    src.name,
                    e.message,
                    attempt + 1,
                    len(STORE_RETRIES),
                    wait,
                )
                self.sleep(wait)
        raise AssertionError("unreachable")

    # -- stages ---------------------------------------------------------------------------------

    def normalize(self, items: Sequence[Item]) -> list[Item]:
        """Clean text, mark the brand's own posts, drop in-batch repeats (last one wins)."""
        by_key: dict[tuple[str, str], Item] = {}
        for item in items:
            changes: dict[str, Any] = {"text": clean_text(item.text)}
            if item.brand:
                changes["brand"] = self._canonical_brand(item.brand)
            if item.title:
                changes["title"] = clean_text(item.title)
            # Chat roles come from the chat tool itself; a customer who names themselves
            # after the brand account must not become the brand.
            if (
                not item.author_is_brand
                and item.author
                and item.channel is not Channel.CHAT
                and account_key(item.author) in self._accounts(item.platform)
            ):
                changes["author_is_brand"] = True
            if item.url and not _WEB_URL.match(item.url):
                changes["url"] = None  # javascript:, data: ... never reach a page or alert
            by_key[item.key] = dataclasses.replace(item, **changes)
        return list(by_key.values())

    def _accounts(self, platform: str) -> frozenset[str]:
        found = self._accounts_by_platform.get(platform)
        if found is None:
            found = self._accounts_by_platform[platform] = self.cfg.brand_accounts(platform)
        return found

    def _canonical_brand(self, value: str) -> str:
        """'Lumo Mobile app' -> 'Lumo Mobile' when that brand is configured; else unchanged."""
        folded = value.casefold()
        for name in self._brands:
            if folded == name.casefold() or folded.startswith(name.casefold() + " "):
                return name
        return value

    def process(
        self, src: SourceConfig, items: Sequence[Item], *, no_clock_before: datetime | None = None
    ) -> list[ProcessedItem]:
        """Classify and put SLA on what is new or changed; skip what the store already has.

        Items created before ``no_clock_before`` are stored and classified but start no reply
        clock (a first run's history).
        """
        if not items:
            return []
        existing = self.store.existing([i.key for i in items]) if self.store is not None else {}
        version = self.classifier.version
        todo = []
        for item in items:
            known = existing.get(item.key)
            if (
                known is not None
                and known.content_hash == item.content_hash
                and version in known.model_versions
                and (known.author_is_brand or not item.author_is_brand)
            ):
                continue  # unchanged (a customer item now seen as the brand's is a change)
            todo.append(item)
        todo = self._with_language(todo)
        fingerprints = {item.key: fingerprint(item.text) for item in todo}
        duplicates = self._cross_posts(todo, existing, fingerprints)
        classifications = self._classify(todo)
        out = []
        for item, c in zip(todo, classifications, strict=True):
            dup = duplicates.get(item.key)
            # A cross-post rides on its first copy's clock. For a known item the store keeps an
            # existing SLA row and only starts one if the new text or model now needs a reply.
            history = no_clock_before is not None and item.created_at < no_clock_before
            state = (
                None
                if dup is not None or history
                else sla.apply_policy(item, c, self.cfg.sla, policy_override=src.sla_policy)
            )
            out.append(
                ProcessedItem(
                    item=item,
                    classification=c,
                    sla=state,
                    fingerprint=fingerprints[item.key],
                    duplicate_of=dup,
                )
            )
        return out

    def _classify(self, items: Sequence[Item]) -> list[Classification]:
        """Classify in chunks of :data:`CLASSIFY_CHUNK_BATCHES` x ``classifier.batch_size``
        items of similar length, results in input order.

        Sorting by length first keeps padding small for encoder models, where one long text in
        a batch of short ones makes the whole batch pay for its length. Characters are only a
        rough guide to tokens (a Chinese character is about a token, an English word of five
        letters one or two), so each call gets many batches' worth and the encoder forms the
        batches itself by token count: on the 5,000-text benchmark corpus that pads 210,000
        token slots for 184,201 tokens, against 252,840 with calls of one batch each.
        """
        size = self.cfg.classifier.batch_size * CLASSIFY_CHUNK_BATCHES
        order = sorted(range(len(items)), key=lambda i: len(items[i].text))
        results: list[Classification | None] = [None] * len(items)
        with self._classify_lock:
            for start in range(0, len(order), size):
                chunk = order[start : start + size]
                got = self.classifier.classify([items[i] for i in chunk])
                if len(got) != len(chunk):
                    raise TerminalError(
                        f"classifier {self.classifier.version} returned {len(got)} results "
                        f"for {len(chunk)} items"
                    )
                for i, c in zip(chunk, got, strict=True):
                    results[i] = c
        return [c for c in results if c is not None]

    def _with_language(self, items: list[Item]) -> list[Item]:
        missing = [i for i, item in enumerate(items) if not item.language]
        if not missing:
            return items
        detected = detect_languages([items[i].text for i in missing])
        out = list(items)
        for i, (lang, _conf) in zip(missing, detected, strict=True):
            if lang:
                out[i] = dataclasses.replace(items[i], language=lang)
        return out

    def _cross_posts(
        self,
        items: Sequence[Item],
        existing: dict[tuple[str, str], Any],
        fingerprints: dict[tuple[str, str], str],
    ) -> dict[tuple[str, str], tuple[str, str]]:
        """The same words posted again (another platform, another link) within the window.

        The first copy carries the SLA; later copies are stored and linked to it, not queued.
        Brand posts are never cross-post duplicates (templated replies look alike on purpose),
        nor are chats and e-mails: two customers writing "where is my order?" to us directly
        are two conversations, each with its own clock.
        """
        window = timedelta(seconds=self.cfg.dedupe.cross_post_window)
        fresh = [
            i
            for i in items
            if i.key not in existing
            and not i.author_is_brand
            and i.channel not in sla.DIRECT_CHANNELS
            and fingerprints[i.key]
        ]
        if not fresh:
            return {}
        fps = {i.key: fingerprints[i.key] for i in fresh}
        earliest = min(i.created_at for i in fresh) - window
        known = (
            self.store.find_cross_posts(sorted(set(fps.values())), since=earliest)
            if self.store
            else {}
        )
        first_seen: dict[str, tuple[tuple[str, str], datetime]] = {}
        dups: dict[tuple[str, str], tuple[str, str]] = {}
        for item in sorted(fresh, key=lambda i: i.created_at):
            fp = fps[item.key]
            if fp in known and known[fp] != item.key:
                dups[item.key] = known[fp]
                continue
            seen = first_seen.get(fp)
            if seen is not None and item.created_at - seen[1] <= window:
                dups[item.key] = seen[0]
            else:
                first_seen[fp] = (item.key, item.created_at)
        return dups
