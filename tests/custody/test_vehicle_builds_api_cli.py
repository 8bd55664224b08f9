"""Earmarking a new vehicle tablet for its vehicle over the API (technicians and admins; typed
refusals as 4xx problem details) and the CLI (one-line refusals, nothing written)."""

from __future__ import annotations

from harness.custody_data import ready
from harness.domain import receive
from harness.vehicle_tablet import built
from harness.web import bearer
from typer.testing import CliRunner

from factory.cli.main import app
from factory.custody.service import allocate, decommission_vehicle, register_vehicle
from factory.custody.views import vehicle_fleet_number
from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope

runner = CliRunner()


def _seed(ctx: AppContext) -> int:
    """The new vehicle tablet VT-1 (its device id), a laptop, a tablet allocated, vehicles in and out of service."""
    device_id = receive(ctx, "VT-1", new_stock=True, kind="vehicle-tablet")
    receive(ctx, "LAP-1", new_stock=True)
    ready(ctx, "VT-TAKEN", kind="vehicle-tablet")
    with session_scope(ctx.engine) as s:
        for fleet in ("FL-204", "FL-300", "FL-OLD"):
            register_vehicle(s, fleet_number=fleet)
        decommission_vehicle(s, fleet_number="FL-OLD", removed_by="Sam", actor="tech.one")
        allocate(s, serial="VT-TAKEN", fleet_number="FL-300", actor="tech.one")
    return device_id


def _fleet(ctx: AppContext, serial: str) -> str | None:
    with session_scope(ctx.engine) as s:
        return vehicle_fleet_number(s, get_device(s, serial).id or 0)


# The same refusals through both entry points: (serial, fleet number, status, reason).
REFUSALS = [
    ("LAP-1", "FL-204", 422, "LAP-1 is a laptop, not a vehicle tablet"),
    ("VT-1", "FL-OLD", 409, "vehicle FL-OLD was decommissioned at"),
    ("VT-TAKEN", "FL-300", 409, "VT-TAKEN is allocated (allocation"),
    ("NOPE", "FL-204", 404, "no device with serial NOPE"),
    ("VT-1", "FL-999", 404, "no vehicle with fleet number FL-999"),
]


def test_api_earmarks_changes_and_removes_and_refuses_with_problem_details(ctx, client, tokens) -> None:
    device_id = _seed(ctx)
    tech, admin = bearer(tokens["technician"]), bearer(tokens["admin"])
    for role in ("courier", "auditor"):
        r = client.post("/api/custody/vehicles/FL-204/builds", json={"serial": "VT-1"}, headers=bearer(tokens[role]))
        assert r.status_code == 403
    r = client.post("/api/custody/vehicles/FL-204/builds", json={"serial": "VT-1"}, headers=tech)
    assert r.status_code == 201, r.text
    assert r.json() == {"id": "VT-1", "details": {"vehicle": "FL-204", "by": "technician1"}}
    assert _fleet(ctx, "VT-1") == "FL-204"
    r = client.post("/api/custody/vehicles/FL-300/builds", json={"serial": "VT-1"}, headers=admin)  # changed
    assert r.status_code == 201 and _fleet(ctx, "VT-1") == "FL-300"
    r = client.delete("/api/custody/vehicles/FL-204/builds/VT-1", headers=tech)
    assert r.status_code == 404 and "VT-1 is not earmarked for vehicle FL-204" in r.json()["reason"]
    r = client.delete("/api/custody/vehicles/FL-300/builds/VT-1", headers=tech)
    assert r.status_code == 200 and r.json()["details"] == {"vehicle": "FL-300"}
    assert _fleet(ctx, "VT-1") is None
    for serial, fleet, status, reason in REFUSALS:
        r = client.post(f"/api/custody/vehicles/{fleet}/builds", json={"serial": serial}, headers=tech)
        assert r.status_code == status and reason in r.json()["reason"], (serial, fleet, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = client.post("/api/custody/vehicles/FL-204/builds", json={"serial": ""}, headers=tech)
    assert r.status_code == 422
    assert _fleet(ctx, "VT-1") is None

    # Built for FL-204: allocation to another vehicle is refused with the reason, to FL-204 works.
    assert client.post("/api/custody/vehicles/FL-204/builds", json={"serial": "VT-1"}, headers=tech).status_code == 201
    built(ctx, device_id, "FL-204")
    r = client.post("/api/custody/allocations", json={"serial": "VT-1", "fleet_number": "FL-300"}, headers=tech)
    assert r.status_code == 409 and r.json()["error"] == "guard_refused"
    assert "VT-1 was built for vehicle FL-204: allocate it to FL-204, or earmark it for FL-300" in r.json()["reason"]
    r = client.post("/api/custody/allocations", json={"serial": "VT-1", "fleet_number": "FL-204"}, headers=tech)
    assert r.status_code == 201, r.text


def test_cli_builds_for_a_vehicle_and_refuses_in_one_line(ctx) -> None:
    _seed(ctx)
    r = runner.invoke(app, ["vehicle", "build-for", "VT-1", "FL-204", "--actor", "tech.one"])
    assert r.exit_code == 0, r.output
    assert "VT-1 will be built for vehicle FL-204" in r.stdout and _fleet(ctx, "VT-1") == "FL-204"
    r = runner.invoke(app, ["vehicle", "unbuild", "VT-1"])
    assert r.exit_code == 0 and "VT-1 is no longer earmarked for vehicle FL-204" in r.stdout
    for serial, fleet, _status, reason in REFUSALS:
        r = runner.invoke(app, ["vehicle", "build-for", serial, fleet])
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: ") and reason in lines[0], r.stderr
        assert "Traceback" not in r.output
    r = runner.invoke(app, ["vehicle", "unbuild", "VT-1"])
    assert r.exit_code == 1 and r.stderr.strip() == "error: tablet VT-1 is not earmarked for a vehicle"
    assert _fleet(ctx, "VT-1") is None
