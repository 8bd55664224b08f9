"""slot.reboot_until, slot.link_down_at: an expected reboot's window on a switch-port slot

Revision ID: 0017
Revises: 0016

A step that reboots a device opens the window; a link drop inside it keeps the slot and its job,
and a device not back when it closes fails the job with that reason (factory/line/reboot_grace.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("slot", sa.Column("reboot_until", sa.Float(), nullable=True))
    op.add_column("slot", sa.Column("link_down_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slot") as batch:
        batch.drop_column("link_down_at")
        batch.drop_column("reboot_until")
