"""vehicle_build: a vehicle tablet earmarked, before its build, for the vehicle it will be fitted in

Revision ID: 0018
Revises: 0017

The line provisions a new vehicle tablet with the fleet number of the vehicle it is earmarked for
(factory/custody/vehicle_builds.py): one earmark per tablet, changed or removed until allocation.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vehicle_build",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"]),
        sa.ForeignKeyConstraint(["vehicle_id"], ["vehicle.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id"),
    )
    op.create_index("ix_vehicle_build_vehicle_id", "vehicle_build", ["vehicle_id"])


def downgrade() -> None:
    op.drop_index("ix_vehicle_build_vehicle_id", table_name="vehicle_build")
    op.drop_table("vehicle_build")
