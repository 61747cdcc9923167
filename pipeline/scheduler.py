"""``careradar run``: one APScheduler job per enabled source; the scheduler decides only *when*.

Jobs coalesce missed runs into one, never overlap (``max_instances=1``), skip a run that is later
than the misfire grace, and add jitter so sources polling the same host spread out. SIGINT and
SIGTERM stop the scheduler after the batch in progress has been stored.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from pipeline.config import SourceConfig, format_duration
from pipeline.runner import Runner, RunResult

log = logging.getLogger(__name__)


def trigger_for(src: SourceConfig, default_every: float) -> Any:
    sched = src.schedule
    jitter = int(sched.jitter) or None
    if sched.cron is not None:
        minute, hour, day, month, day_of_week = sched.cron.split()
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=day_of_week,
            timezone="UTC",
            jitter=jitter,
        )
    every = sched.every if sched.every is not None else default_every
    return IntervalTrigger(seconds=every, timezone="UTC", jitter=jitter)


def build_scheduler(
    runner: Runner, on_result: Callable[[RunResult], None] | None = None, *, workers: int = 4
) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=workers)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(runner.cfg.scheduler.misfire_grace),
        },
        timezone="UTC",
    )

    def job(name: str) -> None:
        result = runner.run_once(name)
        hold_off(scheduler, result, now=runner.clock())
        if on_result is not None:
            on_result(result)

    for src in runner.cfg.sources:
        if not src.enabled:
            log.info("%s: disabled, not scheduled", src.name)
            continue
        if not src.polled:
            log.info("%s: fed by its webhook (careradar serve), nothing to poll", src.name)
            continue
        scheduler.add_job(
            job,
            trigger_for(src, runner.cfg.scheduler.default_every),
            args=[src.name],
            id=f"collect:{src.name}",
            name=f"collect {src.name}",
            replace_existing=True,
            next_run_time=runner.clock(),  # first run now, then on the schedule
        )
    return scheduler


def hold_off(scheduler: BaseScheduler, result: RunResult, *, now: datetime) -> None:
    """Honour a source's Retry-After: its next run waits at least that long.

    A 429 or 503 with Retry-After fails the run fast instead of sleeping in it; without this
    the next scheduled poll would knock again before the server allowed it.
    """
    if not result.retry_after or result.retry_after <= 0:
        return
    job = scheduler.get_job(f"collect:{result.source}")
    if job is None:
        return
    until = now + timedelta(seconds=result.retry_after)
    if job.next_run_time is not None and job.next_run_time < until:
        scheduler.modify_job(job.id, next_run_time=until)
        log.info(
            "%s: the source asked to wait %s; next run at %s",
            result.source,
            format_duration(result.retry_after),
            until.isoformat(timespec="seconds"),
        )


def serve(runner: Runner, on_result: Callable[[RunResult], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM; then finish the current batch and stop."""
    scheduler = build_scheduler(runner, on_result)
    stopped = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "received %s: finishing the current batch, then stopping", signal.Signals(signum).name
        )
        runner.stop_event.set()
        stopped.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    scheduler.start()
    try:
        while not stopped.wait(1.0):
            pass
    finally:
        scheduler.shutdown(wait=True)
        for s, handler in previous.items():
            signal.signal(s, handler)
