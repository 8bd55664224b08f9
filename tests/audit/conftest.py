"""Audit test fixtures: bearer headers per role (the client and tokens come from tests/conftest.py)."""

from __future__ import annotations

import pytest
from harness.web import bearer


@pytest.fixture
def headers(tokens: dict[str, str]) -> dict[str, dict[str, str]]:
    """Authorization headers per role."""
    return {role: bearer(token) for role, token in tokens.items()}
