"""The one auth path (api/deps.py): explicit roles, which credentials each kind of route takes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from harness.web import (  # noqa: F401 (cheap_password_hashing: autouse fixture)
    cheap_password_hashing,
    login,
    make_users,
)

from api.app import create_app
from api.deps import ANY, Caller, caller, page_user
from factory.identity.models import Role


def test_naming_no_role_is_an_error_admins_and_any_are_explicit() -> None:
    with pytest.raises(TypeError):
        caller()
    with pytest.raises(TypeError):
        page_user()
    assert callable(caller(Role.ADMIN)) and callable(caller(ANY)) and callable(page_user(ANY))
    assert Caller("a", Role.ADMIN.value).has(Role.COURIER)  # admins may do everything
    assert not Caller("t", Role.TECHNICIAN.value).has(Role.COURIER)


def test_json_routes_take_a_bearer_token_the_board_api_also_the_session_cookie(ctx) -> None:
    make_users(ctx)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        csrf = login(client, "technician1")
        # The JSON API proper is for tools with tokens: a browser session does not open it.
        r = client.get("/api/devices/NOPE-1")
        assert r.status_code == 401 and r.json()["reason"] == "missing bearer token"
        # The routes the board page calls take the session (and its CSRF header for actions).
        assert client.get("/api/board").status_code == 200
        r = client.post("/api/jobs/999999/cancel")
        assert r.status_code == 403 and "CSRF" in r.json()["reason"]
        r = client.post("/api/jobs/999999/cancel", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 404
        # A non-ASCII token is a mismatch, not a server error.
        r = client.post("/api/jobs/999999/cancel", headers={"X-CSRF-Token": "j\u00f6b".encode()})
        assert r.status_code == 403
