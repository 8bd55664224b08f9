"""line_agent.notices: an agent's latest board notices, for boards served by another process

Revision ID: 0009
Revises: 0008

Written by the agent's heartbeat when its notices change (unmapped ports, failing switches, bad
events), so ``factory serve`` shows what ``factory line run`` on a bench host noticed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("line_agent", sa.Column("notices", sa.Text(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("line_agent") as batch:
        batch.drop_column("notices")
