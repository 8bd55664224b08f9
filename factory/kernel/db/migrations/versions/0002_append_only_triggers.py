"""custody ledger and certificates are append-only

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from factory.kernel.db.append_only import APPEND_ONLY_TABLES, create_statements, drop_statements

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY_TABLES:
        for stmt in create_statements(dialect, table):
            op.execute(stmt)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY_TABLES:
        for stmt in drop_statements(dialect, table):
            op.execute(stmt)
