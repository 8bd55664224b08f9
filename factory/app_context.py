"""The application's wiring: settings plus the engine, built once per process."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine

from factory.config import Settings, load_settings
from factory.db.engine import make_engine


@dataclass
class AppContext:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @classmethod
    def from_env(cls) -> AppContext:
        return cls(load_settings())
