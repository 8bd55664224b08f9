"""custody log Merkle tree, signed tree heads, site key registry; custody entries hash their device

Revision ID: 0014
Revises: 0013

Existing entries keep ``hash_version`` 1 (their hash does not cover ``device_id``) and keep
verifying; entries appended from now on are version 2. The tree over the existing entries is
built from them on the first append or signed head (``factory/kernel/ledger/tree.py``), not here,
so the upgrade itself is quick on a large log. ``ledger_node`` and ``ledger_head`` are
append-only, as the entries are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from factory.kernel.db.append_only import create_statements, drop_statements

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_APPEND_ONLY = ("ledger_node", "ledger_head")


def upgrade() -> None:
    op.add_column("custody_entry", sa.Column("hash_version", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "ledger_node",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(128), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("signed_at", sa.String(32), nullable=False),
        sa.Column("key_fingerprint", sa.String(128), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ledger_head_tree_size", "ledger_head", ["tree_size"])
    op.create_table(
        "site_key",
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("site", sa.String(128), nullable=False),
        sa.Column("public_key_pem", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.String(32), nullable=False),
        sa.Column("valid_to", sa.String(32), nullable=True),
        sa.Column("revoked_at", sa.String(32), nullable=True),
        sa.Column("revoked_reason", sa.String(500), nullable=True),
        sa.Column("endorsed_by", sa.String(128), nullable=True),
        sa.Column("endorsement", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("fingerprint"),
    )
    op.create_index("ix_site_key_site", "site_key", ["site"])
    dialect = op.get_bind().dialect.name
    for table in _APPEND_ONLY:
        for stmt in create_statements(dialect, table):
            op.execute(stmt)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in _APPEND_ONLY:
        for stmt in drop_statements(dialect, table):
            op.execute(stmt)
    op.drop_index("ix_site_key_site", "site_key")
    op.drop_table("site_key")
    op.drop_index("ix_ledger_head_tree_size", "ledger_head")
    op.drop_table("ledger_head")
    op.drop_table("ledger_node")
    with op.batch_alter_table("custody_entry") as batch:  # SQLite copies the table: its triggers go too
        batch.drop_column("hash_version")
    # SQLite's copy lost the table's triggers; PostgreSQL's ALTER kept them: drop (if there) and
    # create again, so the downgraded table is append-only on both and an upgrade can follow.
    for stmt in (*drop_statements(dialect, "custody_entry"), *create_statements(dialect, "custody_entry")):
        op.execute(stmt)
