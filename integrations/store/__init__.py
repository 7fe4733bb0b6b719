"""The store: tenants, API tokens, installed integrations, integration events and deliveries.

SQLAlchemy 2 over SQLite by default (``./var/herald.db``) or PostgreSQL via
``HERALD_DATABASE_URL``. Notifier secrets are sealed with :class:`~integrations.crypto.SecretBox`
before they reach a table; client secrets and API tokens are kept only as hashes.

One module per concern, sharing one engine (:class:`~integrations.store.engine.StoreBase`);
:class:`Store` is all of them together. Opening a store does not migrate the schema:
``herald db upgrade`` (and ``herald api`` / ``herald dev`` on start) do, or :meth:`Store.migrate`.
"""

from __future__ import annotations

from integrations.store.captures import CaptureStore
from integrations.store.deliveries import DeliveryStore
from integrations.store.engine import make_engine, unavailable
from integrations.store.events import EventStore
from integrations.store.messages import MessageStore
from integrations.store.ordering import OrderingStore
from integrations.store.records import (
    TERMINAL_STATUSES,
    Attempt,
    AttemptRecord,
    Delivery,
    DeliveryStatus,
    IngestBatch,
    InstalledIntegration,
    InstalledState,
    NewDelivery,
    StoredEvent,
    Unfinished,
    delivery_id_for,
    split_secrets,
)
from integrations.store.tenants import TenantStore

__all__ = [
    "TERMINAL_STATUSES",
    "Attempt",
    "AttemptRecord",
    "Delivery",
    "DeliveryStatus",
    "IngestBatch",
    "InstalledIntegration",
    "InstalledState",
    "NewDelivery",
    "Store",
    "StoredEvent",
    "Unfinished",
    "delivery_id_for",
    "make_engine",
    "split_secrets",
    "unavailable",
]


class Store(TenantStore, EventStore, DeliveryStore, MessageStore, CaptureStore, OrderingStore):
    """Herald's persistence. Thread-safe; one per process."""
