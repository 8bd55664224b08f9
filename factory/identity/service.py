"""Users, roles, API tokens (shown once, stored as SHA-256), passwords and browser sessions."""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, text
from sqlmodel import Session, select

from factory.identity.models import ApiToken, Role, User
from factory.identity.web_sessions import WebSession
from factory.kernel import clock
from factory.kernel.clock import format_utc, utc_now
from factory.kernel.errors import Conflict, InvalidInput, NotFound, Unauthenticated

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


_TOKEN_LOOKUP = text(
    "SELECT u.id, u.name, u.role, u.created_at, u.disabled FROM api_token t JOIN app_user u ON u.id = t.user_id "
    "WHERE t.token_sha256 = :h AND t.revoked_at IS NULL"
)


def authenticate_token_readonly(conn: Connection, token: str) -> User:
    """The per-request token check: one indexed query on a read-only connection, no ORM unit of work."""
    row = conn.execute(_TOKEN_LOOKUP, {"h": hash_token(token)}).first()
    if row is None or row.disabled:
        raise Unauthenticated("invalid or revoked API token")
    return User(id=row.id, name=row.name, role=row.role, created_at=row.created_at, disabled=row.disabled)


def authenticate_token(session: Session, token: str) -> User:
    row = session.exec(
        select(User, ApiToken)
        .join(ApiToken, ApiToken.user_id == User.id)  # type: ignore[arg-type]
        .where(ApiToken.token_sha256 == hash_token(token))
    ).first()
    if row is None or row[1].revoked_at is not None or row[0].disabled:
        raise Unauthenticated("invalid or revoked API token")
    return row[0]


# ---------------------------------------------------------------- passwords and web sessions
# Passwords are hashed with Argon2id (argon2-cffi defaults, RFC 9106 low-memory profile).
# Browser sessions are server-side rows: the cookie carries a random id, the table its SHA-256.

MIN_PASSWORD = 12
MAX_PASSWORD = 256  # bounds the hashing work an attacker can ask for
SESSION_LIFETIME = timedelta(hours=10)  # one shift, then log in again
SESSION_IDLE = timedelta(minutes=30)  # an unattended bench laptop does not stay logged in
_TOUCH_EVERY = timedelta(minutes=1)  # write last_seen_at at most this often
_hasher = PasswordHasher()
_BAD_LOGIN = "invalid user name or password"


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a wrong
    password (made on first use: hashing is deliberately slow and most processes never log in)."""
    return _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def get_user(session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == (name or "").strip())).first()
    if user is None:
        raise NotFound(f"no user named '{name}'")
    return user


def set_password(session: Session, name: str, password: str) -> User:
    """Set (or replace) a user's password; every open browser session of the user is revoked."""
    user = get_user(session, name)
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    if password.strip() != password or not password.isprintable():
        raise InvalidInput("a password must not start or end with spaces or contain control characters")
    user.password_hash = _hasher.hash(password)
    session.add(user)
    revoke_user_sessions(session, user)
    session.flush()
    return user


def check_password(session: Session, name: str, password: str) -> User:
    """The user named ``name`` if ``password`` is theirs; one reason for every failure."""
    user = session.exec(select(User).where(User.name == (name or "").strip())).first()
    if not password or len(password) > MAX_PASSWORD:
        raise Unauthenticated(_BAD_LOGIN)
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        raise Unauthenticated(_BAD_LOGIN) from None
    if user is None or not user.password_hash or user.disabled:
        raise Unauthenticated(_BAD_LOGIN)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.add(user)
        session.flush()
    return user


def open_web_session(session: Session, user: User, now: datetime | None = None) -> tuple[str, WebSession]:
    """Start a browser session; returns the cookie value (shown once) and the stored row."""
    moment = now or clock.now()
    cookie = secrets.token_urlsafe(32)
    row = WebSession(
        user_id=user.id or 0,
        session_sha256=hash_token(cookie),
        csrf_token=secrets.token_urlsafe(32),
        created_at=format_utc(moment),
        last_seen_at=format_utc(moment),
        expires_at=format_utc(moment + SESSION_LIFETIME),
    )
    session.add(row)
    session.flush()
    return cookie, row


def web_session_user(session: Session, cookie: str, now: datetime | None = None) -> tuple[User, WebSession]:
    """The user behind a session cookie; refuses unknown, expired, idle, revoked or disabled ones."""
    moment = now or clock.now()
    row = session.exec(
        select(User, WebSession)
        .join(WebSession, WebSession.user_id == User.id)  # type: ignore[arg-type]
        .where(WebSession.session_sha256 == hash_token(cookie or ""))
    ).first()
    if row is None:
        raise Unauthenticated("not logged in")
    user, web = row
    if web.revoked_at is not None or user.disabled:
        raise Unauthenticated("the session was ended; log in again")
    if web.expires_at <= format_utc(moment) or web.last_seen_at <= format_utc(moment - SESSION_IDLE):
        raise Unauthenticated("the session expired; log in again")
    if web.last_seen_at <= format_utc(moment - _TOUCH_EVERY):
        web.last_seen_at = format_utc(moment)
        session.add(web)
        session.flush()
    return user, web


def close_web_session(session: Session, cookie: str) -> None:
    """Log out: the session can never be used again (no-op for an unknown cookie)."""
    web = session.exec(select(WebSession).where(WebSession.session_sha256 == hash_token(cookie or ""))).first()
    if web is not None and web.revoked_at is None:
        web.revoked_at = utc_now()
        session.add(web)
        session.flush()


def revoke_user_sessions(session: Session, user: User) -> int:
    now = utc_now()
    rows = session.exec(
        select(WebSession).where(WebSession.user_id == user.id, WebSession.revoked_at.is_(None))  # type: ignore[union-attr]
    ).all()
    for web in rows:
        web.revoked_at = now
        session.add(web)
    return len(rows)
