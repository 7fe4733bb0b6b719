"""Baseline: the schema Herald had before migrations (databases made by ``create_all``).

Timestamps are plain ``DateTime(timezone=True)`` here; ``integrations.tables.UTCDateTime``
only changes how Python reads them, not the DDL.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 18:42:53.984297
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "captured_values",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.Text(), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "entity_id", "key"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=256), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("installed_id", sa.String(length=64), nullable=True),
        sa.Column("message_id", sa.String(length=256), nullable=True),
        sa.Column("entity", sa.String(length=32), nullable=True),
        sa.Column("event_type", sa.String(length=16), nullable=True),
        sa.Column("entity_id", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("error_class", sa.String(length=64), nullable=True),
        sa.Column("request_url", sa.Text(), nullable=True),
        sa.Column("req_payload", sa.Text(), nullable=True),
        sa.Column("res_payload", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempts_base", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.Text(), nullable=False),
        sa.Column("captured", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_event_time", ["event_id", "created_at"], unique=False)
        batch_op.create_index(
            "ix_deliveries_tenant_time", ["tenant_id", "created_at"], unique=False
        )

    op.create_table(
        "installed_integrations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=256), nullable=False),
        sa.Column("intg_id", sa.String(length=256), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("base_notifier", sa.Text(), nullable=True),
        sa.Column("base_notifier_secrets", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("installed_integrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_installed_integrations_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "messages",
        sa.Column("tenant_id", sa.String(length=256), nullable=False),
        sa.Column("message_id", sa.String(length=256), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "message_id"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_received_at"), ["received_at"], unique=False)

    op.create_table(
        "tenants",
        sa.Column("client_id", sa.String(length=256), nullable=False),
        sa.Column("secret_hash", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["tenants.client_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error_class", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("response_excerpt", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "integration_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=256), nullable=False),
        sa.Column("installed_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("notifier_secrets", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["installed_id"], ["installed_integrations.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("integration_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_match", ["tenant_id", "entity", "event_type", "active"], unique=False
        )

    op.create_table(
        "filter_criteria",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("match_type", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["integration_events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_table(
        "filter_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("criteria_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=True),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("operator", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["criteria_id"], ["filter_criteria.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("filter_rules")
    op.drop_table("filter_criteria")
    with op.batch_alter_table("integration_events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_match")

    op.drop_table("integration_events")
    op.drop_table("attempts")
    op.drop_table("api_tokens")
    op.drop_table("tenants")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_received_at"))

    op.drop_table("messages")
    with op.batch_alter_table("installed_integrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_installed_integrations_tenant_id"))

    op.drop_table("installed_integrations")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_tenant_time")
        batch_op.drop_index("ix_deliveries_event_time")

    op.drop_table("deliveries")
    op.drop_table("captured_values")
