"""The store: tenants, API tokens, installed integrations, integration events and deliveries.

SQLAlchemy 2 over SQLite by default (``./var/herald.db``) or PostgreSQL via
``HERALD_DATABASE_URL``. Notifier secrets are sealed with :class:`~integrations.crypto.SecretBox`
before they reach a table; client secrets and API tokens are kept only as hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, delete, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from integrations.crypto import SecretBox
from integrations.enums import Entity, EventType
from integrations.migrate import migrate
from integrations.models import (
    MASK,
    SECRET_FIELDS,
    FilterCriteria,
    IntegrationEventIn,
    Notifier,
    Rule,
    is_credential_header,
)
from integrations.tables import (
    ApiTokenRow,
    AttemptRow,
    CapturedValueRow,
    DeliveryRow,
    FilterCriteriaRow,
    FilterRuleRow,
    InstalledIntegrationRow,
    IntegrationEventRow,
    MessageRow,
    TenantRow,
    utcnow,
)

_PBKDF2_ROUNDS = 60_000


class DeliveryStatus:
    """Values of the activity log's ``status``."""

    PENDING = "PENDING"
    RETRYING = "RETRYING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TERMINAL = frozenset({SUCCESS, FAILED})


def _hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, _PBKDF2_ROUNDS)
    return f"pbkdf2_sha256${_PBKDF2_ROUNDS}${salt.hex()}${digest.hex()}"


def _verify_secret(secret: str, stored: str) -> bool:
    try:
        _, rounds, salt, digest = stored.split("$")
    except ValueError:
        return False
    candidate = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), int(rounds))
    return hmac.compare_digest(candidate.hex(), digest)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def delivery_id_for(tenant_id: str, message_id: str, event_id: str) -> str:
    """The stable id of the delivery of one message to one integration event.

    Derived, not random, so that a message processed twice maps to the same delivery: it is the
    ``Idempotency-Key`` and ``webhook-id`` a receiver can deduplicate on.
    """
    digest = hashlib.sha256(f"{tenant_id}\x00{message_id}\x00{event_id}".encode()).hexdigest()
    return f"DLV-{digest[:32]}"


def split_secrets(notifier: Notifier) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a notifier into its public fields and its secret fields."""
    data = notifier.model_dump(mode="json", exclude_none=True)
    hidden = {k: data.pop(k) for k in SECRET_FIELDS if k in data}
    return data, hidden


@dataclass(frozen=True)
class InstalledIntegration:
    """An installed integration: the parent of integration events."""

    id: str
    tenant_id: str
    intg_id: str
    display_name: str
    base_notifier: Notifier | None
    created_at: datetime


@dataclass(frozen=True)
class StoredEvent:
    """An integration event as stored, with its secrets opened (never echo ``spec`` as is)."""

    id: str
    tenant_id: str
    installed_id: str
    active: bool
    disabled_reason: str | None
    spec: IntegrationEventIn
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, for the activity log."""

    number: int
    started_at: datetime
    duration_ms: float
    outcome: str
    http_status: int | None
    error_class: str | None
    reason: str
    response_excerpt: str


@dataclass(frozen=True)
class Delivery:
    """A row of the activity log."""

    id: str
    tenant_id: str
    event_id: str | None
    installed_id: str | None
    message_id: str | None
    entity: str | None
    event_type: str | None
    entity_id: str | None
    status: str
    status_message: str
    error_class: str | None
    request_url: str | None
    req_payload: str | None
    res_payload: str | None
    http_status: int | None
    attempts: int
    attempts_base: int
    warnings: list[str]
    captured: dict[str, str]
    message: str
    created_at: datetime
    processed_time: datetime | None
    next_attempt_at: datetime | None
    attempt_log: list[Attempt]


def _delivery(row: DeliveryRow) -> Delivery:
    return Delivery(
        id=row.id,
        tenant_id=row.tenant_id,
        event_id=row.event_id,
        installed_id=row.installed_id,
        message_id=row.message_id,
        entity=row.entity,
        event_type=row.event_type,
        entity_id=row.entity_id,
        status=row.status,
        status_message=row.status_message,
        error_class=row.error_class,
        request_url=row.request_url,
        req_payload=row.req_payload,
        res_payload=row.res_payload,
        http_status=row.http_status,
        attempts=row.attempts,
        attempts_base=row.attempts_base or 0,
        warnings=json.loads(row.warnings or "[]"),
        captured=json.loads(row.captured or "{}"),
        message=row.message,
        created_at=row.created_at,
        processed_time=row.processed_time,
        next_attempt_at=row.next_attempt_at,
        attempt_log=[
            Attempt(
                number=a.number,
                started_at=a.started_at,
                duration_ms=a.duration_ms,
                outcome=a.outcome,
                http_status=a.http_status,
                error_class=a.error_class,
                reason=a.reason,
                response_excerpt=a.response_excerpt,
            )
            for a in row.attempt_log
        ],
    )


_Owned = TypeVar("_Owned", InstalledIntegrationRow, IntegrationEventRow, DeliveryRow)


def _owned(s: Session, model: type[_Owned], key: str, tenant_id: str | None) -> _Owned | None:
    """The row ``key`` of ``model`` if it exists and belongs to ``tenant_id`` (any if None).

    Another tenant's row is reported exactly like a missing one, so ids cannot be probed.
    """
    row = s.get(model, key)
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        return None
    return row


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so API and workers can share it."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver Herald installs; plain postgresql:// would ask for psycopg2.
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the API read while a worker writes; the busy timeout makes concurrent
            # writers wait instead of failing with "database is locked".
            cur.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL is safe against a process crash (only a power loss can drop
            # the last commits) and saves an fsync per commit on the delivery hot path.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


class Store:
    """Herald's persistence. Thread-safe; one per process."""

    def __init__(self, database_url: str, secret_key: str | None) -> None:
        self.engine = make_engine(database_url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._box = SecretBox(secret_key)
        self._create_schema()

    def _create_schema(self) -> None:
        # Every process (API, each worker child) brings the schema to the newest revision on
        # start; concurrent starters are serialised inside migrate().
        migrate(self.engine)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self._sessions() as s, s.begin():
            yield s

    # -- tenants and API tokens ------------------------------------------------------------

    def create_tenant(self, client_id: str) -> str:
        """Create a tenant (or rotate its secret) and return the new client secret, shown once."""
        secret = secrets.token_urlsafe(32)
        with self.session() as s:
            row = s.get(TenantRow, client_id)
            if row is None:
                s.add(TenantRow(client_id=client_id, secret_hash=_hash_secret(secret)))
            else:
                row.secret_hash = _hash_secret(secret)
        return secret

    def verify_tenant(self, client_id: str, secret: str) -> bool:
        """Whether ``secret`` is the client secret of ``client_id``."""
        with self.session() as s:
            row = s.get(TenantRow, client_id)
            return row is not None and _verify_secret(secret, row.secret_hash)

    def issue_token(self, client_id: str, ttl: int) -> str:
        """Issue a bearer token scoped to one tenant; only its hash is kept."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        with self.session() as s:
            s.execute(delete(ApiTokenRow).where(ApiTokenRow.expires_at < now))
            s.add(
                ApiTokenRow(
                    token_hash=_token_hash(token),
                    client_id=client_id,
                    expires_at=now + timedelta(seconds=ttl),
                )
            )
        return token

    def tenant_for_token(self, token: str) -> str | None:
        """The tenant a live bearer token belongs to, or ``None``."""
        with self.session() as s:
            row = s.get(ApiTokenRow, _token_hash(token))
            if row is None or row.expires_at < utcnow():
                return None
            return row.client_id

    # -- installed integrations ------------------------------------------------------------

    def _installed(self, row: InstalledIntegrationRow) -> InstalledIntegration:
        notifier = None
        if row.base_notifier:
            data = json.loads(row.base_notifier)
            data.update(self._box.open(row.base_notifier_secrets))
            notifier = Notifier.model_validate(data)
        return InstalledIntegration(
            id=row.id,
            tenant_id=row.tenant_id,
            intg_id=row.intg_id,
            display_name=row.display_name,
            base_notifier=notifier,
            created_at=row.created_at,
        )

    def install(self, tenant_id: str, intg_id: str, display_name: str) -> InstalledIntegration:
        """Install an integration for a tenant; its id is ``INTG-<uuid>``."""
        row = InstalledIntegrationRow(
            id=f"INTG-{uuid.uuid4()}",
            tenant_id=tenant_id,
            intg_id=intg_id,
            display_name=display_name,
        )
        with self.session() as s:
            s.add(row)
            s.flush()
            return self._installed(row)

    def get_installed(self, tenant_id: str, installed_id: str) -> InstalledIntegration | None:
        """The tenant's installed integration, or ``None`` if unknown or another tenant's."""
        with self.session() as s:
            row = _owned(s, InstalledIntegrationRow, installed_id, tenant_id)
            return self._installed(row) if row is not None else None

    def set_base_notifier(
        self, tenant_id: str, installed_id: str, notifier: Notifier
    ) -> InstalledIntegration | None:
        """Store the installed integration's base notifier (secrets sealed)."""
        public, hidden = split_secrets(notifier)
        with self.session() as s:
            row = _owned(s, InstalledIntegrationRow, installed_id, tenant_id)
            if row is None:
                return None
            row.base_notifier = json.dumps(public)
            row.base_notifier_secrets = self._box.seal(hidden)
            # Events that use the base notifier changed too: bump them so caches refresh.
            s.execute(
                update(IntegrationEventRow)
                .where(IntegrationEventRow.installed_id == installed_id)
                .values(updated_at=utcnow())
            )
            s.flush()
            return self._installed(row)

    # -- integration events ----------------------------------------------------------------

    def _event(self, row: IntegrationEventRow) -> StoredEvent:
        config = json.loads(row.config)
        hidden = self._box.open(row.notifier_secrets)
        for i, value in hidden.pop("headers", {}).items():
            config["headers"][int(i)]["value"] = value
        if config.get("notifier") is not None:
            config["notifier"].update(hidden)
        if row.criteria is not None:
            config["filterCriteria"] = FilterCriteria(
                id=row.criteria.id,
                name=row.criteria.name,
                matchType=row.criteria.match_type,  # type: ignore[arg-type]
                rules=[
                    Rule(
                        id=r.id,
                        resourceType=r.resource_type,  # type: ignore[arg-type]
                        key=r.key,
                        operator=r.operator,  # type: ignore[arg-type]
                        value=r.value,
                    )
                    for r in row.criteria.rules
                ],
            )
        return StoredEvent(
            id=row.id,
            tenant_id=row.tenant_id,
            installed_id=row.installed_id,
            active=row.active,
            disabled_reason=row.disabled_reason,
            spec=IntegrationEventIn.model_validate(config),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def create_event(
        self, tenant_id: str, installed_id: str, spec: IntegrationEventIn
    ) -> StoredEvent:
        """Store an integration event; filter criteria and each rule get numeric ids."""
        config = spec.model_dump(mode="json", exclude={"filterCriteria", "notifier"})
        hidden: dict[str, Any] = {}
        if spec.notifier is not None:
            config["notifier"], hidden = split_secrets(spec.notifier)
        # Header values that are credentials (Authorization, X-Api-Key...) are sealed like
        # notifier secrets; the stored config keeps a mask in their place.
        sealed_headers = {
            str(i): h["value"]
            for i, h in enumerate(config["headers"])
            if is_credential_header(h["key"])
        }
        for i in sealed_headers:
            config["headers"][int(i)]["value"] = MASK
        if sealed_headers:
            hidden["headers"] = sealed_headers
        row = IntegrationEventRow(
            id=f"INTG-EVENT-{uuid.uuid4()}",
            tenant_id=tenant_id,
            installed_id=installed_id,
            name=spec.name,
            entity=spec.entity.value,
            event_type=spec.eventType.value,
            active=True,
            config=json.dumps(config),
            notifier_secrets=self._box.seal(hidden),
        )
        if spec.filterCriteria is not None:
            row.criteria = FilterCriteriaRow(
                name=spec.filterCriteria.name or spec.name,
                match_type=spec.filterCriteria.matchType.value,
                rules=[
                    FilterRuleRow(
                        position=i,
                        resource_type=r.resourceType.value if r.resourceType else None,
                        key=r.key,
                        operator=r.operator.value,
                        value=r.value,
                    )
                    for i, r in enumerate(spec.filterCriteria.rules)
                ],
            )
        with self.session() as s:
            s.add(row)
            s.flush()
            return self._event(row)

    def get_event(self, tenant_id: str, event_id: str) -> StoredEvent | None:
        """The tenant's integration event, or ``None``."""
        with self.session() as s:
            row = _owned(s, IntegrationEventRow, event_id, tenant_id)
            return self._event(row) if row is not None else None

    def load_event(self, event_id: str) -> StoredEvent | None:
        """An integration event by id, whatever its tenant (for the worker)."""
        with self.session() as s:
            row = s.get(IntegrationEventRow, event_id)
            return self._event(row) if row is not None else None

    def list_events(self, tenant_id: str, installed_id: str) -> list[StoredEvent]:
        """The integration events under one installed integration, oldest first."""
        with self.session() as s:
            rows = s.scalars(
                select(IntegrationEventRow)
                .where(
                    IntegrationEventRow.tenant_id == tenant_id,
                    IntegrationEventRow.installed_id == installed_id,
                )
                .order_by(IntegrationEventRow.created_at)
            )
            return [self._event(r) for r in rows]

    def delete_event(self, tenant_id: str, event_id: str) -> bool:
        """Delete an integration event; ``False`` if there was none."""
        with self.session() as s:
            row = _owned(s, IntegrationEventRow, event_id, tenant_id)
            if row is None:
                return False
            s.delete(row)
            return True

    def set_event_active(
        self, event_id: str, active: bool, reason: str | None = None
    ) -> StoredEvent | None:
        """Activate or deactivate an event; ``reason`` says why Herald disabled it."""
        with self.session() as s:
            row = s.get(IntegrationEventRow, event_id)
            if row is None:
                return None
            row.active = active
            row.disabled_reason = None if active else reason
            s.flush()
            return self._event(row)

    def candidate_keys(
        self, tenant_id: str, entity: Entity, event_type: EventType
    ) -> list[tuple[str, datetime]]:
        """``(id, updated_at)`` of the active events a change may match (served by an index).

        The worker keeps compiled events by these keys, so matching a change costs one
        indexed query, not a decryption and validation of every candidate.
        """
        with self.session() as s:
            rows = s.execute(
                select(IntegrationEventRow.id, IntegrationEventRow.updated_at).where(
                    IntegrationEventRow.tenant_id == tenant_id,
                    IntegrationEventRow.entity == entity.value,
                    IntegrationEventRow.event_type == event_type.value,
                    IntegrationEventRow.active.is_(True),
                )
            ).all()
            return [(r[0], r[1]) for r in rows]

    # -- messages and deliveries -----------------------------------------------------------

    def seen_recently(self, tenant_id: str, message_id: str, window: float) -> bool:
        """Whether this message id was fully processed within ``window`` seconds.

        A sighting counts as a duplicate on the first one's row, so an operator can see how
        often a producer re-sends.
        """
        with self.session() as s:
            row = s.get(MessageRow, (tenant_id, message_id))
            if row is None or row.received_at < utcnow() - timedelta(seconds=window):
                return False
            row.duplicates += 1
            return True

    def remember_message(self, tenant_id: str, message_id: str, window: float = 86400.0) -> None:
        """Record that a message was fully processed (its deliveries exist).

        Now and then (one call in 500) ids older than twice the window are forgotten, so the
        table holds about a window's worth of ids instead of growing forever.
        """
        if secrets.randbelow(500) == 0:
            with self.session() as s:
                s.execute(
                    delete(MessageRow).where(
                        MessageRow.received_at < utcnow() - timedelta(seconds=2 * window)
                    )
                )
        with self.session() as s:
            row = s.get(MessageRow, (tenant_id, message_id))
            if row is not None:
                row.received_at = utcnow()
                return
            try:
                with s.begin_nested():
                    s.add(MessageRow(tenant_id=tenant_id, message_id=message_id))
            except IntegrityError:
                pass  # another worker processed the same message at the same moment

    def duplicate_count(self, tenant_id: str) -> int:
        """How many producer duplicates of this tenant's messages were dropped."""
        with self.session() as s:
            total = s.scalar(
                select(func.coalesce(func.sum(MessageRow.duplicates), 0)).where(
                    MessageRow.tenant_id == tenant_id
                )
            )
            return int(total or 0)

    def create_delivery(
        self,
        *,
        delivery_id: str,
        tenant_id: str,
        message: str,
        event_id: str | None = None,
        installed_id: str | None = None,
        message_id: str | None = None,
        entity: str | None = None,
        event_type: str | None = None,
        entity_id: str | None = None,
        status: str = DeliveryStatus.PENDING,
        status_message: str = "",
        error_class: str | None = None,
    ) -> bool:
        """Create a delivery row; ``False`` if one with this id exists (idempotent)."""
        with self.session() as s:
            if s.get(DeliveryRow, delivery_id) is not None:
                return False
            try:
                with s.begin_nested():
                    s.add(
                        DeliveryRow(
                            id=delivery_id,
                            tenant_id=tenant_id,
                            event_id=event_id,
                            installed_id=installed_id,
                            message_id=message_id,
                            entity=entity,
                            event_type=event_type,
                            entity_id=entity_id,
                            status=status,
                            status_message=status_message,
                            error_class=error_class,
                            message=message,
                            processed_time=utcnow() if status in DeliveryStatus.TERMINAL else None,
                        )
                    )
            except IntegrityError:
                return False
            return True

    def get_delivery(self, delivery_id: str, tenant_id: str | None = None) -> Delivery | None:
        """A delivery by id (restricted to ``tenant_id`` when given)."""
        with self.session() as s:
            row = _owned(s, DeliveryRow, delivery_id, tenant_id)
            return _delivery(row) if row is not None else None

    def record_attempt(
        self,
        delivery_id: str,
        *,
        started_at: datetime,
        duration_ms: float,
        outcome: str,
        status: str,
        status_message: str,
        http_status: int | None,
        error_class: str | None,
        request_url: str | None,
        req_payload: str | None,
        res_payload: str | None,
        warnings: Sequence[str],
        captured: dict[str, str] | None = None,
        next_attempt_at: datetime | None = None,
    ) -> int:
        """Append an attempt and update the delivery's status; returns the attempt number."""
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id, with_for_update=True)
            if row is None:
                raise LookupError(delivery_id)
            row.attempts += 1
            excerpt = (res_payload or "")[:2048]
            s.add(
                AttemptRow(
                    delivery_id=delivery_id,
                    number=row.attempts,
                    started_at=started_at,
                    duration_ms=duration_ms,
                    outcome=outcome,
                    http_status=http_status,
                    error_class=error_class,
                    reason=status_message,
                    response_excerpt=excerpt,
                )
            )
            row.status = status
            row.status_message = status_message
            row.http_status = http_status
            row.error_class = error_class
            row.request_url = request_url
            row.req_payload = req_payload
            row.res_payload = excerpt
            row.warnings = json.dumps(list(warnings))
            if captured:
                row.captured = json.dumps(captured)
            row.processed_time = utcnow()
            row.next_attempt_at = next_attempt_at
            return row.attempts

    def fail_delivery(self, delivery_id: str, reason: str, error_class: str) -> None:
        """Mark a delivery FAILED without an attempt (its event was deleted, say)."""
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id)
            if row is not None:
                row.status = DeliveryStatus.FAILED
                row.status_message = reason
                row.error_class = error_class
                row.processed_time = utcnow()
                row.next_attempt_at = None

    def defer(self, delivery_id: str, until: datetime, reason: str) -> None:
        """Note that a delivery waits (an open circuit breaker) without spending an attempt."""
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id)
            if row is not None and row.status not in DeliveryStatus.TERMINAL:
                row.status_message = reason
                row.next_attempt_at = until

    def reset_for_replay(self, delivery_id: str) -> Delivery | None:
        """Put a delivery back to PENDING for a replay; its attempt history is kept."""
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id)
            if row is None:
                return None
            row.status = DeliveryStatus.PENDING
            row.status_message = "replay requested"
            row.attempts_base = row.attempts
            row.next_attempt_at = None
            s.flush()
            return _delivery(row)

    def pending_deliveries(self, tenant_id: str, message_id: str) -> list[Delivery]:
        """Deliveries of one message that have not been attempted yet."""
        with self.session() as s:
            rows = s.scalars(
                select(DeliveryRow).where(
                    DeliveryRow.tenant_id == tenant_id,
                    DeliveryRow.message_id == message_id,
                    DeliveryRow.status == DeliveryStatus.PENDING,
                )
            )
            return [_delivery(r) for r in rows]

    def list_deliveries(
        self,
        tenant_id: str,
        *,
        event_id: str | None = None,
        status: str | None = None,
        message_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[Delivery], int]:
        """A page of the tenant's activity log, newest first, and the total count."""
        conds = [DeliveryRow.tenant_id == tenant_id]
        if event_id:
            conds.append(DeliveryRow.event_id == event_id)
        if status:
            conds.append(DeliveryRow.status == status)
        if message_id:
            conds.append(DeliveryRow.message_id == message_id)
        if since:
            conds.append(DeliveryRow.created_at >= since)
        if until:
            conds.append(DeliveryRow.created_at <= until)
        with self.session() as s:
            total = s.scalar(select(func.count()).select_from(DeliveryRow).where(*conds)) or 0
            rows = s.scalars(
                select(DeliveryRow)
                .where(*conds)
                .order_by(DeliveryRow.created_at.desc(), DeliveryRow.id)
                .offset(offset)
                .limit(limit)
            )
            return [_delivery(r) for r in rows], int(total)

    def dead_letters(self, limit: int = 100) -> list[Delivery]:
        """Malformed queue messages kept for an operator, any tenant, newest first."""
        with self.session() as s:
            rows = s.scalars(
                select(DeliveryRow)
                .where(DeliveryRow.event_id.is_(None))
                .order_by(DeliveryRow.created_at.desc())
                .limit(limit)
            )
            return [_delivery(r) for r in rows]

    # -- captured response values ----------------------------------------------------------

    def save_captured(self, event_id: str, entity_id: str, values: dict[str, str]) -> None:
        """Keep values captured from a response for later deliveries about the same entity."""
        if not values:
            return
        for key, value in values.items():
            # Two deliveries about one entity may capture at once: insert, and on a conflict
            # update instead (portable across SQLite and PostgreSQL, unlike ON CONFLICT).
            for _ in range(3):
                try:
                    with self.session() as s:
                        row = s.get(CapturedValueRow, (event_id, entity_id, key))
                        if row is None:
                            s.add(
                                CapturedValueRow(
                                    event_id=event_id, entity_id=entity_id, key=key, value=value
                                )
                            )
                        else:
                            row.value = value
                    break
                except IntegrityError:
                    continue

    def captured_for_entity(self, event: StoredEvent, entity_id: str) -> dict[str, str]:
        """Values captured for an entity by the events of ``event``'s installed integration.

        A CREATE event captures the remote ticket's id; the UPDATE event of the same
        integration then addresses that ticket. The event's own captures win over its
        siblings', and newer over older.
        """
        with self.session() as s:
            rows = s.execute(
                select(CapturedValueRow.key, CapturedValueRow.value, CapturedValueRow.event_id)
                .join(IntegrationEventRow, IntegrationEventRow.id == CapturedValueRow.event_id)
                .where(
                    IntegrationEventRow.installed_id == event.installed_id,
                    CapturedValueRow.entity_id == entity_id,
                )
                .order_by(CapturedValueRow.updated_at)
            ).all()
        values = {key: value for key, value, owner in rows if owner != event.id}
        values.update({key: value for key, value, owner in rows if owner == event.id})
        return values
