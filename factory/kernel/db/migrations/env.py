"""Alembic environment: runs migrations against the URL given by factory.kernel.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

# Every area's tables, so SQLModel.metadata knows them all (migrations are the only reader).
import factory.custody.models
import factory.identity.models
import factory.intake.models
import factory.kernel.models.certificate
import factory.kernel.models.custody_entry
import factory.kernel.models.device
import factory.kernel.models.ledger_tree
import factory.kernel.models.parties
import factory.line.models
import factory.sanitisation.models  # noqa: F401
from factory.kernel.db.engine import make_engine

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
