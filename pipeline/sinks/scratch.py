"""Throwaway PostgreSQL databases for the test suite and the benchmark: create one, hand out
its URL, drop it afterwards (``WITH (FORCE)``, so a leaked connection cannot keep it alive).

The server is the one the development and CI machines run (127.0.0.1:5432, trust auth);
``CARERADAR_TEST_PG_HOST``, ``_PORT`` and ``_USER`` point elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from psycopg import sql

PG_HOST: Final = os.environ.get("CARERADAR_TEST_PG_HOST", "127.0.0.1")
PG_PORT: Final = int(os.environ.get("CARERADAR_TEST_PG_PORT", "5432"))
PG_USER: Final = os.environ.get("CARERADAR_TEST_PG_USER", "postgres")
PG_ADMIN_DB: Final = "postgres"


def admin_connection() -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection to the maintenance database (CREATE/DROP DATABASE need it)."""
    return psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=PG_USER,
        dbname=PG_ADMIN_DB,
        autocommit=True,
        connect_timeout=5,
    )


def postgres_unavailable() -> str | None:
    """Why the scratch server cannot be used, or None when it can."""
    try:
        with admin_connection() as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        detail = " ".join(str(exc).split())
        return f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable: {detail}"
    return None


@contextmanager
def scratch_database(prefix: str, *, password: str | None = None) -> Iterator[str]:
    """Create ``<prefix><hex>``, yield its SQLAlchemy URL, drop it.

    ``password`` only goes into the URL (trust auth ignores it): tests use it to check that
    passwords never reach messages.
    """
    name = f"{prefix}{uuid.uuid4().hex[:16]}"
    with admin_connection() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    auth = PG_USER if password is None else f"{PG_USER}:{password}"
    try:
        yield f"postgresql+psycopg://{auth}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin_connection() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
