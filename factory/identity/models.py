"""Users, their roles and hashed API tokens."""

from __future__ import annotations

from enum import StrEnum

from sqlmodel import Field, SQLModel


class Role(StrEnum):
    TECHNICIAN = "technician"
    COURIER = "courier"
    AUDITOR = "auditor"
    ADMIN = "admin"


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
