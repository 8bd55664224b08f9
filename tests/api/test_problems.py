"""Errors are RFC 9457 problems (with the old error/reason members); JSON gets security headers."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "error", "reason"}


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_problem(r, status: int, error: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert PROBLEM_MEMBERS <= body.keys()
    assert body["status"] == status and body["error"] == error and body["detail"] == body["reason"]
    assert body["type"] == "about:blank" and body["title"]
    return body


def test_every_kind_of_failure_is_a_problem_with_its_reason(client, tokens) -> None:
    body = _assert_problem(client.get("/api/devices/X"), 401, "unauthenticated")
    assert body["title"] == "Unauthorized"
    assert client.get("/api/devices/X").headers["WWW-Authenticate"] == "Bearer"
    tech = _h(tokens["technician"])
    assert "no device" in str(
        _assert_problem(client.get("/api/devices/NOPE", headers=tech), 404, "not_found")["detail"]
    )
    _assert_problem(client.get("/api/ledger/verify", headers=tech), 403, "forbidden")
    body = _assert_problem(client.post("/api/devices", json={"kind": "laptop"}, headers=tech), 422, "invalid_input")
    assert "serial" in str(body["detail"])
    _assert_problem(client.get("/api/no-such-thing"), 404, "http_error")
    _assert_problem(client.delete("/api/devices/X", headers=tech), 405, "http_error")
    r = client.get("/api/jobs/99999999999999999999", headers=tech)
    _assert_problem(r, 422, "invalid_input")


def test_an_unexpected_failure_is_a_bare_500_problem_with_headers(ctx) -> None:
    app = create_app(ctx)

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/boom")
    body = _assert_problem(r, 500, "internal_error")
    assert "secret" not in r.text and "Traceback" not in r.text and body["title"] == "Internal Server Error"
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_json_responses_carry_the_pages_security_headers_and_hsts_only_over_tls(ctx, tokens) -> None:
    app = create_app(ctx)
    with TestClient(app) as plain, TestClient(app, base_url="https://factory.test") as tls:
        for client in (plain, tls):
            for r in (client.get("/api/devices?limit=1", headers=_h(tokens["technician"])), client.get("/api/x")):
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert r.headers["X-Frame-Options"] == "DENY"
                assert r.headers["Referrer-Policy"] == "same-origin"
                assert r.headers["Cache-Control"] == "no-store"
                assert r.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert "Strict-Transport-Security" not in plain.get("/healthz").headers
        assert tls.get("/healthz").headers["Strict-Transport-Security"].startswith("max-age=")
        # Pages keep their own policy (their scripts and styles come from this origin).
        login = tls.get("/login")
        assert "script-src 'self'" in login.headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" in login.headers


def test_a_database_that_cannot_be_reached_is_a_503_to_retry_not_a_500(tmp_path) -> None:
    """While PostgreSQL is down or failing over to its standby, callers are told to retry."""
    from harness.ports import free_tcp_port

    from factory.kernel.config import Settings
    from factory.kernel.context import AppContext

    nobody_listens = f"postgresql+psycopg://postgres@127.0.0.1:{free_tcp_port()}/factory?connect_timeout=2"
    ctx = AppContext(Settings(home=tmp_path, database_url=nobody_listens, site_name="down"))
    with TestClient(create_app(ctx), raise_server_exceptions=False) as down:
        r = down.get("/api/devices/X", headers=_h("a-token-that-cannot-be-checked"))
    _assert_problem(r, 503, "overloaded")
    assert int(r.headers["Retry-After"]) >= 1
