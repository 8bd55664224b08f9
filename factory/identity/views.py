"""Reads of identity: users, API token checks, and the per-process cache of verified tokens.

None of these writes: the per-request token check runs on a read-only connection
(``authenticate_token_readonly``); browser-session checks touch ``last_seen_at`` and so live in
:mod:`factory.identity.service`.
"""

from __future__ import annotations

from sqlmodel import Session, select

from factory.identity.errors import InvalidToken, UnknownUser
from factory.identity.models import ApiToken, User, hash_token
from factory.identity.token_cache import VerifiedTokens, authenticate_token_readonly
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
    if row is None or row[1].revoked_at is not None or row[0].disabled:
        raise InvalidToken("invalid or revoked API token")
    return row[0]


def verified_tokens(ctx: AppContext) -> VerifiedTokens:
    """The context's cache of API tokens verified a moment ago (one per process; see token_cache)."""
    return ctx.shared(VerifiedTokens, lambda c: VerifiedTokens(c.settings.token_cache_seconds))


__all__ = [
    "authenticate_token",
    "authenticate_token_readonly",
    "find_user",
    "get_user",
    "hash_token",
    "verified_tokens",
]
