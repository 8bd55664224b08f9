"""How much an API process takes on at once: its admission queue and its database pool.

Each request admitted holds at most one database connection at a time (its token check, then its
unit of work), and board streams share one more, so the pool (``pool_size + max_overflow``) must
be at least ``api_concurrency`` plus a few; ``load_capacity`` refuses settings that break this.
Requests beyond ``api_concurrency`` wait in a queue of ``api_queue`` for up to
``api_queue_seconds``; beyond that, or after that wait, they get a 503 with ``Retry-After`` at
once instead of a stall or a 500. ``docs/operations.md`` explains how to size them.

    FACTORY_API_CONCURRENCY     requests handled at once (default 32, 1-1000)
    FACTORY_API_QUEUE           requests waiting their turn beyond those (default 256, 0-100000)
    FACTORY_API_QUEUE_SECONDS   longest wait in that queue before a 503 (default 10, 0-60)
    FACTORY_DB_POOL_SIZE        database connections kept open (default 10, 1-1000)
    FACTORY_DB_MAX_OVERFLOW     extra connections opened under load (default 30, 0-1000)
    FACTORY_DB_POOL_TIMEOUT     longest wait for a connection before a 503 (default 10 s, 1-60)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

SPARE_CONNECTIONS = 2  # beyond one per admitted request: the board streams' shared reader, a token check


@dataclass(frozen=True)
class Capacity:
    api_concurrency: int = 32
    api_queue: int = 256
    api_queue_seconds: float = 10.0
    db_pool_size: int = 10
    db_max_overflow: int = 30
    db_pool_timeout: float = 10.0

    def pool_args(self) -> dict[str, Any]:
        """Keyword arguments for a pooled engine (SQLAlchemy's QueuePool, on both databases)."""
        return {
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_max_overflow,
            "pool_timeout": self.db_pool_timeout,
        }


_RANGES: dict[str, tuple[str, float, float]] = {
    "api_concurrency": ("FACTORY_API_CONCURRENCY", 1, 1000),
    "api_queue": ("FACTORY_API_QUEUE", 0, 100_000),
    "api_queue_seconds": ("FACTORY_API_QUEUE_SECONDS", 0, 60),
    "db_pool_size": ("FACTORY_DB_POOL_SIZE", 1, 1000),
    "db_max_overflow": ("FACTORY_DB_MAX_OVERFLOW", 0, 1000),
    "db_pool_timeout": ("FACTORY_DB_POOL_TIMEOUT", 1, 60),
}


def load_capacity(environ: dict[str, str] | None = None) -> Capacity:
    """The capacity settings from the environment (defaults for what is unset).

    :raises ValueError: a value that is not a number, out of its range, or a pool too small for
        the requests admitted at once.
    """
    env = os.environ if environ is None else environ
    defaults = Capacity()
    values: dict[str, Any] = {}
    for attr, (name, low, high) in _RANGES.items():
        default = getattr(defaults, attr)
        values[attr] = _number(name, env.get(name, ""), type(default), low, high, default)
    capacity = Capacity(**values)
    pool = capacity.db_pool_size + capacity.db_max_overflow
    if pool < capacity.api_concurrency + SPARE_CONNECTIONS:
        raise ValueError(
            f"FACTORY_DB_POOL_SIZE + FACTORY_DB_MAX_OVERFLOW ({pool}) must be at least "
            f"FACTORY_API_CONCURRENCY + {SPARE_CONNECTIONS} ({capacity.api_concurrency + SPARE_CONNECTIONS})"
        )
    return capacity


def _number(name: str, raw: str, kind: type, low: float, high: float, default: float) -> Any:
    raw = raw.strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        whole = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name} must be {whole}, not '{raw[:20]}'") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low:g} to {high:g}, not {raw[:20]}")
    return value
