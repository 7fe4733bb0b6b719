"""Alembic environment: Herald runs migrations in process (:mod:`integrations.migrate`),
on the connection it passes in ``config.attributes["connection"]``."""

from __future__ import annotations

from alembic import context

from integrations.migrate import VERSION_TABLE
from integrations.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place: batch mode copies the table instead.
    render_as_batch=True,
    compare_type=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
