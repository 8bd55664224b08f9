"""Migration 0018 (vehicle_build): it creates what the model declares (no drift between the
migrations and the tables' metadata), and it downgrades and upgrades again on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import factory.custody.models  # noqa: F401 (the custody tables into the metadata)
from factory.kernel.context import AppContext
from factory.kernel.db.migrate import alembic_config, current_revision


def _drift(ctx: AppContext, table: str) -> list[object]:
    """What autogenerate would change for ``table``: the migrated schema against the model."""
    with ctx.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    return [d for d in diffs if table in repr(d)]


def test_vehicle_build_matches_its_model_and_downgrades_and_upgrades(ctx: AppContext) -> None:
    assert current_revision(ctx.engine) >= "0018"
    assert _drift(ctx, "vehicle_build") == []
    ctx.engine.dispose()
    config = alembic_config(ctx.settings.database_url)
    command.downgrade(config, "0017")
    assert "vehicle_build" not in sa.inspect(ctx.engine).get_table_names()
    assert current_revision(ctx.engine) == "0017"
    ctx.engine.dispose()
    command.upgrade(config, "head")
    inspector = sa.inspect(ctx.engine)
    assert "vehicle_build" in inspector.get_table_names()
    assert [u["column_names"] for u in inspector.get_unique_constraints("vehicle_build")] == [["device_id"]]
    assert _drift(ctx, "vehicle_build") == []
