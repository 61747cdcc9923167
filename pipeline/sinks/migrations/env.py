"""Alembic environment for careradar's store.

careradar runs migrations programmatically (``Store.upgrade`` / ``careradar db upgrade``) and
hands this script an open connection in ``config.attributes["connection"]``, so the same engine
settings (SQLite pragmas, PostgreSQL driver) apply to migrations and to normal use. The URL
fallback exists for running the ``alembic`` command by hand during development.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from pipeline.sinks.schema import metadata

config = context.config
target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Render SQL to stdout (``alembic upgrade head --sql``) for DBAs who apply it by hand."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and sqlalchemy.url is not set")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
