"""Alembic environment: runs migrations against the URL given by factory.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import factory.models  # noqa: F401  (registers every table on SQLModel.metadata)
from factory.db.engine import make_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
