"""Shared test helpers: throwaway PostgreSQL databases and fixed times.

PostgreSQL tests talk to the real server on 127.0.0.1:5432 (see DESIGN.md). When it is not
reachable they are skipped locally with the reason, but fail under CI (env ``CI`` set), so a
broken CI database can never turn into a silently green run.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

PG_HOST = os.environ.get("CARERADAR_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CARERADAR_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("CARERADAR_TEST_PG_USER", "postgres")
PG_ADMIN_DB = "postgres"

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
"""A fixed, zone-aware 'now' for tests that must not depend on the clock."""


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=PG_USER,
        dbname=PG_ADMIN_DB,
        autocommit=True,
        connect_timeout=5,
    )


@functools.cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can (checked once per session)."""
    try:
        with _admin() as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        detail = " ".join(str(exc).split())
        return f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable: {detail}"
    return None


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
    """Create an empty database ``careradar_test_<hex>``, yield its SQLAlchemy URL, drop it.

    ``password`` is put into the URL (the test server uses trust auth and ignores it), which
    lets tests check that passwords never appear in messages.
    """
    require_postgres()
    name = f"careradar_test_{uuid.uuid4().hex}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    auth = PG_USER if password is None else f"{PG_USER}:{password}"
    try:
        yield f"postgresql+psycopg://{auth}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with _admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
