"""User and token lifecycle: disabled users, revoked and expired tokens and ended sessions are
refused (tokens within the token cache's bound), on the CLI, the API and the admin page, and every
change leaves an append-only identity audit row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from harness.web import (  # noqa: F401 (cheap_password_hashing: autouse fixture)
    cheap_password_hashing,
    csrf_of,
    login,
    make_users,
)
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select
from typer.testing import CliRunner

from api.app import create_app
from factory.cli.main import app as cli
from factory.identity.models import ApiToken, IdentityAudit
from factory.identity.service import add_user, hash_token
from factory.identity.token_cache import VerifiedTokens
from factory.kernel import clock as kernel_clock
from factory.kernel.db.engine import session_scope


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def trail(ctx) -> list[tuple[str, str, str]]:
    with session_scope(ctx.engine) as s:
        rows = s.exec(select(IdentityAudit).order_by(IdentityAudit.id)).all()  # type: ignore[arg-type]
        return [(r.actor, r.action, r.target) for r in rows]


def test_disabling_refuses_tokens_within_the_bound_and_pages_at_once(ctx, app_client, cache_clock) -> None:
    tokens = make_users(ctx)
    auditor = TestClient(app_client.app, raise_server_exceptions=False)
    login(auditor, "auditor1")
    assert app_client.get("/api/certificates", headers=bearer(tokens["auditor"])).status_code == 200
    r = app_client.post("/api/users/auditor1/disable", headers=bearer(tokens["admin"]))
    assert r.status_code == 200 and r.json()["disabled"] is True and r.json()["sessions_ended"] == 1
    assert auditor.get("/audit/search", follow_redirects=False).headers["location"].startswith("/login")
    cache_clock.now += 1.9  # within the bound the remembered check stands...
    assert app_client.get("/api/certificates", headers=bearer(tokens["auditor"])).status_code == 200
    cache_clock.now += 0.2  # ...and past it the database refuses
    assert app_client.get("/api/certificates", headers=bearer(tokens["auditor"])).status_code == 401
    form = auditor.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    r = auditor.post("/login", data={"username": "auditor1", "password": "correct horse battery staple",
                                     "csrf_token": form}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 401  # a disabled user cannot sign in either
    assert app_client.post("/api/users/auditor1/enable", headers=bearer(tokens["admin"])).status_code == 200
    assert app_client.get("/api/certificates", headers=bearer(tokens["auditor"])).status_code == 200
    assert ("admin1", "disable", "user:auditor1") in trail(ctx) and ("admin1", "enable", "user:auditor1") in trail(ctx)


def test_a_revoked_token_is_refused_within_the_bound(ctx, app_client, cache_clock) -> None:
    tokens = make_users(ctx)
    assert app_client.get("/api/certificates", headers=bearer(tokens["auditor"])).status_code == 200
    listed = app_client.get("/api/users/auditor1/tokens", headers=bearer(tokens["admin"])).json()
    [live] = [t for t in listed if t["live"]]
    assert app_client.post(f"/api/tokens/{live['id']}/revoke", headers=bearer(tokens["admin"])).status_code == 200
    cache_clock.now += 1.9
    assert app_client.get("/api/certificates", headers=bearer(tokens["auditor"])).status_code == 200
    cache_clock.now += 0.2
    assert app_client.get("/api/certificates", headers=bearer(tokens["auditor"])).status_code == 401
    assert ("admin1", "revoke-token", f"token:{live['id']}") in trail(ctx)
    relisted = app_client.get("/api/users/auditor1/tokens", headers=bearer(tokens["admin"])).json()
    assert [t["live"] for t in relisted] == [False] and relisted[0]["revoked_at"]
    # A fresh token for the user works at once (failures are never cached).
    r = app_client.post("/api/users/auditor1/tokens", headers=bearer(tokens["admin"]), json={"days": 1})
    assert r.status_code == 201
    assert app_client.get("/api/certificates", headers=bearer(r.json()["token"])).status_code == 200


def test_an_expired_token_is_refused(ctx, monkeypatch) -> None:
    ctx.provide(VerifiedTokens(0))
    with session_scope(ctx.engine) as s:
        token = add_user(s, "auditor2", "auditor", days=1)[1]
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        assert client.get("/api/certificates", headers=bearer(token)).status_code == 200
        later = kernel_clock.now() + timedelta(days=1, seconds=1)
        monkeypatch.setattr("factory.kernel.clock.now", lambda: later)
        r = client.get("/api/certificates", headers=bearer(token))
        assert r.status_code == 401 and "expired" in r.json()["reason"]


def test_a_token_without_an_expiry_is_refused(ctx) -> None:
    """Fail closed: a row no code writes (no expiry) does not count as 'never expires'."""
    ctx.provide(VerifiedTokens(0))
    with session_scope(ctx.engine) as s:
        token = add_user(s, "auditor3", "auditor")[1]
        s.exec(select(ApiToken).where(ApiToken.token_sha256 == hash_token(token))).one().expires_at = None
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        assert client.get("/api/certificates", headers=bearer(token)).status_code == 401


def test_sessions_are_listed_and_ended(ctx, app_client) -> None:
    tokens = make_users(ctx)
    courier = TestClient(app_client.app, raise_server_exceptions=False)
    login(courier, "courier1")
    sessions = app_client.get("/api/sessions", headers=bearer(tokens["admin"]), params={"user": "courier1"}).json()
    assert [w["user"] for w in sessions] == ["courier1"]
    r = app_client.post(f"/api/sessions/{sessions[0]['id']}/end", headers=bearer(tokens["admin"]))
    assert r.status_code == 200
    assert courier.get("/courier/consignments", follow_redirects=False).headers["location"].startswith("/login")
    assert app_client.get("/api/sessions", headers=bearer(tokens["admin"])).json() == []
    assert app_client.post("/api/sessions/999999/end", headers=bearer(tokens["admin"])).status_code == 404
    assert ("admin1", "end-session", f"session:{sessions[0]['id']}") in trail(ctx)


def test_the_identity_audit_is_append_only(ctx) -> None:
    make_users(ctx)
    for statement in ("UPDATE identity_audit SET actor = 'someone else'", "DELETE FROM identity_audit"):
        with pytest.raises(DBAPIError, match="append-only"), session_scope(ctx.engine) as s:
            s.exec(text(statement))  # type: ignore[call-overload]
    assert ("system", "add-user", "user:admin1") in trail(ctx)


def test_the_cli_covers_the_lifecycle(ctx) -> None:
    make_users(ctx)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["users", *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert "disabled" in run("disable", "courier1") and "courier1\tcourier\tdisabled" in run("list")
    assert "enabled" in run("enable", "courier1")
    token = run("token", "courier1", "--days", "7").splitlines()[-1]
    assert token.startswith("dft_")
    ids = [line.split("\t")[0] for line in run("tokens", "courier1").splitlines() if line.endswith("live")]
    assert len(ids) == 2
    assert "1 token(s) revoked" in run("revoke-token", ids[0])
    assert "1 token(s) revoked" in run("revoke-token", "--user", "courier1")
    assert not [line for line in run("tokens", "courier1").splitlines() if line.endswith("live")]
    assert "nothing was counted" in run("unlock", "courier1")
    assert run("sessions") == ""
    actions = [(a, t) for _who, a, t in trail(ctx) if _who.startswith("cli:")]
    assert ("disable", "user:courier1") in actions and ("issue-token", f"token:{ids[0]}") in actions
    assert "revoke-token" in run("audit", "--target", f"token:{ids[0]}")
    for bad in (["revoke-token"], ["unlock"], ["unlock", "x", "--address", "1.2.3.4"], ["end-session", "999"]):
        result = runner.invoke(cli, ["users", *bad])
        assert result.exit_code != 0 and "Traceback" not in result.output, bad


def test_the_admin_page_acts_and_shows_the_trail(ctx) -> None:
    make_users(ctx)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as admin:
        csrf = login(admin, "admin1")
        page = admin.get("/admin/users")
        assert page.status_code == 200 and 'aria-label="Disable technician1"' in page.text
        assert csrf_of(page.text) == csrf and 'href="/admin/users"' in page.text
        r = admin.post("/admin/users/technician1/disable", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        shown = admin.get(r.headers["location"]).text
        assert "technician1 is disabled" in shown and 'aria-label="Enable technician1"' in shown
        assert admin.post("/admin/users/technician1/disable", data={}).status_code == 403  # no CSRF token
        r = admin.post("/admin/users/admin1/disable", data={"csrf_token": csrf})
        assert r.status_code == 422 and "cannot disable your own account" in r.text
        r = admin.post("/admin/sessions/999999/end", data={"csrf_token": csrf})
        assert r.status_code == 404 and "no browser session has id 999999" in r.text
        r = admin.post("/admin/locks/unlock", data={"csrf_token": csrf, "kind": "nonsense", "subject": "x"})
        assert r.status_code == 422
    assert ("admin1", "disable", "user:technician1") in trail(ctx)


def test_tokens_issued_before_expiry_existed_keep_working_for_the_grace_period(ctx) -> None:
    """Migration 0010 gives every existing token 90 days from the upgrade, not an instant refusal."""
    from alembic import command

    from factory.kernel.db.migrate import alembic_config

    with session_scope(ctx.engine) as s:
        token = add_user(s, "auditor4", "auditor")[1]
    ctx.engine.dispose()
    config = alembic_config(ctx.settings.database_url)
    command.downgrade(config, "0009")
    command.upgrade(config, "head")
    with session_scope(ctx.engine) as s:
        row = s.exec(select(ApiToken).where(ApiToken.token_sha256 == hash_token(token))).one()
        grace = kernel_clock.parse_utc(row.expires_at or "") - kernel_clock.now()
        assert timedelta(days=89) < grace <= timedelta(days=90)
    ctx.provide(VerifiedTokens(0))
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        assert client.get("/api/certificates", headers=bearer(token)).status_code == 200
