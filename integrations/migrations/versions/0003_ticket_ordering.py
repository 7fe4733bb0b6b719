"""Per-ticket ordering: a delivery's ticket, its place in stream order, what it waits on.

Deliveries created before this revision have no ticket key: they are never held, and no
later delivery waits for them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("ordering_key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("sequence", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("ordered", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("waits_on", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_deliveries_ticket",
        "deliveries",
        ["ordering_key", "status", "sequence"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_ticket", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("waits_on")
        batch.drop_column("ordered")
        batch.drop_column("sequence")
        batch.drop_column("ordering_key")
