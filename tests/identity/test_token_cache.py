"""Verified API tokens are trusted again for at most the configured seconds: revoking a token,
disabling a user or changing a role takes effect within that bound, failures are never kept."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from factory.identity.models import ApiToken, User
from factory.identity.service import add_user, hash_token
from factory.identity.token_cache import VerifiedTokens
from factory.kernel.clock import utc_now
from factory.kernel.config import load_settings
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import Unauthenticated


def _auditor(ctx, name: str = "auditor1") -> str:
    with session_scope(ctx.engine) as s:
        return add_user(s, name, "auditor")[1]


def _revoke(ctx, token: str) -> None:
    with session_scope(ctx.engine) as s:
        s.exec(select(ApiToken).where(ApiToken.token_sha256 == hash_token(token))).one().revoked_at = utc_now()


def _set_user(ctx, name: str, **fields: object) -> None:
    with session_scope(ctx.engine) as s:
        user = s.exec(select(User).where(User.name == name)).one()
        for key, value in fields.items():
            setattr(user, key, value)


def _search(client: TestClient, token: str) -> int:
    return client.get("/api/certificates", headers={"Authorization": f"Bearer {token}"}).status_code


@pytest.mark.parametrize(
    "change, status",
    [
        ("revoke", 401),
        ("disable", 401),
        ("demote", 403),  # auditor -> courier: authenticated, but no longer allowed to search
    ],
)
def test_a_change_takes_effect_once_the_bound_has_passed(ctx, app_client, cache_clock, change, status) -> None:
    token = _auditor(ctx)
    assert _search(app_client, token) == 200
    if change == "revoke":
        _revoke(ctx, token)
    elif change == "disable":
        _set_user(ctx, "auditor1", disabled=True)
    else:
        _set_user(ctx, "auditor1", role="courier")
    # Within the bound the remembered check stands (the documented staleness)...
    cache_clock.now += 1.9
    assert _search(app_client, token) == 200
    # ...and once it has passed, the database decides again, on every request from then on.
    cache_clock.now += 0.2
    assert _search(app_client, token) == status
    assert _search(app_client, token) == status


def test_failures_are_never_remembered(ctx, app_client) -> None:
    token = "dft_" + "t" * 43
    assert _search(app_client, token) == 401
    # The token becomes valid (issued straight into the table): accepted at once, not after the bound.
    user_token = _auditor(ctx)
    with session_scope(ctx.engine) as s:
        owner = s.exec(select(ApiToken).where(ApiToken.token_sha256 == hash_token(user_token))).one().user_id
        s.add(ApiToken(user_id=owner, token_sha256=hash_token(token), created_at=utc_now(), expires_at="9999"))
    assert _search(app_client, token) == 200


def test_a_zero_bound_turns_the_cache_off(ctx) -> None:
    token = _auditor(ctx)
    tokens = VerifiedTokens(0)
    assert tokens.check(ctx.engine, token).name == "auditor1"
    assert tokens.get(token) is None and len(tokens) == 0
    _revoke(ctx, token)
    with pytest.raises(Unauthenticated):
        tokens.check(ctx.engine, token)


def test_the_real_clock_expires_entries(ctx) -> None:
    token = _auditor(ctx)
    tokens = VerifiedTokens(0.05)
    tokens.check(ctx.engine, token)
    _revoke(ctx, token)
    time.sleep(0.1)  # past the bound whatever the machine's load: nothing here asserts a duration
    assert tokens.get(token) is None
    with pytest.raises(Unauthenticated):
        tokens.check(ctx.engine, token)


def test_the_cache_never_grows_past_its_size(ctx, cache_clock) -> None:
    tokens = VerifiedTokens(2.0, clock=cache_clock, max_entries=3)
    issued = [_auditor(ctx, f"auditor{i}") for i in range(7)]
    for token in issued:
        tokens.check(ctx.engine, token)
        assert len(tokens) <= 3
    assert tokens.get(issued[-1]) is not None  # the newest check is always kept


def test_the_bound_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("FACTORY_TOKEN_CACHE_SECONDS", raising=False)
    assert load_settings().token_cache_seconds == 2.0
    monkeypatch.setenv("FACTORY_TOKEN_CACHE_SECONDS", "0.5")
    assert load_settings().token_cache_seconds == 0.5
    for bad in ("soon", "-1", "61", "nan"):
        monkeypatch.setenv("FACTORY_TOKEN_CACHE_SECONDS", bad)
        with pytest.raises(ValueError, match="FACTORY_TOKEN_CACHE_SECONDS"):
            load_settings()
