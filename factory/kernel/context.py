"""The application's wiring: settings plus the engine, built once per process."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.pool import NullPool

from factory.identity.token_cache import VerifiedTokens
from factory.kernel.config import Settings, load_settings
from factory.kernel.db.engine import make_engine


@dataclass
class AppContext:
    settings: Settings
    # One-shot processes (the CLI) hold no pool: connections close as soon as they are released.
    pooled: bool = True

    @cached_property
    def engine(self) -> Engine:
        if self.pooled:
            return make_engine(self.settings.database_url)
        return make_engine(self.settings.database_url, poolclass=NullPool)

    @cached_property
    def verified_tokens(self) -> VerifiedTokens:
        return VerifiedTokens(self.settings.token_cache_seconds)

    @classmethod
    def from_env(cls, pooled: bool = True) -> AppContext:
        return cls(load_settings(), pooled=pooled)
