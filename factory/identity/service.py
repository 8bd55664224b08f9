"""Writes of identity: users, API tokens (shown once, stored as SHA-256), passwords and browser sessions.

Passwords are hashed with Argon2id (argon2-cffi defaults, RFC 9106 low-memory profile). Browser
sessions are server-side rows: the cookie carries a random id, the table its SHA-256.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from factory.identity import audit, directory
from factory.identity.errors import DirectoryUnavailable, LoginRefused, SessionRefused, UserExists
from factory.identity.lifecycle import (
    end_session,
    end_user_sessions,
    login_attempt,
    pin_allowed,
    pin_failed,
    pin_succeeded,
    revoke_token,
    revoke_user_tokens,
    set_disabled,
    token_expiry,
    unlock,
)
from factory.identity.models import ApiToken, Role, User, WebSession, hash_token
from factory.identity.views import authenticate_token, find_user, get_user
from factory.kernel import clock
from factory.kernel.clock import format_utc, utc_now
from factory.kernel.config import TOKEN_DAYS
from factory.kernel.context import AppContext
from factory.kernel.db.engine import read_scope
from factory.kernel.errors import InvalidInput

# Re-exported for callers that write and check in one place (the CLI, tests).
__all__ = [
    "SESSION_IDLE",
    "SESSION_LIFETIME",
    "TOKEN_PREFIX",
    "add_user",
    "authenticate_token",
    "check_password",
    "close_web_session",
    "directory_sign_in",
    "end_session",
    "end_user_sessions",
    "get_user",
    "hash_token",
    "issue_token",
    "login_attempt",
    "open_web_session",
    "pin_allowed",
    "pin_failed",
    "pin_succeeded",
    "revoke_token",
    "revoke_user_sessions",
    "revoke_user_tokens",
    "set_disabled",
    "set_password",
    "unlock",
    "web_session_user",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
TOKEN_PREFIX = "dft_"
MIN_PASSWORD = 12
MAX_PASSWORD = 256  # bounds the hashing work an attacker can ask for
SESSION_LIFETIME = timedelta(hours=10)  # one shift, then log in again
SESSION_IDLE = timedelta(minutes=30)  # an unattended bench laptop does not stay logged in
_TOUCH_EVERY = timedelta(minutes=1)  # write last_seen_at at most this often
_hasher = PasswordHasher()
_BAD_LOGIN = "invalid user name or password"
log = logging.getLogger(__name__)


def add_user(
    session: Session, name: str, role: str, actor: str = audit.SYSTEM, days: int = TOKEN_DAYS
) -> tuple[User, str]:
    """Create a user and return it with a fresh API token (the only time the token is visible),
    valid for ``days`` (``FACTORY_TOKEN_DAYS`` where the caller has settings).

    :raises InvalidInput: a malformed name or an unknown role.
    :raises UserExists: the name is taken.
    """
    name = (name or "").strip()
    if not _NAME.match(name):
        raise InvalidInput(f"user name '{name}' must be 2-64 chars of a-z, 0-9, '.', '_' or '-'")
    roles = [r.value for r in Role]
    if role not in roles:
        raise InvalidInput(f"role '{role}' is not one of: {', '.join(roles)}")
    if session.exec(select(User).where(User.name == name)).first():
        raise UserExists(f"user '{name}' already exists")
    user = User(name=name, role=role, created_at=utc_now())
    session.add(user)
    session.flush()
    audit.record(session, actor, "add-user", f"user:{name}", f"role {role}")
    return user, issue_token(session, user, actor, days)


def issue_token(session: Session, user: User, actor: str = audit.SYSTEM, days: int = TOKEN_DAYS) -> str:
    """A new API token for ``user``, refused after ``days``; only its SHA-256 is stored."""
    if not 1 <= days <= 3650:
        raise InvalidInput(f"a token lasts 1 to 3650 days, not {days}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = token_expiry(days)
    row = ApiToken(user_id=user.id or 0, token_sha256=hash_token(token), created_at=utc_now(), expires_at=expires)
    session.add(row)
    session.flush()
    audit.record(session, actor, "issue-token", f"token:{row.id}", f"user {user.name}, expires {expires}")
    return token


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a wrong
    password (made on first use: hashing is deliberately slow and most processes never log in)."""
    return _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def set_password(session: Session, name: str, password: str, actor: str = audit.SYSTEM) -> User:
    """Set (or replace) a user's password; every open browser session of the user is revoked.

    :raises UnknownUser: no such user.
    :raises InvalidInput: the password is too short, too long, padded or has control characters.
    """
    user = get_user(session, name)
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    if password.strip() != password or not password.isprintable():
        raise InvalidInput("a password must not start or end with spaces or contain control characters")
    user.password_hash = _hasher.hash(password)
    session.add(user)
    ended = revoke_user_sessions(session, user)
    audit.record(session, actor, "set-password", f"user:{user.name}", f"{ended} sessions ended")
    session.flush()
    return user


def directory_sign_in(ctx: AppContext, name: str, password: str) -> directory.DirectoryUser | None:
    """Step one of a sign-in, run before the write transaction (the directory may be slow or down):
    the directory's answer for ``name``, or None when no directory is configured or ``name`` is a
    local account (local accounts never depend on the directory: they are the break-glass way in).

    :raises LoginRefused: the directory refused (see :func:`directory.authenticate`).
    :raises DirectoryUnavailable: the directory cannot be reached or is misconfigured.
    """
    if _is_local(ctx, (name or "").strip().lower()):
        return None
    try:
        config = ctx.shared(directory.Directory, lambda _c: directory.Directory(directory.load_config())).config
    except directory.DirectoryConfigError as exc:
        log.error("directory sign-in is misconfigured: %s", exc)
        raise DirectoryUnavailable("directory sign-in is misconfigured (see the service log)") from None
    if config is None or _is_local(ctx, directory.login_name(config, name)):  # FORCE\\name: still local
        return None
    return directory.authenticate(config, name, password)


def _is_local(ctx: AppContext, name: str) -> bool:
    with read_scope(ctx.engine) as conn:
        local = conn.execute(select(User.password_hash).where(User.name == name)).first()
    return local is not None and local[0] != directory.DIRECTORY_PASSWORD


def check_password(
    session: Session, name: str, password: str, directory_user: directory.DirectoryUser | None = None
) -> User:
    """The user named ``name`` if ``password`` is theirs; an outdated hash is upgraded on the way.
    With ``directory_user`` (from :func:`directory_sign_in`) the directory has already checked the
    password, and the user's local row is kept in step with it instead.

    :raises LoginRefused: for every failure, with one reason.
    """
    if directory_user is not None and directory_user.login == (name or "").strip().lower():
        return directory.provision(session, directory_user)
    user = find_user(session, name)
    if not password or len(password) > MAX_PASSWORD:
        raise LoginRefused(_BAD_LOGIN)
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        raise LoginRefused(_BAD_LOGIN) from None
    if user is None or not user.password_hash or user.disabled:
        raise LoginRefused(_BAD_LOGIN)
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
    """The user behind a session cookie, noting that it was seen (at most once a minute).

    :raises SessionRefused: unknown, expired, idle, revoked or disabled.
    """
    moment = now or clock.now()
    row = session.exec(
        select(User, WebSession)
        .join(WebSession, WebSession.user_id == User.id)  # type: ignore[arg-type]
        .where(WebSession.session_sha256 == hash_token(cookie or ""))
    ).first()
    if row is None:
        raise SessionRefused("not logged in")
    user, web = row
    if web.revoked_at is not None or user.disabled:
        raise SessionRefused("the session was ended; log in again")
    if web.expires_at <= format_utc(moment) or web.last_seen_at <= format_utc(moment - SESSION_IDLE):
        raise SessionRefused("the session expired; log in again")
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


revoke_user_sessions = end_user_sessions  # the older name, kept for its callers
