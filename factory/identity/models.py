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


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    # SHA-256 of the token: tokens are 256-bit random, so a fast hash is enough and lookups stay O(1).
    token_sha256: str = Field(unique=True, max_length=64)
    created_at: str = Field(max_length=32)
    revoked_at: str | None = Field(default=None, max_length=32)


class WebSession(SQLModel, table=True):
    """A browser session: a random id in a cookie, only its SHA-256 stored; expiring and revocable."""

    __tablename__ = "web_session"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    # SHA-256 of the cookie value: the id is 256-bit random, so a leaked table cannot be replayed.
    session_sha256: str = Field(unique=True, max_length=64)
    # Session-bound CSRF token, embedded in every form and compared on every POST.
    csrf_token: str = Field(max_length=64)
    created_at: str = Field(max_length=32)
    last_seen_at: str = Field(max_length=32)
    expires_at: str = Field(index=True, max_length=32)  # absolute end of the session (one shift)
    revoked_at: str | None = Field(default=None, max_length=32)
