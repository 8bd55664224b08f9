"""Web login: Argon2id passwords, server-side sessions that expire and end at logout, CSRF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from harness.web import (  # noqa: F401 (cheap_password_hashing: autouse fixture)
    PASSWORD,
    cheap_password_hashing,
    csrf_of,
    login,
    make_users,
)
from sqlmodel import select
from typer.testing import CliRunner

from factory.cli.main import app as cli
from factory.identity.models import User, WebSession
from factory.identity.service import (
    SESSION_IDLE,
    SESSION_LIFETIME,
    add_user,
    check_password,
    hash_token,
    open_web_session,
    set_password,
    web_session_user,
)
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import InvalidInput, Unauthenticated


def test_passwords_are_argon2id_and_checked(ctx) -> None:
    make_users(ctx)
    with session_scope(ctx.engine) as s:
        user = s.exec(select(User).where(User.name == "technician1")).one()
        assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert check_password(s, "technician1", PASSWORD).name == "technician1"
        for name, password in (("technician1", "wrong password!!"), ("nobody", PASSWORD), ("technician1", "")):
            with pytest.raises(Unauthenticated, match="invalid user name or password"):
                check_password(s, name, password)
        add_user(s, "no.password", "auditor")
        with pytest.raises(Unauthenticated):
            check_password(s, "no.password", "")


@pytest.mark.parametrize(
    ("password", "needle"),
    [
        ("short", "12 to 256"),
        ("x" * 257, "12 to 256"),
        (" leading space ok?", "spaces"),
        ("tab\tinside pass", "control"),
    ],
)
def test_password_policy(ctx, password: str, needle: str) -> None:
    make_users(ctx)
    with session_scope(ctx.engine) as s, pytest.raises(InvalidInput, match=needle):
        set_password(s, "courier1", password)


def test_login_sets_an_httponly_session_cookie_and_lands_on_the_role_home(ctx, client) -> None:
    make_users(ctx)
    form = client.get("/login?next=/courier/consignments")
    assert form.status_code == 200 and "Content-Security-Policy" in form.headers
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post(
        "/login",
        data={"username": "courier1", "password": PASSWORD, "csrf_token": token, "next": "/courier/consignments"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/courier/consignments"
    cookie = r.headers["set-cookie"]
    assert "df_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    with session_scope(ctx.engine) as s:
        rows = s.exec(select(WebSession)).all()
        value = client.cookies["df_session"]
        assert len(rows) == 1 and rows[0].session_sha256 == hash_token(value) and value not in rows[0].session_sha256
    assert client.get("/", follow_redirects=False).headers["location"] == "/courier/consignments"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_login_never_redirects_off_site(ctx, client, target: str) -> None:
    make_users(ctx)
    token = client.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post(
        "/login",
        data={"username": "auditor1", "password": PASSWORD, "csrf_token": token, "next": target},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/audit/search"


def test_bad_logins_are_refused_with_one_reason(ctx, client) -> None:
    make_users(ctx)
    page = client.get("/login")
    for name, password in (("technician1", "not the password"), ("ghost", PASSWORD)):
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        page = client.post("/login", data={"username": name, "password": password, "csrf_token": token})
        assert page.status_code == 401 and "invalid user name or password" in page.text
        assert "df_session" not in client.cookies
    # Without the login form's own cookie (a cross-site post), the login is refused outright.
    client.cookies.clear()
    r = client.post("/login", data={"username": "technician1", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 400 and "df_session" not in client.cookies


def test_logout_revokes_the_session_server_side(ctx, client) -> None:
    make_users(ctx)
    csrf = login(client, "technician1")
    stolen = client.cookies["df_session"]
    r = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    # Replaying the old cookie (e.g. copied before logout) no longer works.
    client.cookies.set("df_session", stolen)
    r = client.get("/tech/receive", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/tech/receive"
    with session_scope(ctx.engine) as s:
        assert s.exec(select(WebSession)).one().revoked_at is not None


def test_sessions_expire_when_idle_and_after_a_shift(ctx) -> None:
    make_users(ctx)
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    with session_scope(ctx.engine) as s:
        user = s.exec(select(User).where(User.name == "technician1")).one()
        cookie, _ = open_web_session(s, user, now=start)
    with session_scope(ctx.engine) as s:
        # Activity keeps it alive past the idle limit...
        moment = start
        while moment + SESSION_IDLE / 2 < start + SESSION_LIFETIME:
            moment += SESSION_IDLE / 2
            assert web_session_user(s, cookie, now=moment)[0].name == "technician1"
        # ...but not past the end of the shift.
        with pytest.raises(Unauthenticated, match="expired"):
            web_session_user(s, cookie, now=start + SESSION_LIFETIME + timedelta(seconds=1))
    with session_scope(ctx.engine) as s:
        user = s.exec(select(User).where(User.name == "technician1")).one()
        idle_cookie, _ = open_web_session(s, user, now=start)
        with pytest.raises(Unauthenticated, match="expired"):
            web_session_user(s, idle_cookie, now=start + SESSION_IDLE + timedelta(seconds=1))


def test_password_change_and_disabling_end_sessions(ctx, client) -> None:
    make_users(ctx)
    login(client, "courier1")
    assert client.get("/courier/consignments").status_code == 200
    with session_scope(ctx.engine) as s:
        set_password(s, "courier1", "a brand new passphrase")
    assert client.get("/courier/consignments", follow_redirects=False).status_code == 303
    login(client, "courier1", "a brand new passphrase")
    with session_scope(ctx.engine) as s:
        s.exec(select(User).where(User.name == "courier1")).one().disabled = True
    assert client.get("/courier/consignments", follow_redirects=False).status_code == 303


def test_every_form_post_needs_the_session_csrf_token(ctx, client) -> None:
    make_users(ctx)
    csrf = login(client, "technician1")
    form = {"serial": "CSRF-1", "kind": "laptop"}
    for token in (None, "", "forged-token", csrf[:-1]):
        data = form if token is None else {**form, "csrf_token": token}
        r = client.post("/tech/receive", data=data, follow_redirects=False)
        assert r.status_code == 403 and "security token" in r.text
    r = client.post("/tech/receive", data={**form, "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    # Another user's token does not work either: tokens are bound to the session.
    other = TestClient(client.app)
    other_csrf = login(other, "admin1")
    r = client.post("/tech/receive", data={**form, "serial": "CSRF-2", "csrf_token": other_csrf})
    assert r.status_code == 403
    assert csrf_of(client.get("/tech/receive").text) == csrf


def test_cli_passwd_sets_a_password_from_stdin(ctx) -> None:
    make_users(ctx)
    runner = CliRunner()
    r = runner.invoke(cli, ["users", "passwd", "auditor1", "--password-stdin"], input="typed on the console\n")
    assert r.exit_code == 0, r.output
    with session_scope(ctx.engine) as s:
        assert check_password(s, "auditor1", "typed on the console").name == "auditor1"
    r = runner.invoke(cli, ["users", "passwd", "auditor1", "--password-stdin"], input="short\n")
    assert r.exit_code == 1 and r.stderr.strip().startswith("error: a password must be 12")
    r = runner.invoke(cli, ["users", "passwd", "nobody", "--password-stdin"], input="long enough password\n")
    assert r.exit_code == 1 and "no user named 'nobody'" in r.stderr
