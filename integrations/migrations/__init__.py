"""Alembic migrations of Herald's database (see :mod:`integrations.migrate`)."""
