"""Request and response models of the identity admin API (users, tokens, sessions, lockouts)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from factory.identity.views import TokenView
from factory.kernel import limits


class UserPublic(BaseModel):
    name: str
    role: str
    disabled: bool
    created_at: str


class UserChangePublic(UserPublic):
    sessions_ended: int


# An API token as listed: its id and dates, never the token (only its hash is stored). The view's
# dataclass is the response model itself (FastAPI validates dataclasses), so the fields live once.
TokenPublic = TokenView


class TokenIn(BaseModel):
    days: int | None = Field(default=None, ge=1, le=3650, description="Lifetime (default FACTORY_TOKEN_DAYS).")


class NewTokenPublic(BaseModel):
    user: str
    token: str = Field(description="Shown once: only its SHA-256 is stored.")


class RevokedPublic(BaseModel):
    revoked: int


class SessionPublic(BaseModel):
    id: int
    user: str
    created_at: str
    last_seen_at: str
    expires_at: str


class LockPublic(BaseModel):
    kind: str
    subject: str
    failures: int
    blocked_until: str | None
    locked_at: str | None


class UnlockIn(BaseModel):
    kind: Literal["account", "officer", "address"]
    subject: str = Field(min_length=1, max_length=limits.LOCK_SUBJECT)


class UnlockedPublic(BaseModel):
    unlocked: bool


class AuditPublic(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    target: str
    detail: str
