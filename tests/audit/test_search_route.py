"""The search route's own handling: the serial-only shortcut past the query model gives the
model's answers, and the route's lean handler keeps the auditor check and its problem details."""

from __future__ import annotations

import pytest
from harness.audit_data import sanitised_device

from api.deps import AuditorUser, SessionDep
from api.routes.audit import _SearchRoute
from factory.kernel import limits


def test_a_serial_alone_gets_the_same_page_as_through_the_query_model(ctx, client, headers) -> None:
    _, ids = sanitised_device(ctx, "DEV-S", ("S-M1", "S-M2"))
    alone = client.get("/api/certificates", params={"device_serial": "DEV-S"}, headers=headers["auditor"])
    # An unknown name is ignored, but it takes the request through SearchParams' validation.
    modelled = client.get(
        "/api/certificates", params={"device_serial": "DEV-S", "unknown": "1"}, headers=headers["auditor"]
    )
    assert alone.status_code == modelled.status_code == 200, (alone.text, modelled.text)
    assert alone.content == modelled.content
    assert sorted(i["certificate_id"] for i in alone.json()["items"]) == sorted(ids)


@pytest.mark.parametrize(
    ("serial", "status"), [("", 422), ("S" * limits.SEARCH_TERM, 200), ("S" * (limits.SEARCH_TERM + 1), 422)]
)
def test_a_serial_out_of_bounds_is_the_models_422_problem(ctx, client, headers, serial: str, status: int) -> None:
    r = client.get("/api/certificates", params={"device_serial": serial}, headers=headers["auditor"])
    assert r.status_code == status, r.text
    if status == 422:
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["error"] == "invalid_input" and "device_serial" in r.json()["reason"]


def test_the_search_asks_for_an_auditors_bearer_token_with_problem_details(ctx, client, headers) -> None:
    missing = client.get("/api/certificates", params={"device_serial": "X"})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = client.get("/api/certificates", params={"device_serial": "X"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthenticated", wrong.text
    for role, status in (("courier", 403), ("technician", 403), ("auditor", 200), ("admin", 200)):
        r = client.get("/api/certificates", params={"device_serial": "X"}, headers=headers[role])
        assert r.status_code == status, (role, r.text)
    assert client.get("/api/certificates", headers=headers["courier"]).json()["error"] == "forbidden"


def test_the_lean_route_refuses_an_endpoint_with_dependencies_it_would_not_run() -> None:
    async def endpoint(_user: AuditorUser, _session: SessionDep) -> None:
        return None

    with pytest.raises(TypeError, match="auditor check and nothing else"):
        _SearchRoute("/x", endpoint, methods=["GET"])
