"""Audit test fixtures: an API client and one token per role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from factory.identity.service import add_user
from factory.kernel.db.engine import session_scope


@pytest.fixture
def client(ctx) -> Iterator[TestClient]:
    with TestClient(create_app(ctx), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def headers(ctx) -> dict[str, str]:
    """Authorization headers per role."""
    out = {}
    with session_scope(ctx.engine) as s:
        for role in ("technician", "courier", "auditor", "admin"):
            out[role] = {"Authorization": f"Bearer {add_user(s, f'{role}1', role)[1]}"}
    return out
