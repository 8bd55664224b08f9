"""Users, roles and API tokens (shown once, stored as SHA-256)."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlmodel import Session, select

from factory.clock import utc_now
from factory.errors import Conflict, InvalidInput, Unauthenticated
from factory.models.users import ApiToken, Role, User

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
TOKEN_PREFIX = "dft_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(session: Session, name: str, role: str) -> tuple[User, str]:
    """Create a user and return it with a fresh API token (the only time the token is visible)."""
    name = (name or "").strip()
    if not _NAME.match(name):
        raise InvalidInput(f"user name '{name}' must be 2-64 chars of a-z, 0-9, '.', '_' or '-'")
    roles = [r.value for r in Role]
    if role not in roles:
        raise InvalidInput(f"role '{role}' is not one of: {', '.join(roles)}")
    if session.exec(select(User).where(User.name == name)).first():
        raise Conflict(f"user '{name}' already exists")
    user = User(name=name, role=role, created_at=utc_now())
    session.add(user)
    session.flush()
    return user, issue_token(session, user)


def issue_token(session: Session, user: User) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id or 0, token_sha256=hash_token(token), created_at=utc_now()))
    session.flush()
    return token


def authenticate_token(session: Session, token: str) -> User:
    row = session.exec(
        select(User, ApiToken)
        .join(ApiToken, ApiToken.user_id == User.id)  # type: ignore[arg-type]
        .where(ApiToken.token_sha256 == hash_token(token))
    ).first()
    if row is None or row[1].revoked_at is not None or row[0].disabled:
        raise Unauthenticated("invalid or revoked API token")
    return row[0]
