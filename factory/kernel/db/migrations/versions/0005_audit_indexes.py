"""indexes for audit search, failure lookups and device histories

Revision ID: 0005
Revises: 0006

- certificate (issued_at, id): the keyset order of certificate search, so a page is an index
  range scan at any depth and for date-range filters.
- custody_entry (occurred_at, seq) WHERE event = 'fail': failed erase outcomes without scanning
  the ledger.
- custody_entry (device_id, seq): a device's history in chain order (history, bundle export and
  the uncertified-departure replay).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
# Chained after the newest head present when this was written, so the chain stays linear.
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_certificate_issued_at_id", "certificate", ["issued_at", "id"])
    op.create_index(
        "ix_custody_entry_failures",
        "custody_entry",
        ["occurred_at", "seq"],
        postgresql_where=sa.text("event = 'fail'"),
        sqlite_where=sa.text("event = 'fail'"),
    )
    op.create_index("ix_custody_entry_device_seq", "custody_entry", ["device_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_custody_entry_device_seq", table_name="custody_entry")
    op.drop_index("ix_custody_entry_failures", table_name="custody_entry")
    op.drop_index("ix_certificate_issued_at_id", table_name="certificate")
