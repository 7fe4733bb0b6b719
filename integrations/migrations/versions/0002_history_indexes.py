"""Indexes for the history, and the configuration version.

Every hot-path query is served by an index however long the activity log grows: a
delivery's attempts, a criteria's rules, a message's deliveries, an entity's captured values,
an installed integration's events. ``config_version`` is one row that every configuration
change bumps, so workers know when their cached events are stale.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: (index, table, columns) added by this revision.
INDEXES = (
    ("ix_attempts_delivery", "attempts", ["delivery_id", "number"]),
    ("ix_filter_rules_criteria", "filter_rules", ["criteria_id", "position"]),
    ("ix_deliveries_message", "deliveries", ["tenant_id", "message_id"]),
    ("ix_captured_entity", "captured_values", ["entity_id"]),
    ("ix_events_installed", "integration_events", ["installed_id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    config_version = op.create_table(
        "config_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(config_version, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("config_version")
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
