"""contingency pool (per site and kind) and its members; waste transfer note carrier and permit

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contingency_pool",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("low_stock_level", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site", "kind", name="uq_contingency_pool_site_kind"),
    )
    op.create_table(
        "pool_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("added_by", sa.String(128), nullable=False),
        sa.Column("added_at", sa.String(32), nullable=False),
        sa.Column("left_at", sa.String(32), nullable=True),
        sa.Column("left_reason", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(["pool_id"], ["contingency_pool.id"]),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pool_member_pool_id", "pool_member", ["pool_id"])
    op.create_index("ix_pool_member_device_id", "pool_member", ["device_id"])
    op.create_index("ix_pool_member_status", "pool_member", ["status"])
    with op.batch_alter_table("disposal_batch") as batch_op:
        batch_op.add_column(sa.Column("carrier_name", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("carrier_registration", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("recycler_permit", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("disposal_batch") as batch_op:
        batch_op.drop_column("recycler_permit")
        batch_op.drop_column("carrier_registration")
        batch_op.drop_column("carrier_name")
    op.drop_index("ix_pool_member_status", table_name="pool_member")
    op.drop_index("ix_pool_member_device_id", table_name="pool_member")
    op.drop_index("ix_pool_member_pool_id", table_name="pool_member")
    op.drop_table("pool_member")
    op.drop_table("contingency_pool")
