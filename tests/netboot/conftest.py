"""The bench network's controller runs inside a network namespace, where the host's loopback (and
so a PostgreSQL server's TCP port on it) is out of sight: processes started there are given the
database by its Unix socket instead, the same database the test's own context uses over TCP."""

from __future__ import annotations

import pytest
from harness.pg import over_unix_socket


@pytest.fixture
def database_in_namespace(ctx: object, database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The database URL for processes inside the namespace, also set as FACTORY_DATABASE_URL
    (the environment they inherit)."""
    url = over_unix_socket(database_url) if database_url.startswith("postgresql") else database_url
    monkeypatch.setenv("FACTORY_DATABASE_URL", url)
    return url
