"""Human labels from the triage queue: one current label per (item, task).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Written by hand, like 0001, and without importing pipeline.sinks.schema (which describes the
newest schema, not this revision). Only a new table: existing items, classifications and
events are untouched, so upgrading a database with data is a plain CREATE TABLE on SQLite and
PostgreSQL alike; downgrading drops the table and with it every stored label (the ``events``
rows of kind "label" stay, as history).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[int]:
    # BIGINT ids; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" auto-increments.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts() -> sa.DateTime:
    # timestamptz on PostgreSQL; on SQLite text holding UTC (the store converts).
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("item_id", _id(), nullable=False),
        sa.Column("task", sa.String(16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("model_value", sa.Text(), nullable=True),
        sa.Column("model_version", sa.String(100), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("labelled_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_labels"),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name="fk_labels_item_id_items", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("item_id", "task", name="uq_labels_item_id_task"),
        sa.CheckConstraint(
            "task IN ('sentiment', 'complaint', 'urgency', 'topics')", name="ck_labels_task"
        ),
    )
    op.create_index("ix_labels_task", "labels", ["task"])


def downgrade() -> None:
    op.drop_index("ix_labels_task", table_name="labels")
    op.drop_table("labels")
