"""Building a new vehicle tablet for its vehicle: the earmark before the build, what the line reads
from it, and allocation to a vehicle other than the one the tablet was built for refused."""

from __future__ import annotations

import pytest
from harness.custody_data import entry_count, ready
from harness.domain import move, receive, state_of, verifier
from harness.vehicle_tablet import built

from factory.custody.service import (
    allocate,
    build_for_vehicle,
    decommission_vehicle,
    install_tablet,
    mark_returned,
    register_vehicle,
    release,
    remove_build,
)
from factory.custody.views import earmarks, vehicle_fleet_number
from factory.intake.views import get_device
from factory.kernel import clock
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import Conflict, GuardRefused, InvalidInput, NotFound
from factory.kernel.lifecycle.states import Event


def _vehicles(ctx: AppContext, *fleet_numbers: str) -> None:
    with session_scope(ctx.engine) as s:
        for fleet in fleet_numbers:
            register_vehicle(s, fleet_number=fleet)


def _new_tablet(ctx: AppContext, serial: str) -> int:
    return receive(ctx, serial, new_stock=True, kind="vehicle-tablet")


def _earmark(ctx: AppContext, serial: str, fleet: str) -> None:
    with session_scope(ctx.engine) as s:
        build_for_vehicle(s, serial=serial, fleet_number=fleet, actor="tech.one")


def _fleet(ctx: AppContext, serial: str) -> str | None:
    with session_scope(ctx.engine) as s:
        return vehicle_fleet_number(s, get_device(s, serial).id or 0)


def _allocate(ctx: AppContext, serial: str, fleet: str) -> int:
    with session_scope(ctx.engine) as s:
        return allocate(s, serial=serial, fleet_number=fleet, actor="tech.one").record.id or 0


def test_an_earmark_names_the_vehicle_the_line_builds_for_and_can_change_or_go(ctx) -> None:
    _vehicles(ctx, "FL-204", "FL-300")
    _new_tablet(ctx, "VT-N1")
    before = entry_count(ctx)
    assert _fleet(ctx, "VT-N1") is None
    _earmark(ctx, "VT-N1", "FL-204")
    assert _fleet(ctx, "VT-N1") == "FL-204"
    _earmark(ctx, "VT-N1", " FL-300 ")  # changed before allocation: one earmark per tablet
    assert _fleet(ctx, "VT-N1") == "FL-300"
    with session_scope(ctx.engine) as s:
        [mark] = earmarks(s)["FL-300"]
        assert (mark.serial, mark.state, mark.created_by) == ("VT-N1", "received", "tech.one")
        assert "FL-204" not in earmarks(s)
        with pytest.raises(NotFound, match="VT-N1 is not earmarked for vehicle FL-204"):
            remove_build(s, serial="VT-N1", fleet_number="FL-204")
        assert remove_build(s, serial="VT-N1", fleet_number="FL-300") == "FL-300"
    assert _fleet(ctx, "VT-N1") is None
    with session_scope(ctx.engine) as s, pytest.raises(NotFound, match="VT-N1 is not earmarked for a vehicle"):
        remove_build(s, serial="VT-N1")
    assert entry_count(ctx) == before  # an earmark is not a custody step: no entry, no state change
    assert state_of(ctx, "VT-N1") == "received"


def test_earmark_refusals(ctx) -> None:
    _vehicles(ctx, "FL-204", "FL-OLD")
    _new_tablet(ctx, "VT-N2")
    receive(ctx, "LAP-1", new_stock=True)
    with session_scope(ctx.engine) as s:
        decommission_vehicle(s, fleet_number="FL-OLD", removed_by="Sam", actor="tech.one")
    cases = [
        ("LAP-1", "FL-204", InvalidInput, "LAP-1 is a laptop, not a vehicle tablet"),
        ("VT-N2", "FL-OLD", Conflict, "vehicle FL-OLD was decommissioned at"),
        ("NOPE", "FL-204", NotFound, "no device with serial NOPE"),
        ("VT-N2", "FL-999", NotFound, "no vehicle with fleet number FL-999"),
    ]
    for serial, fleet, error, reason in cases:
        with session_scope(ctx.engine) as s, pytest.raises(error, match=reason):
            build_for_vehicle(s, serial=serial, fleet_number=fleet, actor="tech.one")
    assert _fleet(ctx, "VT-N2") is None


def test_an_allocated_tablet_keeps_its_earmark_and_is_allocated_only_to_its_vehicle(ctx) -> None:
    _vehicles(ctx, "FL-204", "FL-300")
    device_id = _new_tablet(ctx, "VT-N3")
    _earmark(ctx, "VT-N3", "FL-204")
    built(ctx, device_id, "FL-204")
    _earmark(ctx, "VT-N3", "FL-300")  # changed after the build: the tablet is still built for FL-204
    with pytest.raises(GuardRefused, match="VT-N3 was built for vehicle FL-204: allocate it to FL-204, or earmark it "
                                           "for FL-300 and rebuild it"):  # fmt: skip
        _allocate(ctx, "VT-N3", "FL-300")
    assert state_of(ctx, "VT-N3") == "ready"
    allocation_id = _allocate(ctx, "VT-N3", "FL-204")  # the vehicle it was built for: as today
    assert (state_of(ctx, "VT-N3"), _fleet(ctx, "VT-N3")) == ("allocated", "FL-204")
    with session_scope(ctx.engine) as s:
        assert "VT-N3" not in [m.serial for marks in earmarks(s).values() for m in marks]
        with pytest.raises(Conflict, match=f"VT-N3 is allocated \\(allocation {allocation_id}, allocated\\)"):
            build_for_vehicle(s, serial="VT-N3", fleet_number="FL-204", actor="tech.one")
        with pytest.raises(Conflict, match="can be un-earmarked only before it is allocated"):
            remove_build(s, serial="VT-N3")
        release(s, allocation_id=allocation_id, reason="wrong vehicle", actor="tech.one")
    _earmark(ctx, "VT-N3", "FL-204")  # back in stock: its earmark may change again


def test_a_tablet_only_earmarked_is_held_to_its_earmark_and_unmarked_ones_allocate_as_before(ctx) -> None:
    _vehicles(ctx, "FL-204", "FL-300")
    earlier = ready(ctx, "VT-OLD", kind="vehicle-tablet")  # built before earmarks: no vehicle in its entry
    _earmark(ctx, "VT-OLD", "FL-204")
    with pytest.raises(GuardRefused, match="VT-OLD is earmarked for vehicle FL-204"):
        _allocate(ctx, "VT-OLD", "FL-300")
    ready(ctx, "VT-FREE", kind="vehicle-tablet")
    _allocate(ctx, "VT-FREE", "FL-300")
    assert earlier and state_of(ctx, "VT-FREE") == "allocated"


def test_a_tablet_back_from_its_vehicle_is_rebuilt_for_it_unless_earmarked_for_another(ctx) -> None:
    _vehicles(ctx, "FL-204", "FL-300")
    device_id = _new_tablet(ctx, "VT-N4")
    _earmark(ctx, "VT-N4", "FL-204")
    built(ctx, device_id, "FL-204")
    allocation_id = _allocate(ctx, "VT-N4", "FL-204")
    with session_scope(ctx.engine) as s:
        install_tablet(s, allocation_id=allocation_id, installer_name="Sam", installer_company="Fleet Fit Ltd",
                       installed_on=clock.now().date(), actor="tech.one", verifier=verifier(ctx))  # fmt: skip
    move(ctx, device_id, Event.RETURN)
    with session_scope(ctx.engine) as s:
        mark_returned(s, device_id)
    assert _fleet(ctx, "VT-N4") == "FL-204"  # its returned allocation and its earmark agree
    _earmark(ctx, "VT-N4", "FL-300")  # no longer allocated: a technician re-earmarks it
    assert _fleet(ctx, "VT-N4") == "FL-300"
    with session_scope(ctx.engine) as s:
        decommission_vehicle(s, fleet_number="FL-300", removed_by="Sam", actor="tech.one")
    assert _fleet(ctx, "VT-N4") == "FL-204"  # an earmark for a vehicle out of service counts for nothing
