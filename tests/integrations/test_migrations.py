"""Schema migrations: the revisions build exactly the models' schema, on SQLite and
PostgreSQL; older databases are adopted; concurrent starters apply each revision once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import inspect

from api.cli import main
from integrations.config import get_settings
from integrations.migrate import alembic_config, current_revision, head_revision, migrate
from integrations.store import Store, make_engine
from integrations.tables import Base, TenantRow


def _drift(url: str) -> list[object]:
    """What differs between the migrated database at ``url`` and the models."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _sqlite(tmp_path: Path, name: str = "herald.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def test_migrations_build_the_models_schema_on_sqlite(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    engine = make_engine(url)
    try:
        migrate(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    assert _drift(url) == []


def test_migrations_build_the_models_schema_on_postgresql(empty_postgres_url: str) -> None:
    engine = make_engine(empty_postgres_url)
    try:
        migrate(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    assert _drift(empty_postgres_url) == []


def test_downgrade_to_nothing_and_back(tmp_path: Path) -> None:
    engine = make_engine(_sqlite(tmp_path))
    try:
        migrate(engine)
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        migrate(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_a_database_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    """Tables made by ``create_all`` (Herald before migrations) and their rows are kept: the
    database is stamped with the baseline and upgraded from there."""
    url = _sqlite(tmp_path)
    key = Fernet.generate_key().decode()
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    with engine.begin() as connection:  # a tenant created by the old code
        connection.exec_driver_sql(
            "INSERT INTO tenants (client_id, secret_hash, created_at) "
            "VALUES ('old', 'x', '2026-01-01 00:00:00')"
        )
    store = Store(url, key)
    try:
        assert current_revision(store.engine) == head_revision()
        with store.session() as session:
            assert session.get(TenantRow, "old") is not None
        assert store.create_tenant("new")  # and the adopted schema takes new rows
    finally:
        store.close()


def test_concurrent_starters_migrate_once(tmp_path: Path) -> None:
    """Eight processes' worth of stores opening one fresh SQLite file at once all start."""
    url = _sqlite(tmp_path)
    key = Fernet.generate_key().decode()
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        try:
            barrier.wait(timeout=10)
            Store(url, key).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    engine = make_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_herald_db_reports_and_upgrades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HERALD_DATABASE_URL", _sqlite(tmp_path))
    get_settings.cache_clear()  # settings are read once per process
    try:
        assert main(["db", "current"]) == 0
        current = json.loads(capsys.readouterr().out)
        assert main(["db", "upgrade"]) == 0
        upgraded = json.loads(capsys.readouterr().out)
    finally:
        get_settings.cache_clear()
    assert current == {"current": None, "head": head_revision(), "upToDate": False}
    assert upgraded == {"current": head_revision(), "head": head_revision(), "upToDate": True}
