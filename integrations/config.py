"""Configuration from ``HERALD_*`` environment variables.

Every knob has an embedded default so that ``herald dev`` runs with no configuration at all.
Read once per process with :func:`get_settings`; tests build their own :class:`Settings`.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from functools import lru_cache

from integrations.redis_keys import RedisKeys

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "sqlite:///var/herald.db"

#: Default retry delays in seconds, as webhook services use: 10 s, 1 min, 5 min, 30 min, 2 h,
#: 6 h, 12 h, 24 h. ``HERALD_RETRY_SCHEDULE`` overrides it with a comma-separated list.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (10, 60, 300, 1800, 7200, 21600, 43200, 86400)


def _networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for part in raw.split(","):
        part = part.strip()
        if part:
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise ValueError(
                    f"HERALD_ALLOWED_NETWORKS: {part!r} is not a CIDR ({exc})"
                ) from None
    return tuple(nets)


def _floats(name: str, raw: str) -> tuple[float, ...]:
    try:
        values = tuple(float(p) for p in raw.split(",") if p.strip())
    except ValueError:
        raise ValueError(f"{name}: expected comma-separated seconds, got {raw!r}") from None
    if not values or any(v < 0 for v in values):
        raise ValueError(f"{name}: expected at least one non-negative number, got {raw!r}")
    return values


@dataclass(frozen=True)
class Settings:
    """Herald's runtime configuration."""

    redis_url: str = DEFAULT_REDIS_URL
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str | None = None
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    #: Prefix of every Redis key Herald owns, so several deployments can share one Redis.
    redis_prefix: str = "herald"
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    #: Largest ``Retry-After`` honoured, in seconds.
    max_retry_after: float = 3600.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    #: How long a message id is remembered to drop producer duplicates.
    dedupe_window: float = 86400.0
    #: Seconds a stream entry may stay unprocessed before it is dispatched again (its worker
    #: died, or the broker lost the task). A batch renews its entries every third of this
    #: while it runs (worker.heartbeat), so it bounds recovery, not how long a batch may take.
    ingest_claim_idle: float = 20.0
    #: Hard time limit of one delivery attempt (s); the soft limit is 30 s (or a fifth)
    #: shorter, and a delivery's lock lasts 20 s longer.
    deliver_time_limit: float = 180.0
    #: Seconds after a dispatch at which a delivery not yet picked up is dispatched again
    #: (a broker can lose a message taken by a node killed at that instant). A redundant
    #: dispatch is skipped (attempt count, lock), so a short lease costs a few extra tasks
    #: when the queue is long, and recovers a lost one quickly.
    dispatch_lease: float = 30.0
    api_token_ttl: int = 3600
    #: Seconds a reserved Celery message may stay unacknowledged before Redis hands it to
    #: another worker (see ``worker/app.py``). Must exceed the longest task.
    visibility_timeout: float = 3600.0
    #: Circuit breaker: consecutive retryable failures of an endpoint before deliveries to it
    #: wait, and the first wait (doubling up to ``breaker_max_cooldown``).
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    breaker_max_cooldown: float = 600.0
    #: An event whose every attempt failed for this long is disabled (5 days).
    disable_after: float = 5 * 86400.0
    #: Celery's broker when it is not Herald's Redis: RabbitMQ (``amqp://user:pw@host/vhost``).
    #: The stream, schedules and locks stay in Redis either way.
    broker_url: str | None = None
    #: Stream entries one ``herald.ingest_batch`` task carries (``XREADGROUP COUNT``).
    ingest_batch: int = 100
    #: Requests in flight at once per worker process, and per endpoint within it.
    #: Every first attempt of a batch is answered or cancelled within this many seconds (at
    #: most a third of ``deliver_time_limit``); the retry path takes over after it.
    batch_send_deadline: float = 60.0
    send_concurrency: int = 256
    endpoint_concurrency: int = 64
    #: Where a worker node serves its Prometheus metrics (``/metrics``); 0 turns it off.
    metrics_port: int = 9810
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def keys(self) -> RedisKeys:
        """Every Redis key of this deployment."""
        return RedisKeys(self.redis_prefix)

    @property
    def stream_key(self) -> str:
        """The Redis stream producers ``XADD`` entity changes to."""
        return self.keys.stream

    @property
    def queue(self) -> str:
        """The Celery queue of this deployment's tasks (named like the key prefix)."""
        return self.keys.queue

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from ``HERALD_*`` variables (``os.environ`` by default)."""
        e = dict(os.environ if env is None else env)
        kw: dict[str, object] = {}
        if v := e.get("HERALD_REDIS_URL"):
            kw["redis_url"] = v
        if v := e.get("HERALD_DATABASE_URL"):
            kw["database_url"] = v
        if v := e.get("HERALD_SECRET_KEY"):
            kw["secret_key"] = v
        if v := e.get("HERALD_ALLOWED_NETWORKS"):
            kw["allowed_networks"] = _networks(v)
        if v := e.get("HERALD_BROKER_URL"):
            kw["broker_url"] = v
        if v := e.get("HERALD_REDIS_PREFIX"):
            kw["redis_prefix"] = v
        if v := e.get("HERALD_RETRY_SCHEDULE"):
            kw["retry_schedule"] = _floats("HERALD_RETRY_SCHEDULE", v)
        for name, attr in (
            ("HERALD_MAX_RETRY_AFTER", "max_retry_after"),
            ("HERALD_CONNECT_TIMEOUT", "connect_timeout"),
            ("HERALD_READ_TIMEOUT", "read_timeout"),
            ("HERALD_DEDUPE_WINDOW", "dedupe_window"),
            ("HERALD_INGEST_CLAIM_IDLE", "ingest_claim_idle"),
            ("HERALD_BREAKER_COOLDOWN", "breaker_cooldown"),
            ("HERALD_BREAKER_MAX_COOLDOWN", "breaker_max_cooldown"),
            ("HERALD_DISABLE_AFTER", "disable_after"),
            ("HERALD_VISIBILITY_TIMEOUT", "visibility_timeout"),
            ("HERALD_DELIVER_TIME_LIMIT", "deliver_time_limit"),
            ("HERALD_DISPATCH_LEASE", "dispatch_lease"),
            ("HERALD_BATCH_SEND_DEADLINE", "batch_send_deadline"),
        ):
            if v := e.get(name):
                kw[attr] = _floats(name, v)[0]
        for name, attr in (
            ("HERALD_INGEST_BATCH", "ingest_batch"),
            ("HERALD_SEND_CONCURRENCY", "send_concurrency"),
            ("HERALD_ENDPOINT_CONCURRENCY", "endpoint_concurrency"),
        ):
            if v := e.get(name):
                kw[attr] = max(1, int(_floats(name, v)[0]))
        if (v := e.get("HERALD_METRICS_PORT")) is not None and v != "":
            kw["metrics_port"] = max(0, int(_floats("HERALD_METRICS_PORT", v)[0]))
        if v := e.get("HERALD_BREAKER_THRESHOLD"):
            kw["breaker_threshold"] = max(1, int(_floats("HERALD_BREAKER_THRESHOLD", v)[0]))
        return cls(**kw)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings.from_env()
