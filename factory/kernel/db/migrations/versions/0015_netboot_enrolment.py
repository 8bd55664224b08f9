"""network boot: one-time boot tokens and the enrolments they authorise

Revision ID: 0015
Revises: 0014

- boot_token: the SHA-256 of a token put on one network boot's kernel command line, the MAC it was
  issued to, its expiry and when it was used (once).
- enrolment: what a network-booted service environment reported (identity, disks, the host key it
  made for that boot) and the controller's decision; one per boot token.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "boot_token",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("mac", sa.String(17), nullable=False, index=True),
        sa.Column("issued_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
        sa.Column("used_at", sa.String(32), nullable=True),
    )
    op.create_table(
        "enrolment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("boot_token_id", sa.Integer(), sa.ForeignKey("boot_token.id"), nullable=False, unique=True),
        sa.Column("device_id", sa.Integer(), sa.ForeignKey("device.id"), nullable=True, index=True),
        sa.Column("mac", sa.String(17), nullable=False, index=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("dmi_serial", sa.String(128), nullable=False),
        sa.Column("vendor", sa.String(128), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("host_key_fingerprint", sa.String(128), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("received_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("enrolment")
    op.drop_table("boot_token")
