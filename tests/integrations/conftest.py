"""PostgreSQL for the store's tests: the machine's (trust auth, database ``test``).

CI sets ``HERALD_REQUIRE_POSTGRES=1``: there a PostgreSQL that does not answer fails the run.
Elsewhere the PostgreSQL tests are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from cryptography.fernet import Fernet

from integrations.store import Store

POSTGRES_URL = os.environ.get(
    "HERALD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _engine(url: str, **kwargs: object) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), **kwargs)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the shared PostgreSQL test database."""
    try:
        probe = _engine(POSTGRES_URL)
        with probe.connect():
            pass
        probe.dispose()
    except Exception as exc:
        if os.environ.get("HERALD_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}: {exc}")
    return POSTGRES_URL


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test, dropped afterwards."""
    name = f"herald_test_{uuid.uuid4().hex[:12]}"
    admin = _engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
        with admin.connect() as c:
            c.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on SQLite, then on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'herald.db'}"
    else:
        url = request.getfixturevalue("empty_postgres_url")
    store = Store(url, Fernet.generate_key().decode())
    try:
        store.migrate()
        yield store
    finally:
        store.close()
