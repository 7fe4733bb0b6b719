"""SQLAlchemy 2 tables of Herald's stored configuration and delivery log.

Portable across SQLite (the default) and PostgreSQL (production): plain types only, JSON kept
as text, timestamps as timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base of every Herald table."""


class TenantRow(Base):
    __tablename__ = "tenants"
    client_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    #: PBKDF2 hash of the client secret; the secret itself is shown once and never stored.
    secret_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"
    #: SHA-256 of the bearer token: a leaked table grants nothing.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("tenants.client_id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InstalledIntegrationRow(Base):
    __tablename__ = "installed_integrations"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(256), index=True)
    intg_id: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str] = mapped_column(String(255))
    #: The base notifier without its secrets (JSON), and its secrets sealed apart.
    base_notifier: Mapped[str | None] = mapped_column(Text, nullable=True)
    base_notifier_secrets: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: ``ENABLED``, ``DISABLED`` or ``UNINSTALLED``: only an enabled one's events match.
    state: Mapped[str] = mapped_column(String(16), default="ENABLED")
    #: Why it was uninstalled (OpsRamp's ``uninstallReason``).
    state_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Fields OpsRamp clients send that Herald has no use for (``category``...), kept (JSON).
    extra: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class IntegrationEventRow(Base):
    __tablename__ = "integration_events"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(256))
    installed_id: Mapped[str] = mapped_column(
        ForeignKey("installed_integrations.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(255))
    entity: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Why the event is inactive when Herald disabled it (endpoint failing for days...).
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The event as configured, without secrets and without filter criteria (JSON).
    config: Mapped[str] = mapped_column(Text)
    notifier_secrets: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    criteria: Mapped[FilterCriteriaRow | None] = relationship(
        back_populates="event", cascade="all, delete-orphan", lazy="selectin", uselist=False
    )

    __table_args__ = (
        # Matching looks events up by (tenant, entity, eventType) through this index, never by
        # a scan of every event.
        Index("ix_events_match", "tenant_id", "entity", "event_type", "active"),
        # Captured values are shared by the events of one installed integration.
        Index("ix_events_installed", "installed_id"),
    )


class FilterCriteriaRow(Base):
    __tablename__ = "filter_criteria"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(
        ForeignKey("integration_events.id", ondelete="CASCADE"), unique=True
    )
    name: Mapped[str] = mapped_column(String(255))
    match_type: Mapped[str] = mapped_column(String(8))
    event: Mapped[IntegrationEventRow] = relationship(back_populates="criteria")
    rules: Mapped[list[FilterRuleRow]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="FilterRuleRow.position"
    )


class FilterRuleRow(Base):
    __tablename__ = "filter_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    criteria_id: Mapped[int] = mapped_column(ForeignKey("filter_criteria.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    resource_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    key: Mapped[str] = mapped_column(String(256))
    operator: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)

    # Loading an event's criteria reads its rules in order through this index.
    __table_args__ = (Index("ix_filter_rules_criteria", "criteria_id", "position"),)


class MessageRow(Base):
    """Entity-change message ids seen, to drop producer duplicates within the window."""

    __tablename__ = "messages"
    tenant_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)


#: A delivery still to be sent: its status is one of ``DeliveryStatus.UNFINISHED``.
UNFINISHED_CLAUSE = text("status IN ('PENDING', 'RETRYING', 'WAITING')")


class DeliveryRow(Base):
    """One (message, integration event) delivery: a row of the activity log.

    A malformed queue message is kept here too, as a dead letter with no event.
    """

    __tablename__ = "deliveries"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(256))
    event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    installed_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    entity: Mapped[str | None] = mapped_column(String(32), nullable=True)
    event_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    entity_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    status_message: Mapped[str] = mapped_column(Text, default="")
    error_class: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    req_payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    res_payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: ``attempts`` when the delivery was last replayed: a replay starts a fresh retry budget.
    attempts_base: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[str] = mapped_column(Text, default="[]")
    captured: Mapped[str] = mapped_column(Text, default="{}")
    #: The entity-change message as received (raw text for a dead letter), for replay.
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Per-ticket ordering (:mod:`worker.ordering`): the ticket's key, the change's place in
    #: stream order, whether the event waits for earlier deliveries, and the one it waits on.
    ordering_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sequence: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ordered: Mapped[bool] = mapped_column(Boolean, default=True)
    waits_on: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempt_log: Mapped[list[AttemptRow]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AttemptRow.number"
    )

    __table_args__ = (
        Index("ix_deliveries_tenant_time", "tenant_id", "created_at"),
        # Also serves the dead letters (``event_id IS NULL``), newest first.
        Index("ix_deliveries_event_time", "event_id", "created_at"),
        # A duplicate message's deliveries still to be attempted.
        Index("ix_deliveries_message", "tenant_id", "message_id"),
        # A ticket's deliveries by status, in order: its unfinished ones (whatever its
        # history), and its last failure before a given change.
        Index("ix_deliveries_ticket", "ordering_key", "status", "sequence"),
    )


class AttemptRow(Base):
    __tablename__ = "attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error_class: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    response_excerpt: Mapped[str] = mapped_column(Text, default="")

    # A delivery's attempts, in order: without it every activity read scans every attempt.
    __table_args__ = (Index("ix_attempts_delivery", "delivery_id", "number"),)


class CapturedValueRow(Base):
    """Values captured from a third party's response, per (event, entity): ``extTicketId``..."""

    __tablename__ = "captured_values"
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    entity_id: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # The capture lookup filters on the entity (its event is one of several siblings).
    __table_args__ = (Index("ix_captured_entity", "entity_id"),)


#: The id of the one row of :class:`ConfigVersionRow`.
CONFIG_VERSION_ROW = 1


class ConfigVersionRow(Base):
    """One row: a counter bumped with every change to what matching or delivery sees.

    Workers poll it to invalidate the events they keep compiled in memory.
    """

    __tablename__ = "config_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer, default=0)
