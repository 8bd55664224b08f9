"""MAC addresses: recorded with a device's service endpoint, and seen in switch-port slots

Revision ID: 0008
Revises: 0007

- service_endpoint.mac (indexed): how a laptop on a bench switch port is identified; not unique,
  because a MAC can be cloned or sit on a USB adapter that moves between laptops (two devices
  with one MAC are treated as unknown, never guessed).
- slot.attached_mac: the MAC occupying a switch-port slot, as the switch reported it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("service_endpoint", sa.Column("mac", sa.String(17), nullable=True))
    op.create_index("ix_service_endpoint_mac", "service_endpoint", ["mac"])
    op.add_column("slot", sa.Column("attached_mac", sa.String(17), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slot") as batch:
        batch.drop_column("attached_mac")
    op.drop_index("ix_service_endpoint_mac", table_name="service_endpoint")
    with op.batch_alter_table("service_endpoint") as batch:
        batch.drop_column("mac")
