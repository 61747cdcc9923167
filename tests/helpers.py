"""Shared test helpers: throwaway PostgreSQL databases and fixed times.

PostgreSQL tests talk to the real server on 127.0.0.1:5432 (see DESIGN.md). When it is not
reachable they are skipped locally with the reason, but fail under CI (env ``CI`` set), so a
broken CI database can never turn into a silently green run.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from pipeline.sinks import scratch

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
"""A fixed, zone-aware 'now' for tests that must not depend on the clock."""

postgres_unavailable = functools.cache(scratch.postgres_unavailable)
"""Why PostgreSQL cannot be used, or None when it can (checked once per session)."""


def require_postgres() -> None:
    """Skip (locally) or fail (CI) the calling test when PostgreSQL is unreachable."""
    reason = postgres_unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so PostgreSQL tests must run)")
    pytest.skip(f"{reason}; start it: pg_ctlcluster <version> main start")


@contextmanager
def fresh_postgres_url(*, password: str | None = None) -> Iterator[str]:
    """An empty database ``careradar_test_<hex>`` for one test or session, dropped after."""
    require_postgres()
    with scratch.scratch_database("careradar_test_", password=password) as url:
        yield url
