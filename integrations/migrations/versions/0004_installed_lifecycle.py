"""Installed integrations' lifecycle: a state (enabled, disabled, uninstalled), the reason
for an uninstall, and the OpsRamp fields Herald keeps without using them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("installed_integrations") as batch:
        batch.add_column(
            sa.Column("state", sa.String(length=16), nullable=False, server_default="ENABLED")
        )
        batch.add_column(sa.Column("state_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("extra", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("installed_integrations") as batch:
        batch.drop_column("extra")
        batch.drop_column("state_reason")
        batch.drop_column("state")
