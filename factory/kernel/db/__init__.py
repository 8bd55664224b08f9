"""Database engine, sessions and migrations.

The engine's names load on first use, so a reader that needs no SQLAlchemy (factory/kernel/db/
readonly.py, behind 'factory device show') can import its siblings without paying for it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["make_engine", "session_scope"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from factory.kernel.db import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
