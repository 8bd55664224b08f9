"""Failed sign-ins and PINs are throttled per account and per address, with delays that grow and a
lockout an admin lifts; the counts live in the database, so every API process sees them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from harness.custody_data import allocated, officer_with_device
from harness.domain import state_of
from harness.web import (  # noqa: F401 (cheap_password_hashing: autouse fixture)
    PASSWORD,
    cheap_password_hashing,
    login,
    make_users,
)
from sqlmodel import select

from api.app import create_app
from factory.identity.errors import LoginRefused, Throttled
from factory.identity.models import AuthThrottle, IdentityAudit
from factory.identity.service import check_password, login_attempt, unlock
from factory.identity.throttle import ACCOUNT, ADDRESS
from factory.identity.views import throttled
from factory.kernel.db.engine import session_scope


class WallClock:
    """The kernel clock, moved by hand (the throttle stores and compares its moments)."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> WallClock:
    clock = WallClock()
    monkeypatch.setattr("factory.kernel.clock.now", clock)
    return clock


def attempt(ctx, name: str, password: str, address: str | None = "10.0.0.7") -> str:
    """One sign-in: 'ok', 'refused' (wrong password) or 'wait N' / 'locked' (throttled)."""
    try:
        with login_attempt(ctx.engine, name, address) as session:
            check_password(session, name, password)
    except LoginRefused:
        return "refused"
    except Throttled as exc:
        return f"wait {exc.retry_after}" if exc.retry_after else "locked"
    return "ok"


def failures_then_probe(ctx, wall, name: str, address: str = "10.0.0.7") -> list[str]:
    """Wrong passwords until the lockout; after each, what the right password gets at once."""
    probes = []
    for n in range(1, ACCOUNT.lock_at + 1):
        assert attempt(ctx, name, "wrong password!!", address) == "refused"
        if n > ACCOUNT.free:  # before that the right password would succeed (and start over)
            probes.append(attempt(ctx, name, PASSWORD, address))  # refused unchecked, and not counted
            wall.advance(ACCOUNT.delay(n))
    return probes


def test_delays_grow_then_the_account_locks_until_an_admin_unlocks_it(ctx, wall) -> None:
    make_users(ctx)
    probes = failures_then_probe(ctx, wall, "auditor1")
    assert probes == ["wait 1", "wait 2", "wait 4", "wait 8", "wait 16", "wait 32", "locked"]
    wall.advance(7 * 24 * 3600)  # a lockout does not wear off
    assert attempt(ctx, "auditor1", PASSWORD) == "locked"
    with session_scope(ctx.engine) as s:
        [row] = [v for v in throttled(s) if v.kind == "account"]
        assert (row.subject, row.failures, row.locked_at is not None) == ("auditor1", ACCOUNT.lock_at, True)
        assert unlock(s, "account", "auditor1", actor="admin1")
    assert attempt(ctx, "auditor1", PASSWORD) == "ok"
    with session_scope(ctx.engine) as s:
        rows = s.exec(select(IdentityAudit).where(IdentityAudit.target == "login-account:auditor1")).all()
        assert [(r.action, r.actor) for r in rows] == [("lock", "system"), ("unlock", "admin1")]


def test_a_success_starts_the_account_over(ctx, wall) -> None:
    make_users(ctx)
    for _ in range(ACCOUNT.free):
        assert attempt(ctx, "courier1", "wrong password!!") == "refused"
    assert attempt(ctx, "courier1", PASSWORD) == "ok"
    for _ in range(ACCOUNT.free):  # free again: no delay, nothing locked
        assert attempt(ctx, "courier1", "wrong password!!") == "refused"
    with session_scope(ctx.engine) as s:
        account = s.exec(select(AuthThrottle).where(AuthThrottle.key == "login-account:courier1")).one()
        assert account.failures == ACCOUNT.free and account.blocked_until is None


def test_an_unknown_name_is_throttled_like_a_real_one(ctx, wall) -> None:
    """No difference to probe: names that do not exist get the same delays and lockout."""
    make_users(ctx)
    unknown = failures_then_probe(ctx, wall, "nobody.here", "10.0.0.8")
    assert unknown == failures_then_probe(ctx, wall, "technician1", "10.0.0.9")


def test_an_address_is_throttled_across_accounts_and_successes_do_not_clear_it(ctx, wall) -> None:
    make_users(ctx)
    for n in range(ADDRESS.free):
        assert attempt(ctx, f"guess{n}", "wrong password!!", "10.9.9.9") == "refused"
    # The bench's own users still sign in (their success gives back only their own attempt)...
    assert attempt(ctx, "technician1", PASSWORD, "10.9.9.9") == "ok"
    assert attempt(ctx, "guess-x", "wrong password!!", "10.9.9.9") == "refused"
    # ...but past the free failures every account from the address waits, a right password too.
    assert attempt(ctx, "technician1", PASSWORD, "10.9.9.9") == "wait 1"
    assert attempt(ctx, "technician1", PASSWORD, "10.0.0.1") == "ok"  # another address is not affected
    with session_scope(ctx.engine) as s:
        assert unlock(s, "address", "10.9.9.9", actor="admin1")
    assert attempt(ctx, "technician1", PASSWORD, "10.9.9.9") == "ok"


def test_forty_wrong_passwords_then_the_right_one_is_refused_over_http(ctx, client, wall) -> None:
    """The issue's case, through the login form (in one frozen moment, so no delay runs out): the
    right password after 40 wrong ones gets nowhere."""
    make_users(ctx)
    statuses = [_post_login(client, "admin1", "wrong password!!").status_code for _ in range(40)]
    assert statuses == [401] * (ACCOUNT.free + 1) + [429] * (40 - ACCOUNT.free - 1)
    r = _post_login(client, "admin1", PASSWORD)
    assert r.status_code == 429 and "too many failed sign-ins: try again in 1 s" in r.text
    assert r.headers["retry-after"] == "1" and "df_session" not in client.cookies


def _post_login(client: TestClient, name: str, password: str):
    form = client.get("/login")
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    return client.post(
        "/login", data={"username": name, "password": password, "csrf_token": token}, follow_redirects=False
    )


def test_wrong_pins_are_throttled_per_officer_and_the_lock_lifted(ctx, wall) -> None:
    make_users(ctx)
    officer_with_device(ctx, "PC4001", "OLD-41")
    allocated(ctx, "NEW-41", "PC4001")
    form = {"device_serial": "NEW-41", "old_serial": "OLD-41", "accepted_name": "Jane Smith"}
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        csrf = login(client, "technician1")
        statuses = []
        for n in range(1, ACCOUNT.lock_at + 1):
            r = client.post("/tech/issue", data={**form, "csrf_token": csrf, "pin": "0000"})
            statuses.append(r.status_code)
            wall.advance(ACCOUNT.delay(n))
        assert statuses == [409] * ACCOUNT.lock_at  # each wrong PIN refused, and counted though rolled back
        r = client.post("/tech/issue", data={**form, "csrf_token": csrf, "pin": "4321"})
        assert r.status_code == 429 and "too many failed PIN entries" in r.text and "admin unlocks" in r.text
        assert state_of(ctx, "NEW-41") == "allocated"
        with session_scope(ctx.engine) as s:
            assert unlock(s, "officer", "PC4001", actor="admin1")
        r = client.post("/tech/issue", data={**form, "csrf_token": csrf, "pin": "4321"}, follow_redirects=False)
        assert r.status_code == 303 and state_of(ctx, "NEW-41") == "issued"


def test_a_wrong_pin_right_away_waits(ctx, wall) -> None:
    make_users(ctx)
    officer_with_device(ctx, "PC4002", "OLD-42")
    allocated(ctx, "NEW-42", "PC4002")
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        csrf = login(client, "technician1")
        form = {"csrf_token": csrf, "device_serial": "NEW-42", "old_serial": "OLD-42", "accepted_name": "Jane Smith"}
        codes = [client.post("/tech/issue", data={**form, "pin": "0000"}).status_code for _ in range(6)]
    assert codes[: ACCOUNT.free + 1] == [409] * (ACCOUNT.free + 1) and codes[ACCOUNT.free + 1 :] == [429, 429]


def test_wrong_pins_over_the_json_api_are_counted_too(ctx, wall) -> None:
    """The API's issue route: each wrong PIN is a 409 that leaves nothing behind but its count."""
    tokens = make_users(ctx)
    officer_with_device(ctx, "PC4003", "OLD-43")
    allocation_id = allocated(ctx, "NEW-43", "PC4003")
    body = {"old_serial": "OLD-43", "acceptance": {"name": "Jane Smith", "pin": "0000"}}
    url = f"/api/custody/allocations/{allocation_id}/issue"
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        h = {"Authorization": f"Bearer {tokens['technician']}"}
        codes = [client.post(url, json=body, headers=h).status_code for _ in range(ACCOUNT.free + 2)]
        assert codes == [409] * (ACCOUNT.free + 1) + [429]
        right = {**body, "acceptance": {"name": "Jane Smith", "pin": "4321"}}
        r = client.post(url, json=right, headers=h)
        assert r.status_code == 429 and "try again in 1 s" in r.json()["reason"]
        assert r.headers["retry-after"] == "1" and r.json()["error"] == "throttled"
        wall.advance(1)
        assert client.post(url, json=right, headers=h).status_code == 200
    assert state_of(ctx, "NEW-43") == "issued"
    with session_scope(ctx.engine) as s:  # the success started the officer over
        assert [v.kind for v in throttled(s)] == ["address"]


def test_every_form_of_a_name_counts_against_one_account(ctx, wall) -> None:
    """``auditor1``, ``FORCE\\auditor1`` and ``auditor1@force.example`` are one account to the
    throttle (the directory accepts the domain forms), so typing it another way buys no attempts."""
    make_users(ctx)
    forms = ["auditor1", "FORCE\\auditor1", "auditor1@force.example", "Auditor1@Other.Example"]
    for n in range(ACCOUNT.free + 1):  # each from another address: only the account can add them up
        assert attempt(ctx, forms[n % len(forms)], "wrong password!!", f"10.0.1.{n}") == "refused"
    assert attempt(ctx, "auditor1", PASSWORD, "10.0.2.1").startswith("wait")
    with session_scope(ctx.engine) as s:
        [row] = [v for v in throttled(s) if v.kind == "account"]
        assert (row.subject, row.failures) == ("auditor1", ACCOUNT.free + 1)
