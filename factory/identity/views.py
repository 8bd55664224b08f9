"""Reads of identity: users, API token checks, and the per-process cache of verified tokens.

None of these writes: the per-request token check runs on a read-only connection
(``authenticate_token_readonly``); browser-session checks touch ``last_seen_at`` and so live in
:mod:`factory.identity.service`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from factory.identity.errors import InvalidToken, UnknownUser
from factory.identity.models import ApiToken, AuthThrottle, IdentityAudit, User, WebSession, hash_token
from factory.identity.token_cache import VerifiedTokens, authenticate_token_readonly
from factory.kernel.clock import utc_now
from factory.kernel.context import AppContext


def get_user(session: Session, name: str) -> User:
    """:raises UnknownUser: no user has this name."""
    user = find_user(session, name)
    if user is None:
        raise UnknownUser(f"no user named '{name}'")
    return user


def find_user(session: Session, name: str) -> User | None:
    return session.exec(select(User).where(User.name == (name or "").strip())).first()


def authenticate_token(session: Session, token: str) -> User:
    """:raises InvalidToken: unknown or revoked token, or a disabled user."""
    row = session.exec(
        select(User, ApiToken)
        .join(ApiToken, ApiToken.user_id == User.id)  # type: ignore[arg-type]
        .where(ApiToken.token_sha256 == hash_token(token))
    ).first()
    if row is None or row[0].disabled or not _usable(row[1]):
        raise InvalidToken("invalid or revoked API token, or expired")
    return row[0]


def _usable(token: ApiToken) -> bool:
    return token.revoked_at is None and bool(token.expires_at) and (token.expires_at or "") > utc_now()


def verified_tokens(ctx: AppContext) -> VerifiedTokens:
    """The context's cache of API tokens verified a moment ago (one per process; see token_cache)."""
    return ctx.shared(VerifiedTokens, lambda c: VerifiedTokens(c.settings.token_cache_seconds))


# ---------------------------------------------------------------- what an admin reviews


@dataclass(frozen=True)
class TokenView:
    """An API token as listed: its id and dates, never the token (only its hash is stored)."""

    id: int
    user: str
    created_at: str
    expires_at: str
    revoked_at: str | None
    live: bool


@dataclass(frozen=True)
class SessionView:
    id: int
    user: str
    created_at: str
    last_seen_at: str
    expires_at: str


@dataclass(frozen=True)
class ThrottleView:
    kind: str  # account, officer or address (what ``unlock`` takes)
    subject: str
    failures: int
    blocked_until: str | None
    locked_at: str | None


_UNLOCK_KIND = {
    "login-account": "account",
    "pin-officer": "officer",
    "login-address": "address",
    "pin-address": "address",
}


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.name))).all())


def list_tokens(session: Session, name: str | None = None) -> list[TokenView]:
    """API tokens (newest first), of one user or of everyone.

    :raises UnknownUser: ``name`` names no user.
    """
    query = select(ApiToken, User.name).join(User, col(User.id) == ApiToken.user_id)
    if name is not None:
        query = query.where(User.id == get_user(session, name).id)
    rows = session.exec(query.order_by(col(ApiToken.id).desc())).all()
    return [
        TokenView(t.id or 0, owner, t.created_at, t.expires_at or "", t.revoked_at, _usable(t)) for t, owner in rows
    ]


def open_sessions(session: Session, name: str | None = None) -> list[SessionView]:
    """Browser sessions not ended and not past their absolute expiry (newest first).

    :raises UnknownUser: ``name`` names no user.
    """
    query = (
        select(WebSession, User.name)
        .join(User, col(User.id) == WebSession.user_id)
        .where(col(WebSession.revoked_at).is_(None), WebSession.expires_at > utc_now())
    )
    if name is not None:
        query = query.where(User.id == get_user(session, name).id)
    rows = session.exec(query.order_by(col(WebSession.id).desc())).all()
    return [SessionView(w.id or 0, owner, w.created_at, w.last_seen_at, w.expires_at) for w, owner in rows]


def throttled(session: Session) -> list[ThrottleView]:
    """Accounts, officers and addresses with failures counted, locked ones first."""
    rows = session.exec(select(AuthThrottle).where(AuthThrottle.failures > 0)).all()
    views = [
        ThrottleView(
            _UNLOCK_KIND[r.key.split(":", 1)[0]], r.key.split(":", 1)[1], r.failures, r.blocked_until, r.locked_at
        )
        for r in rows
    ]
    return sorted(views, key=lambda v: (v.locked_at is None, v.kind, v.subject))


def audit_trail(session: Session, target: str | None = None, limit: int = 200) -> list[IdentityAudit]:
    """The newest identity audit rows, of one target (``user:NAME``, ``token:ID`` ...) or all."""
    query = select(IdentityAudit)
    if target is not None:
        query = query.where(IdentityAudit.target == target)
    return list(session.exec(query.order_by(col(IdentityAudit.id).desc()).limit(max(1, min(limit, 1000)))).all())


__all__ = [
    "SessionView",
    "ThrottleView",
    "TokenView",
    "audit_trail",
    "authenticate_token",
    "authenticate_token_readonly",
    "find_user",
    "get_user",
    "hash_token",
    "list_tokens",
    "list_users",
    "open_sessions",
    "throttled",
    "verified_tokens",
]
