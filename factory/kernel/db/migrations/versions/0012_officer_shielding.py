"""officer shielding eligibility: courier dispatch is only for officers formally shielding

Revision ID: 0012
Revises: 0011

The reference of the officer's formal shielding decision, who recorded it and when; NULL for
officers not recorded as shielding (existing officers), whose devices cannot go by courier.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_COLUMNS = (("shielding_reference", 64), ("shielding_recorded_by", 128), ("shielding_recorded_at", 32))


def upgrade() -> None:
    for name, length in _COLUMNS:
        op.add_column("officer", sa.Column(name, sa.String(length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("officer") as batch:
        for name, _length in reversed(_COLUMNS):
            batch.drop_column(name)
