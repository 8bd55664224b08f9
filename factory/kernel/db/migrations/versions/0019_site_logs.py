"""per-site custody logs: each entry names its log and position, each log its own tree, heads and cosignatures

Revision ID: 0019
Revises: 0018

Every existing entry, tree node and head becomes the log of the configured site (``FACTORY_SITE``,
as the service reads it), at the position it had (``log_seq = seq``); those entries keep their
hash versions and keep verifying. On PostgreSQL the global ``seq`` is taken from a sequence from
now on (sites appending to their own logs never wait on each other for it). ``ledger_cosignature``
is new and append-only, like the other ledger tables.
"""

from __future__ import annotations

import os
import warnings

import sqlalchemy as sa
from alembic import op

from factory.kernel.db.append_only import create_statements, drop_statements

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def _site() -> str:
    # The same setting and default as factory.kernel.config.load_settings (site_name).
    return os.environ.get("FACTORY_SITE", "device-factory")


def _relock(dialect: str, table: str) -> None:
    """Append-only triggers dropped (if there) and created again: SQLite's table copies lose them."""
    for stmt in (*drop_statements(dialect, table), *create_statements(dialect, table)):
        op.execute(stmt)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    site = _site()
    _entries_upgrade(dialect, site)
    _nodes_upgrade(dialect, site)
    op.add_column("ledger_head", sa.Column("log", sa.String(128), nullable=False, server_default=site))
    # The heads signed so far are of format 1 (no log in their signed body); new ones name their log.
    op.add_column(
        "ledger_head", sa.Column("format", sa.String(40), nullable=False, server_default="device-factory/tree-head/1")
    )
    op.create_index("ix_ledger_head_log_size", "ledger_head", ["log", "tree_size"])
    op.create_table(
        "ledger_cosignature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("log", sa.String(128), nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("witness", sa.String(128), nullable=False),
        sa.Column("signed_at", sa.String(32), nullable=False),
        sa.Column("key_fingerprint", sa.String(128), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ledger_cosignature_log_size", "ledger_cosignature", ["log", "tree_size"])
    if dialect == "postgresql":
        op.alter_column("ledger_head", "log", server_default=None)
        op.alter_column("ledger_head", "format", server_default=None)
    for stmt in create_statements(dialect, "ledger_cosignature"):
        op.execute(stmt)


def _entries_upgrade(dialect: str, site: str) -> None:
    # Filling log_seq is an UPDATE, which the append-only triggers refuse: lifted for this step only.
    for stmt in drop_statements(dialect, "custody_entry"):
        op.execute(stmt)
    op.add_column("custody_entry", sa.Column("log", sa.String(128), nullable=False, server_default=site))
    op.add_column("custody_entry", sa.Column("log_seq", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE custody_entry SET log_seq = seq")
    op.create_index("ux_custody_entry_log_position", "custody_entry", ["log", "log_seq"], unique=True)
    if dialect == "postgresql":
        op.alter_column("custody_entry", "log", server_default=None)
        op.alter_column("custody_entry", "log_seq", server_default=None)
        _seq_from_sequence()
    _relock(dialect, "custody_entry")


def _seq_from_sequence() -> None:
    """``seq`` defaults to a sequence's next value, which continues after the largest entry."""
    bind = op.get_bind()
    name = bind.execute(sa.text("SELECT pg_get_serial_sequence('custody_entry', 'seq')")).scalar()
    if name is None:
        op.execute("CREATE SEQUENCE custody_entry_seq_seq OWNED BY custody_entry.seq")
        op.execute("ALTER TABLE custody_entry ALTER COLUMN seq SET DEFAULT nextval('custody_entry_seq_seq')")
        name = "custody_entry_seq_seq"
    # Entries were numbered by the application until now: start after the largest.
    op.execute(f"SELECT setval('{name}', coalesce((SELECT max(seq) FROM custody_entry), 0) + 1, false)")


def _nodes_upgrade(dialect: str, site: str) -> None:
    """The tree's nodes belong to a log, which joins the primary key."""
    if dialect == "postgresql":
        pk = sa.inspect(op.get_bind()).get_pk_constraint("ledger_node")["name"]
        op.add_column("ledger_node", sa.Column("log", sa.String(128), nullable=False, server_default=site))
        op.drop_constraint(pk, "ledger_node", type_="primary")
        op.create_primary_key("ledger_node_pkey", "ledger_node", ["log", "level", "idx"])
        op.alter_column("ledger_node", "log", server_default=None)
        return
    # SQLAlchemy warns that the copy's key differs from the reflected one: that is the point.
    with warnings.catch_warnings(), op.batch_alter_table("ledger_node", recreate="always") as batch:
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        batch.add_column(sa.Column("log", sa.String(128), nullable=False, server_default=site))
        batch.create_primary_key("pk_ledger_node", ["log", "level", "idx"])
    _relock(dialect, "ledger_node")


def downgrade() -> None:
    """Back to one log: only while no entry is hashed with its log (version 3), which would no longer verify."""
    dialect = op.get_bind().dialect.name
    if op.get_bind().execute(sa.text("SELECT count(*) FROM custody_entry WHERE hash_version >= 3")).scalar():
        raise RuntimeError("custody entries hash their log (version 3): a schema without logs cannot verify them")
    for stmt in drop_statements(dialect, "ledger_cosignature"):
        op.execute(stmt)
    op.drop_index("ix_ledger_cosignature_log_size", "ledger_cosignature")
    op.drop_table("ledger_cosignature")
    op.drop_index("ix_ledger_head_log_size", "ledger_head")
    with op.batch_alter_table("ledger_head") as batch:
        batch.drop_column("format")
        batch.drop_column("log")
    _relock(dialect, "ledger_head")
    pk = sa.inspect(op.get_bind()).get_pk_constraint("ledger_node")["name"]
    with (
        warnings.catch_warnings(),
        op.batch_alter_table("ledger_node", recreate="always" if dialect == "sqlite" else "auto") as batch,
    ):
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        batch.drop_constraint(pk, type_="primary")
        batch.drop_column("log")
        batch.create_primary_key("ledger_node_pkey", ["level", "idx"])
    _relock(dialect, "ledger_node")
    op.drop_index("ux_custody_entry_log_position", "custody_entry")
    with op.batch_alter_table("custody_entry") as batch:
        batch.drop_column("log_seq")
        batch.drop_column("log")
    _relock(dialect, "custody_entry")
