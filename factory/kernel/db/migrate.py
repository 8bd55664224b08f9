"""Alembic migrations, driven from code so no alembic.ini has to sit beside the database.

Alembic is imported only to migrate: every CLI command checks that the schema is at the head
revision before it runs, and loading Alembic (with all its dialects) for that check would cost
most of a quick command's start-up. The check reads the version table with one query and finds
the head by reading the ``revision``/``down_revision`` lines of the migration scripts (a test
holds it equal to Alembic's own answer).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    from sqlalchemy import inspect, text  # here: head_revision serves readers without SQLAlchemy

    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(rows) > 1:
        raise RuntimeError(f"the database is at several revisions at once: {', '.join(sorted(rows))}")
    return rows[0] if rows else None


def head_revision(url: str | None = None) -> str | None:
    """The newest revision of the migration scripts: the one no other script names as its parent.

    ``url`` is accepted for the older signature; the scripts do not depend on the database.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = _revision_lines(path)
        if "revision" in found:
            revisions.add(str(found["revision"]))
            down = found.get("down_revision")
            parents.update([down] if isinstance(down, str) else list(down or ()))
    heads = sorted(revisions - parents)
    if len(heads) > 1:
        raise RuntimeError(f"the migration scripts have several heads: {', '.join(heads)}")
    return heads[0] if heads else None


_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*(?:#.*)?$", re.MULTILINE)


def _revision_lines(path: Path) -> dict[str, object]:
    """``revision`` and ``down_revision`` as a script assigns them at module level (literals only).

    A line match rather than a parse of the whole script: parsing ten scripts would cost a quick
    command a noticeable share of its start-up.
    """
    found: dict[str, object] = {}
    for name, value in _ASSIGNMENT.findall(path.read_text(encoding="utf-8")):
        found.setdefault(name, ast.literal_eval(value))
    return found
