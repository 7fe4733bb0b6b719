"""Schema migrations: the revisions build exactly the models' schema, on SQLite and
PostgreSQL; older databases are adopted; concurrent starters apply each revision once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import inspect

from api.cli import main
from integrations.config import Settings, get_settings
from integrations.migrate import (
    BASELINE,
    MIGRATIONS,
    VERSION_TABLE,
    alembic_config,
    current_revision,
    head_revision,
    migrate,
)
from integrations.store import Store, make_engine
from integrations.tables import Base, TenantRow
from tests.support.processes import ROOT, herald_env, wait_for
from worker.redis_server import free_port


def _drift(url: str) -> list[object]:
    """What differs between the migrated database at ``url`` and the models."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            opts = {"compare_type": True, "version_table": VERSION_TABLE}
            context = MigrationContext.configure(connection, opts=opts)
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
        assert set(inspect(engine).get_table_names()) == {VERSION_TABLE}
        migrate(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_a_database_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    """Tables made by ``create_all`` (Herald before migrations: the baseline's schema) and
    their rows are kept: the database is stamped with the baseline and upgraded from there."""
    url = _sqlite(tmp_path)
    key = Fernet.generate_key().decode()
    engine = make_engine(url)
    try:
        with engine.begin() as connection:  # the baseline's tables, without a version table
            command.upgrade(alembic_config(connection), BASELINE)
            connection.exec_driver_sql(f"DROP TABLE {VERSION_TABLE}")
            connection.exec_driver_sql(  # a tenant created by the old code
                "INSERT INTO tenants (client_id, secret_hash, created_at) "
                "VALUES ('old', 'x', '2026-01-01 00:00:00')"
            )
        assert current_revision(engine) is None
    finally:
        engine.dispose()
    store = Store(url, key)
    try:
        store.migrate()
        assert current_revision(store.engine) == head_revision()
        with store.session() as session:
            assert session.get(TenantRow, "old") is not None
        assert store.create_tenant("new")  # and the adopted schema takes new rows
    finally:
        store.close()
    assert _drift(url) == []


def test_opening_a_store_does_not_migrate(tmp_path: Path) -> None:
    """Every worker pool child opens a store: the schema is a release step, not theirs."""
    store = Store(_sqlite(tmp_path), Fernet.generate_key().decode())
    try:
        assert current_revision(store.engine) is None
        assert inspect(store.engine).get_table_names() == []
    finally:
        store.close()


def test_concurrent_starters_migrate_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight processes' worth of stores opening one fresh SQLite file at once all start, and
    the lock serialises them: none has to fall back on retrying after a clash."""
    url = _sqlite(tmp_path)
    key = Fernet.generate_key().decode()
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)
    retries: list[float] = []
    monkeypatch.setattr("integrations.migrate.time.sleep", retries.append)

    def start() -> None:
        try:
            barrier.wait(timeout=10)
            store = Store(url, key)
            try:
                store.migrate()
            finally:
                store.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert retries == []
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


# -- revisions to come: a scratch copy of the migrations with one more revision ------------

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "scratch"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    pass
"""


def _with_revision(tmp_path: Path, body: str) -> Path:
    """A copy of the migrations directory plus one more revision (``scratch``, after head)
    whose upgrade runs ``body``."""
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    indented = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    text = REVISION.format(body=indented, head=head_revision())
    (scripts / "versions" / "9999_scratch.py").write_text(text)
    return scripts


def _fill(url: str) -> None:
    """One delivery with two attempts (children that cascade on delete)."""
    engine = make_engine(url)
    try:
        with engine.begin() as c:
            c.exec_driver_sql(
                "INSERT INTO deliveries (id, tenant_id, status, status_message, attempts,"
                " attempts_base, warnings, captured, message, created_at) VALUES"
                " ('D1', 't', 'FAILED', '', 2, 0, '[]', '{}', '{}', '2026-01-01 00:00:00')"
            )
            for n in (1, 2):
                c.exec_driver_sql(
                    "INSERT INTO attempts (delivery_id, number, started_at, duration_ms,"
                    " outcome, reason, response_excerpt) VALUES"
                    f" ('D1', {n}, '2026-01-01 00:00:00', 1.0, 'retryable', '', '')"
                )
    finally:
        engine.dispose()


def _count(url: str, table: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return int(c.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())
    finally:
        engine.dispose()


def test_a_batch_migration_on_sqlite_keeps_child_rows(tmp_path: Path) -> None:
    """SQLite rebuilds a table to alter it (copy, drop, rename): with foreign keys enforced
    the DROP would cascade and delete every attempt. Migrations run with them off."""
    url = _sqlite(tmp_path)
    engine = make_engine(url)
    try:
        migrate(engine)
        _fill(url)
        scripts = _with_revision(
            tmp_path,
            """
            with op.batch_alter_table("deliveries", recreate="always") as batch:
                batch.add_column(sa.Column("note", sa.Text(), nullable=True))
            """,
        )
        migrate(engine, script_location=scripts)
        assert current_revision(engine) == "scratch"
    finally:
        engine.dispose()
    assert _count(url, "deliveries") == 1
    assert _count(url, "attempts") == 2


def test_a_failing_revision_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    """The upgrade is one transaction, on SQLite too: no half-applied revision remains to
    block every later start."""
    url = _sqlite(tmp_path)
    engine = make_engine(url)
    try:
        migrate(engine)
        scripts = _with_revision(
            tmp_path,
            """
            op.create_table("half_done", sa.Column("id", sa.Integer(), primary_key=True))
            op.add_column("tenants", sa.Column("note", sa.Text(), nullable=True))
            raise RuntimeError("the revision fails halfway")
            """,
        )
        with pytest.raises(RuntimeError, match="fails halfway"):
            migrate(engine, script_location=scripts)
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        columns = {c["name"] for c in inspect(engine).get_columns("tenants")}
    finally:
        engine.dispose()
    assert "half_done" not in tables and "note" not in columns


def test_herald_api_migrates_on_start(settings: Settings) -> None:
    """``herald api`` brings the database to head before it serves (the Procfile's ``release``
    step does it too); the workers it serves alongside never migrate."""
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=herald_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def serving() -> bool:
        assert api.poll() is None, "herald api exited"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(serving, timeout=30, what="herald api to answer")
        engine = make_engine(settings.database_url)
        try:
            assert current_revision(engine) == head_revision()
        finally:
            engine.dispose()
    finally:
        api.terminate()
        api.wait(timeout=20)


def test_the_procfile_releases_by_upgrading_the_database() -> None:
    lines = (ROOT / "Procfile").read_text().splitlines()
    assert "release: herald db upgrade" in lines
