"""Request ids, the JSON access log, HTTP metrics and who may scrape /metrics (api/observability.py)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from harness.web import (  # noqa: F401 (cheap_password_hashing: autouse fixture)
    PASSWORD,
    bearer,
    cheap_password_hashing,
    login,
    make_users,
)
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from factory.kernel.context import AppContext
from factory.kernel.logs import JsonFormatter, RequestIdFilter

SCRAPE_TOKEN = "scrape-only-0123456789abcdef"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the 'api' loggers write, formatted as ``factory serve`` formats it (one JSON per line)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("api")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(level)


def _records(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _access(out: io.StringIO) -> list[dict[str, object]]:
    return [r for r in _records(out) if r["logger"] == "api.access"]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_request_id_is_kept_or_made_and_echoed(client) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "proxy-7f3a:1"})
    assert given.headers["X-Request-ID"] == "proxy-7f3a:1"
    made = client.get("/healthz")
    other = client.get("/healthz")
    assert len(made.headers["X-Request-ID"]) == 32 and made.headers["X-Request-ID"] != other.headers["X-Request-ID"]
    # An id that could forge log lines or grow without bound is replaced, not echoed.
    for bad in ("a" * 129, "two words", 'x", "level": "error'):
        answered = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert answered != bad and len(answered) == 32
    # Refusals and unknown paths carry one too.
    assert client.get("/api/devices/SN1").headers["X-Request-ID"]
    assert client.get("/no/such/page").headers["X-Request-ID"]


def test_every_line_of_a_request_carries_its_id(ctx, lines) -> None:
    app = create_app(ctx)

    def noisy() -> dict[str, str]:  # a sync route: it runs on the thread pool, not the event loop
        logging.getLogger("api.test").warning("working on it")
        return {"ok": "yes"}

    app.add_api_route("/test/noisy", noisy)
    with TestClient(app) as c:
        r = c.get("/test/noisy", headers={"X-Request-ID": "req-42"})
        c.get("/test/noisy")
    records = _records(lines)
    mine = [rec for rec in records if rec.get("request_id") == "req-42"]
    assert [rec["logger"] for rec in mine] == ["api.test", "api.access"], records
    assert mine[0]["message"] == "working on it" and r.headers["X-Request-ID"] == "req-42"
    assert len({rec.get("request_id") for rec in records}) == 2


def test_the_access_log_names_route_status_and_user_never_secrets(ctx, client, lines) -> None:
    tokens = make_users(ctx)
    client.get("/api/devices/SN-NOT-HERE", headers=bearer(tokens["technician"]))
    client.get("/api/devices/SN1", headers=bearer("not-a-token"))
    login(client, "auditor1")
    client.get("/audit/search")
    rows = _access(lines)
    lookup, refused = rows[0], rows[1]
    assert {k: lookup[k] for k in ("method", "route", "status", "user")} == {
        "method": "GET", "route": "/api/devices/{serial}", "status": 404, "user": "technician1",
    }  # fmt: skip
    assert isinstance(lookup["duration_ms"], float) and lookup["request_id"]
    assert (refused["status"], refused["user"]) == (401, None)
    assert [(r["method"], r["route"], r["user"]) for r in rows[-1:]] == [("GET", "/audit/search", "auditor1")]
    assert ("POST", "/login", 303) in {(r["method"], r["route"], r["status"]) for r in rows}
    text = lines.getvalue()
    # Route templates, not raw paths; and neither tokens nor passwords, anywhere.
    assert "SN-NOT-HERE" not in text
    for secret in (tokens["technician"], "not-a-token", PASSWORD):
        assert secret not in text


def test_metrics_count_requests_by_route_template_and_status_class(ctx, client) -> None:
    token = make_users(ctx)["auditor"]
    for serial in ("SN1", "SN2", "SN3"):
        client.get(f"/api/devices/{serial}", headers=bearer(token))
    client.get("/healthz")
    client.get("/wp-admin/setup.php")
    samples = _samples(client.get("/metrics", headers=bearer(token)).text)
    device = (("method", "GET"), ("route", "/api/devices/{serial}"), ("status", "4xx"))
    assert samples[("factory_http_requests_total", device)] == 3
    assert samples[("factory_http_request_duration_seconds_count", device)] == 3
    assert samples[("factory_http_request_duration_seconds_bucket", tuple(sorted((*device, ("le", "+Inf")))))] == 3
    health = (("method", "GET"), ("route", "/healthz"), ("status", "2xx"))
    assert samples[("factory_http_requests_total", health)] == 1
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "4xx"))
    assert samples[("factory_http_requests_total", unmatched)] == 1
    routes = {dict(labels).get("route") for _, labels in samples}
    assert not any(r and ("SN1" in r or "wp-admin" in r) for r in routes)
    assert ("factory_media_certified_total", ()) in samples  # beside the domain families, not instead


@pytest.fixture
def scrape_app(ctx, tmp_path) -> Iterator[FastAPI]:
    """The app with FACTORY_METRICS_TOKEN_FILE set (its file holds the scrape token)."""
    token_file = tmp_path / "metrics-token"
    token_file.write_text(SCRAPE_TOKEN + "\n")
    scraping = AppContext(dataclasses.replace(ctx.settings, metrics_token_file=token_file))
    yield create_app(scraping)
    scraping.engine.dispose()


def test_metrics_readable_with_the_scrape_token_or_from_loopback(scrape_app) -> None:
    app = scrape_app
    with TestClient(app) as remote:
        assert remote.get("/metrics", headers=bearer(SCRAPE_TOKEN)).status_code == 200
        assert remote.get("/metrics", headers=bearer("scrape-only-wrong")).status_code == 401
        assert remote.get("/metrics").status_code == 401
        # The scrape token opens /metrics and nothing else.
        assert remote.get("/api/devices/SN1", headers=bearer(SCRAPE_TOKEN)).status_code == 401
    with TestClient(app, client=("127.0.0.1", 41000)) as local:
        r = local.get("/metrics")
        assert r.status_code == 200 and "factory_http_requests_total" in r.text
        # Through a proxy on the same host every caller would look local: a token is needed then.
        assert local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 401
        assert local.get("/metrics", headers={"Forwarded": "for=203.0.113.9"}).status_code == 401
    with TestClient(app, client=("::1", 41000)) as local6:
        assert local6.get("/metrics").status_code == 200


def test_a_missing_token_file_opens_nothing(scrape_app, lines) -> None:
    with TestClient(scrape_app) as c:
        assert c.get("/metrics", headers=bearer(SCRAPE_TOKEN)).status_code == 200
    token_file = scrape_app.state.context.settings.metrics_token_file
    token_file.unlink()
    with TestClient(scrape_app) as c:
        assert c.get("/metrics", headers=bearer(SCRAPE_TOKEN)).status_code == 401
    assert any("unreadable" in r["message"] for r in _records(lines))


def test_serve_log_config_writes_json_lines() -> None:
    # In a child process: dictConfig changes the whole process's logging.
    code = (
        "import logging, logging.config\n"
        "from factory.kernel.logs import REQUEST_ID, log_config\n"
        "logging.config.dictConfig(log_config('info'))\n"
        "logging.getLogger('uvicorn.error').info('started', extra={'color_message': '\\x1b[1mstarted'})\n"
        "REQUEST_ID.set('r-1')\n"
        "logging.getLogger('api.access').info('GET / 200', extra={'status': 200, 'user': None})\n"
        "logging.getLogger('api').debug('not at info')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    started, access = (json.loads(line) for line in done.stderr.splitlines())
    assert (started["logger"], started["message"], started["level"]) == ("uvicorn.error", "started", "info")
    assert "request_id" not in started and "color_message" not in started and started["time"].endswith("Z")
    assert {k: access[k] for k in ("request_id", "status", "user", "message")} == {
        "request_id": "r-1", "status": 200, "user": None, "message": "GET / 200",
    }  # fmt: skip
