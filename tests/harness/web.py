"""Shared set-up for the web tests: users with passwords, logins, and seeded custody data."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from factory.identity.service import add_user, set_password
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope

ROLES = ("technician", "courier", "auditor", "admin")
PASSWORD = "correct horse battery staple"
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_LOGIN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Web tests log in many times: a cheap Argon2id cost keeps them fast (production keeps the
    library's defaults, slow by design). Autouse in every test module that imports it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("factory.identity.service._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        mp.setattr(
            "factory.identity.service._dummy_hash", lambda: "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
        )
        yield


def bearer(token: str) -> dict[str, str]:
    """The Authorization header that presents an API token."""
    return {"Authorization": f"Bearer {token}"}


def make_users(ctx: AppContext) -> dict[str, str]:
    """One user per role, named after it ('technician1', ...), with PASSWORD; returns API tokens."""
    tokens = {}
    with session_scope(ctx.engine) as s:
        for role in ROLES:
            tokens[role] = add_user(s, f"{role}1", role)[1]
            set_password(s, f"{role}1", PASSWORD)
    return tokens


def login(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token (from the page's meta tag)."""
    form = client.get("/login")
    token = _LOGIN_CSRF.search(form.text)
    assert token is not None, form.text
    r = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/").text)


def csrf_of(html: str) -> str:
    match = _CSRF_META.search(html)
    assert match is not None, "no CSRF token on the page"
    return match.group(1)
