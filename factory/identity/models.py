"""Users with their roles, hashed API tokens, and browser sessions."""

from __future__ import annotations

import hashlib
from enum import StrEnum

from sqlmodel import Field, SQLModel


class Role(StrEnum):
    TECHNICIAN = "technician"
    COURIER = "courier"
    AUDITOR = "auditor"
    ADMIN = "admin"


def hash_token(token: str) -> str:
    """What is stored for an API token or a session cookie: both are 256-bit random, so SHA-256 suffices."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    role: str = Field(max_length=16)
    password_hash: str | None = Field(default=None, max_length=255)
    created_at: str = Field(max_length=32)
    disabled: bool = Field(default=False)


class UserCredential(SQLModel):
    """What an API token and a browser session have alike: the user it speaks for, when it was
    issued, and when it was revoked (None: not revoked).

    Not a table: both credential tables inherit these columns as the migrations made them (same
    names, types, lengths and index; only their place in the class changes, which the schema does
    not see), and revoking either is the same code (``lifecycle._revoke``).
    """

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    created_at: str = Field(max_length=32)
    revoked_at: str | None = Field(default=None, max_length=32)


class ApiToken(UserCredential, table=True):
    __tablename__ = "api_token"

    # SHA-256 of the token: tokens are 256-bit random, so a fast hash is enough and lookups stay O(1).
    token_sha256: str = Field(unique=True, max_length=64)
    # Refused from this moment on (FACTORY_TOKEN_DAYS after issue); None only in rows no code writes.
    expires_at: str | None = Field(default=None, max_length=32)


class WebSession(UserCredential, table=True):
    """A browser session: a random id in a cookie, only its SHA-256 stored; expiring and revocable."""

    __tablename__ = "web_session"

    # SHA-256 of the cookie value: the id is 256-bit random, so a leaked table cannot be replayed.
    session_sha256: str = Field(unique=True, max_length=64)
    # Session-bound CSRF token, embedded in every form and compared on every POST.
    csrf_token: str = Field(max_length=64)
    last_seen_at: str = Field(max_length=32)
    expires_at: str = Field(index=True, max_length=32)  # absolute end of the session (one shift)


class AuthThrottle(SQLModel, table=True):
    """Failed sign-ins (or acceptance PINs) per account or address: growing delays, then a lockout.

    ``key`` is ``<kind>:<subject>`` (see factory/identity/throttle.py). Kept in the database so
    every API process sees the same counts.
    """

    __tablename__ = "auth_throttle"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    failures: int = Field(default=0)
    last_failure_at: str | None = Field(default=None, index=True, max_length=32)
    blocked_until: str | None = Field(default=None, max_length=32)  # refused until then (the delay)
    locked_at: str | None = Field(default=None, max_length=32)  # refused until an admin unlocks


class IdentityAudit(SQLModel, table=True):
    """One change to who may do what (append-only: triggers refuse UPDATE and DELETE)."""

    __tablename__ = "identity_audit"

    id: int | None = Field(default=None, primary_key=True)
    at: str = Field(index=True, max_length=32)
    actor: str = Field(max_length=80)  # a user name, "cli:<os user>" or "system"
    action: str = Field(max_length=32)
    target: str = Field(index=True, max_length=200)
    detail: str = Field(default="", max_length=500)
