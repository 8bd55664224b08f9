"""Failed sign-ins and acceptance PINs: growing delays per account and per address, then a lockout.

Each counted thing has a key, ``<kind>:<subject>`` (an account name, an officer's staff number or
a client address), with a row in ``auth_throttle``: the database, so every API process counts the
same failures. After ``free`` failures each further one blocks the key for a delay that doubles
(1 s, 2 s, 4 s ... at most 5 minutes); at ``lock_at`` failures the key is locked until an admin
unlocks it (``factory users unlock``, the API or the admin page). A blocked or locked key is
refused before any password or PIN is checked, so a correct guess after the limit gets nowhere.

Accounts start over after a success; addresses (a shared bench) do not, but a key idle for its
policy's ``window`` and not locked starts over, and such rows are pruned.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from factory.identity import audit
from factory.identity.errors import Throttled
from factory.identity.models import AuthThrottle
from factory.kernel import limits
from factory.kernel.clock import format_utc, parse_utc


class Kind(StrEnum):
    LOGIN_ACCOUNT = "login-account"
    LOGIN_ADDRESS = "login-address"
    PIN_OFFICER = "pin-officer"
    PIN_ADDRESS = "pin-address"


@dataclass(frozen=True)
class Policy:
    free: int  # failures before any delay
    lock_at: int  # failures that lock the key until an admin unlocks it
    window: timedelta  # a key idle this long (and not locked) starts over
    first_delay: float = 1.0  # seconds; doubles with each further failure
    max_delay: float = 300.0

    def delay(self, failures: int) -> float:
        """Seconds the key is refused after its ``failures``-th failure."""
        if failures <= self.free:
            return 0.0
        return min(self.first_delay * 2 ** min(failures - self.free - 1, 30), self.max_delay)


ACCOUNT = Policy(free=3, lock_at=10, window=timedelta(hours=24))
ADDRESS = Policy(free=10, lock_at=50, window=timedelta(hours=1))  # a bench's users share one address
POLICIES = {
    Kind.LOGIN_ACCOUNT: ACCOUNT,
    Kind.PIN_OFFICER: ACCOUNT,
    Kind.LOGIN_ADDRESS: ADDRESS,
    Kind.PIN_ADDRESS: ADDRESS,
}
_SUBJECT_MAX = limits.LOCK_SUBJECT


def key(kind: Kind, subject: str) -> str:
    return f"{kind.value}:{(subject or '').strip().lower()[:_SUBJECT_MAX]}"


def policy_of(row_key: str) -> Policy:
    return POLICIES[Kind(row_key.split(":", 1)[0])]


def _ensure(session: Session, keys: Iterable[str]) -> None:
    """Rows for ``keys`` exist (concurrent first failures on PostgreSQL do not collide)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    for k in keys:
        session.exec(insert(AuthThrottle).values(key=k, failures=0).on_conflict_do_nothing(index_elements=["key"]))  # type: ignore[call-overload]


def _rows(session: Session, keys: list[str], lock: bool) -> list[AuthThrottle]:
    query = (
        select(AuthThrottle)
        .where(col(AuthThrottle.key).in_(keys))
        .order_by(col(AuthThrottle.key))
        .execution_options(populate_existing=True)
    )
    if lock:
        query = query.with_for_update()  # PostgreSQL: one attempt per key at a time; SQLite: BEGIN IMMEDIATE
    return list(session.exec(query).all())


def refusal(rows: Iterable[AuthThrottle], now: datetime, what: str) -> Throttled | None:
    """Why an attempt is refused now (locked, or still within its delay), or None."""
    stamp = format_utc(now)
    for row in rows:
        if row.locked_at is not None:
            return Throttled(f"too many failed {what}: locked until an admin unlocks it", None)
    waits = [parse_utc(r.blocked_until) - now for r in rows if r.blocked_until and r.blocked_until > stamp]
    if waits:
        seconds = max(1, math.ceil(max(waits).total_seconds()))
        return Throttled(f"too many failed {what}: try again in {seconds} s", seconds)
    return None


def check(session: Session, keys: list[str], now: datetime, what: str) -> None:
    """:raises Throttled: a key is locked or within its delay (reads only)."""
    problem = refusal(_rows(session, keys, lock=False), now, what)
    if problem is not None:
        raise problem


def reserve(session: Session, keys: list[str], now: datetime, what: str) -> None:
    """Refuse a blocked attempt, else count it as a failure *before* it is checked, so parallel
    guesses cannot all slip through; a success gives the count back (``settle``).

    :raises Throttled: a key is locked or within its delay.
    """
    _ensure(session, keys)
    rows = _rows(session, keys, lock=True)
    problem = refusal(rows, now, what)
    if problem is not None:
        raise problem
    _count(session, rows, now)


def fail(session: Session, keys: list[str], now: datetime) -> None:
    """Count one failure against every key (for checks that cannot reserve first)."""
    _ensure(session, keys)
    _count(session, _rows(session, keys, lock=True), now)


def _count(session: Session, rows: list[AuthThrottle], now: datetime) -> None:
    stamp = format_utc(now)
    for row in rows:
        policy = policy_of(row.key)
        if row.locked_at is None and row.last_failure_at and row.last_failure_at <= format_utc(now - policy.window):
            row.failures = 0
        row.failures += 1
        row.last_failure_at = stamp
        wait = policy.delay(row.failures)
        row.blocked_until = format_utc(now + timedelta(seconds=wait)) if wait else None
        if row.failures >= policy.lock_at and row.locked_at is None:
            row.locked_at = stamp
            audit.record(session, audit.SYSTEM, "lock", row.key, f"{row.failures} failures in a row")
        session.add(row)
    session.flush()


def settle(session: Session, account: str, addresses: list[str]) -> None:
    """A success: the account starts over; each address gets back the failure ``reserve`` counted."""
    session.exec(delete(AuthThrottle).where(col(AuthThrottle.key) == account))  # type: ignore[call-overload]
    refund(session, addresses)


def refund(session: Session, keys: list[str]) -> None:
    """Give back the failure ``reserve`` counted (the attempt turned out not to be a guess)."""
    for row in _rows(session, keys, lock=True):
        row.failures = max(row.failures - 1, 0)
        policy = policy_of(row.key)
        if row.failures <= policy.free:
            row.blocked_until = None
        if row.failures < policy.lock_at:
            row.locked_at = None  # the lock came from this attempt's own reservation
        session.add(row)
    session.flush()


def forget(session: Session, account: str) -> None:
    """A success that was not reserved (a PIN): the account starts over."""
    session.exec(delete(AuthThrottle).where(col(AuthThrottle.key) == account))  # type: ignore[call-overload]


def lift(session: Session, row_key: str, actor: str) -> bool:
    """An admin unlocks a key (its count starts over); False if nothing was counted against it."""
    row = session.exec(select(AuthThrottle).where(AuthThrottle.key == row_key)).first()
    if row is None:
        return False
    session.delete(row)
    audit.record(session, actor, "unlock", row_key, f"after {row.failures} failures")
    session.flush()
    return True


def prune(session: Session, now: datetime) -> None:
    """Drop counts nobody has added to for longer than any window (locked keys stay)."""
    cutoff = format_utc(now - max(p.window for p in POLICIES.values()))
    session.exec(
        delete(AuthThrottle).where(col(AuthThrottle.locked_at).is_(None), col(AuthThrottle.last_failure_at) < cutoff)  # type: ignore[call-overload]
    )
