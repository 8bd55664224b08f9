"""Fixtures shared by the identity tests: the token cache on a clock moved by hand, and the app using it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from factory.identity.token_cache import VerifiedTokens


class Clock:
    """The cache's clock, moved by hand (like the ``now=`` of the web-session tests)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cache_clock() -> Clock:
    return Clock()


@pytest.fixture
def app_client(ctx, cache_clock: Clock) -> Iterator[TestClient]:
    """The app with a token cache that trusts a verified token for 2 s of ``cache_clock``."""
    ctx.provide(VerifiedTokens(2.0, clock=cache_clock))
    with TestClient(create_app(ctx), raise_server_exceptions=False) as c:
        yield c
