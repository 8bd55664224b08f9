"""Per-site custody logs: what names a log, where it starts, and the lock that guards its head.

Several sites may share one database; each appends to a log of its own, named after the site
(``FACTORY_SITE``, ``Settings.site_name``). A log has its own chain (from a genesis derived from
its name, ``offline_verify.genesis_hash``), its own Merkle tree and its own signed heads, signed
with its site's key. Each log's head is guarded by its own lock: on PostgreSQL a transaction-scoped
advisory lock whose key is derived from the log's name, so a site never queues behind another
site's append (the global ``seq`` comes from a database sequence, which never blocks). On SQLite
``BEGIN IMMEDIATE`` serialises every writer anyway (one process, one site).
"""

from __future__ import annotations

import functools
import hashlib
import os

from sqlalchemy import Connection, text
from sqlmodel import Session

from imaging.offline_verify import LEGACY_GENESIS, genesis_hash

__all__ = ["LEGACY_GENESIS", "configured_log", "first_link", "genesis_hash", "lock_log", "log_names"]

# The first of the two advisory-lock keys (PostgreSQL's two-integer form); the second is the log's.
LEDGER_LOCK_CLASS = 0x44464C47  # "DFLG"
_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s, %s)"
DEFAULT_SITE = "device-factory"  # Settings.site_name when FACTORY_SITE is unset (kernel/config.py)


def configured_log() -> str:
    """The log this process appends to: the configured site's (``FACTORY_SITE``, as ``load_settings``)."""
    return os.environ.get("FACTORY_SITE", DEFAULT_SITE)


def first_link(log: str, version: int) -> str:
    """What a log's first entry links to: its genesis, or (hash versions 1 and 2, written before
    per-site logs) the one genesis there was; the unique ``prev_hash`` lets only one log have it."""
    return LEGACY_GENESIS if version < 3 else genesis_hash(log)


@functools.cache
def log_lock_key(log: str) -> int:
    """A signed 32-bit key derived from the log's name (a collision only makes two logs share a lock)."""
    return int.from_bytes(hashlib.sha256(log.encode("utf-8")).digest()[:4], "big", signed=True)


def lock_log(session: Session, log: str) -> None:
    """Hold ``log``'s head until the transaction ends (PostgreSQL; SQLite's writer lock covers it).

    A log this transaction already locked is not locked again: a second append in one transaction
    (a sanitise's end with the next step's start) would spend a round trip under the lock, which
    every other writer to the log waits for, on a lock it holds. Recorded per innermost transaction,
    as ``lifecycle.transition``'s device locks: a lock first taken in a savepoint is taken again
    after it, never assumed."""
    if session.get_bind().dialect.name != "postgresql":
        return
    held = _held_logs(session)
    if log in held:
        return
    # The driver's SQL as is: taken for every append, it needs no compiling, caching or ORM layer.
    session.connection().exec_driver_sql(_LOCK_SQL, (LEDGER_LOCK_CLASS, log_lock_key(log)))
    held.add(log)


def _held_logs(session: Session) -> set[str]:
    """The logs locked in the session's innermost transaction."""
    session.connection()  # begins the transaction if nothing has yet: its identity is the key
    transaction = session.get_nested_transaction() or session.get_transaction()
    mark = session.info.get(_HELD)
    if mark is None or mark[0] is not transaction:
        mark = session.info[_HELD] = (transaction, set())
    return mark[1]  # type: ignore[no-any-return]


_HELD = "factory.locked_logs"


def log_names(conn: Connection | Session) -> list[str]:
    """Every log that holds an entry or a signed head, by name."""
    rows = conn.execute(text("SELECT log FROM custody_entry GROUP BY log UNION SELECT log FROM ledger_head"))
    return sorted({str(r[0]) for r in rows})
