"""The engine, the session factory and the dialect-specific upsert every module shares."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Table, create_engine, event, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from integrations.crypto import SecretBox
from integrations.tables import (
    CONFIG_VERSION_ROW,
    Base,
    ConfigVersionRow,
    DeliveryRow,
    InstalledIntegrationRow,
    IntegrationEventRow,
)

_T = TypeVar("_T")

#: An ``INSERT`` that can say ``ON CONFLICT``: the two dialects Herald supports spell it alike.
Upsert = sqlite.Insert | postgresql.Insert


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so API and workers can share it.

    ``pool_size`` is how many connections the threads of one process keep open: size it to
    the threads that use the store at once. A burst may open up to ``max(10, pool_size)``
    more for a moment (SQLAlchemy's default headroom) instead of waiting.
    """
    overflow = max(10, pool_size)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver Herald installs; plain postgresql:// would ask for psycopg2.
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        # A SQLite "connection" is a file handle in this process: it cannot go stale the way a
        # server connection does, so a pre-ping would only add a `SELECT 1` per checkout.
        engine = create_engine(url, pool_size=pool_size, max_overflow=overflow)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=overflow)
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


def unavailable(exc: BaseException, database_url: str) -> str | None:
    """A one-line reason if ``exc`` says the database cannot be reached, else ``None``.

    A database that is down is an outage, not a bug: the caller parks its work and says so in
    one line (the URL without its password, and the driver's first line), not a traceback.
    """
    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    where = make_url(database_url).render_as_string(hide_password=True)
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"database {where} unavailable: {first[0] if first else type(exc).__name__}"


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class (Core statements skip the ORM's per-row work)."""
    return cast(Table, model.__table__)


def upsert(session: Session, model: type[Base]) -> Upsert:
    """``INSERT INTO`` the model's table in the session's dialect, for ``on_conflict_do_...``."""
    name = session.get_bind().dialect.name
    table = table_of(model)
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"Herald supports SQLite and PostgreSQL, not {name}")


class StoreBase:
    """The engine, sessions and secret box that every part of the store shares."""

    def __init__(self, database_url: str, secret_key: str | None, *, pool_size: int = 5) -> None:
        # No migration here: every pool child opens a Store, and schema changes are a release
        # step (`herald db upgrade`, or `herald api` / `herald dev` on start), not a race of
        # every process at start-up.
        self.engine = make_engine(database_url, pool_size=pool_size)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._box = SecretBox(secret_key)

    def migrate(self) -> None:
        """Bring the database to the newest schema revision (idempotent)."""
        # Imported here: Alembic costs every process that loads it about 16 MB, and worker
        # processes never migrate.
        from integrations.migrate import migrate

        migrate(self.engine)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def ping(self) -> None:
        """Raise if the database does not answer a ``SELECT 1``."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self._sessions() as s, s.begin():
            yield s

    def config_version(self) -> int:
        """A counter bumped by every write that changes what matching or delivery sees.

        Workers poll it (a primary-key read) to know when their cached events are stale.
        """
        with self.session() as s:
            version = s.scalar(
                select(ConfigVersionRow.version).where(ConfigVersionRow.id == CONFIG_VERSION_ROW)
            )
            return int(version or 0)


def bump_config_version(session: Session) -> None:
    """Bump the configuration version inside ``session``'s transaction, with the change."""
    session.execute(
        update(ConfigVersionRow)
        .where(ConfigVersionRow.id == CONFIG_VERSION_ROW)
        .values(version=ConfigVersionRow.version + 1)
    )


_Owned = TypeVar("_Owned", InstalledIntegrationRow, IntegrationEventRow, DeliveryRow)


def owned(s: Session, model: type[_Owned], key: str, tenant_id: str | None) -> _Owned | None:
    """The row ``key`` of ``model`` if it exists and belongs to ``tenant_id`` (any if None).

    Another tenant's row is reported exactly like a missing one, so ids cannot be probed.
    """
    row = s.get(model, key)
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        return None
    return row


def chunks(items: Sequence[_T], size: int = 500) -> Iterator[Sequence[_T]]:
    """``items`` in slices of ``size``: bound parameters per statement stay well under the
    drivers' limits however large a batch is."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
