"""Fixtures shared by the kernel tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from factory.kernel.db.engine import make_engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the test's database (SQLite or PostgreSQL), disposed after the test."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
