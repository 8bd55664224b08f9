"""Browser sessions: a random id in a cookie, only its SHA-256 stored; expiring and revocable."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class WebSession(SQLModel, table=True):
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
