"""API tokens verified a moment ago, trusted again for a few seconds (per process).

Checking a bearer token costs a pool checkout and a query: more than everything else a small
read (a certificate search by serial) costs. A token whose check *began* less than ``ttl``
seconds ago is trusted again without the query. That is a bound, not a hole: revoking a token,
disabling a user, a token reaching its expiry or changing a role takes effect in every API
process within ``ttl`` seconds (``FACTORY_TOKEN_CACHE_SECONDS``, default 2; 0 turns the cache
off). Only successful checks are kept, so an unknown, revoked, expired or disabled token is
refused by the database on every request; the role check itself still runs on every request, on the remembered role.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, text

from factory.identity.errors import InvalidToken
from factory.identity.models import User, hash_token
from factory.kernel.clock import utc_now
from factory.kernel.db.engine import read_scope

MAX_ENTRIES = 10_000  # tokens in use at once per process; beyond that, older checks are dropped

_TOKEN_LOOKUP = text(
    "SELECT u.id, u.name, u.role, u.created_at, u.disabled FROM api_token t JOIN app_user u ON u.id = t.user_id "
    "WHERE t.token_sha256 = :h AND t.revoked_at IS NULL AND t.expires_at > :now"
)


def authenticate_token_readonly(conn: Connection, token: str) -> User:
    """The per-request token check: one indexed query on a read-only connection, no ORM unit of work.

    :raises InvalidToken: unknown, revoked or expired token, or a disabled user.
    """
    row = conn.execute(_TOKEN_LOOKUP, {"h": hash_token(token), "now": utc_now()}).first()
    if row is None or row.disabled:
        raise InvalidToken("invalid or revoked API token, or expired")
    return User(id=row.id, name=row.name, role=row.role, created_at=row.created_at, disabled=row.disabled)


class VerifiedTokens:
    """SHA-256 of a token -> (user, expiry). The users handed out are shared: read them, never
    change or attach them to a session."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_ENTRIES) -> None:
        if ttl < 0:
            raise ValueError("token cache ttl must be >= 0 seconds")
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[str, tuple[User, float]] = {}
        self._lock = threading.Lock()  # writers only; a dict read is atomic

    def get(self, token: str) -> User | None:
        """The user of a token verified less than ``ttl`` seconds ago, else None (check it)."""
        if self.ttl == 0:
            return None
        hit = self._entries.get(hash_token(token))
        if hit is None or hit[1] <= self.clock():
            return None
        return hit[0]

    def check(self, engine: Engine, token: str) -> User:
        """Verify against the database and remember a success. The clock is read before the query,
        so an entry never outlives a revocation by more than ``ttl``.

        :raises InvalidToken: unknown or revoked token, or a disabled user.
        """
        started = self.clock()
        with read_scope(engine) as conn:
            user = authenticate_token_readonly(conn, token)
        if self.ttl > 0:
            self._remember(hash_token(token), user, started + self.ttl)
        return user

    def __len__(self) -> int:
        return len(self._entries)

    def _remember(self, key: str, user: User, expires: float) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                now = self.clock()
                self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()  # a burst of distinct live tokens: start over, never grow
            self._entries[key] = (user, expires)
