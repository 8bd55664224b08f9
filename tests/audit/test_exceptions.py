"""Exception reports: departures without valid certificates (must be empty, and is re-derived from
the ledger so writes around change_state are caught), devices out of custody, certificates by wave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harness.audit_data import drop_append_only_triggers, issued_new_stock, sanitised_device
from harness.domain import move, receive
from sqlalchemy import text

from factory.audit.views import out_of_custody, uncertified_departures
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.append import append_entry
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.device import Device
from factory.kernel.site_keys import load_public_key
from imaging.certificate import Destination


def _normal_flow(ctx) -> None:
    school, _ = sanitised_device(ctx, "DEV-SCHOOL", ("S-M1", "S-M2"), destination=Destination.EXTERNAL_REUSE)
    move(ctx, school, Event.REDISTRIBUTE, to_custodian="school:1")
    weee, _ = sanitised_device(ctx, "DEV-WEEE", ("W-M1",), destination=Destination.RECYCLING)
    move(ctx, weee, Event.ADD_TO_DISPOSAL)
    move(ctx, weee, Event.COLLECT, to_custodian="recycler:9")
    move(ctx, weee, Event.DISPOSE)
    issued_new_stock(ctx, "DEV-NEW")  # never held data: leaves without certificates, legitimately


def _smuggle_out(ctx, device_id: int, event: Event, to_state: str) -> None:
    """A departure written around change_state: a well-formed ledger entry, no guard consulted."""
    with session_scope(ctx.engine) as s:
        device = s.get(Device, device_id)
        assert device is not None
        append_entry(
            s, device_id=device_id, device_serial=device.serial, event=event.value, from_state=device.state,
            to_state=to_state, actor="insider", from_custodian=device.custodian, to_custodian="school:1",
            location="", evidence={},
        )  # fmt: skip
        s.execute(text("UPDATE device SET state = :st WHERE id = :i"), {"st": to_state, "i": device_id})


def test_normal_flow_leaves_the_report_empty(ctx, client, headers) -> None:
    _normal_flow(ctx)
    r = client.get("/api/audit/exceptions", params={"days": 0}, headers=headers["auditor"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["uncertified_departures"] == []
    assert [o["device_serial"] for o in body["out_of_custody"]] == ["DEV-NEW"]  # disposed/redistributed: gone


def test_report_catches_departures_written_around_the_guard(ctx, client, headers) -> None:
    _normal_flow(ctx)
    never = receive(ctx, "DEV-NEVER", ("N-M1",))  # used, never sanitised
    _smuggle_out(ctx, never, Event.REDISTRIBUTE, "redistributed")
    # certified properly, then its certificate is edited after the fact (triggers dropped)
    edited, (cid,) = sanitised_device(ctx, "DEV-EDITED", ("E-M1",))
    move(ctx, edited, Event.ADD_TO_DISPOSAL)
    drop_append_only_triggers(ctx)
    with ctx.engine.begin() as conn:
        conn.execute(
            text("UPDATE certificate SET envelope = REPLACE(envelope, 'tech.two', 'tech.three') WHERE id = :i"),
            {"i": cid},
        )
    # returned by an officer (holds data) after its erase, then issued again without a new erase
    reused, _ = sanitised_device(ctx, "DEV-REUSED", ("R-M1",))
    for event in (Event.START_PROVISION, Event.PROVISIONED, Event.ALLOCATE, Event.ISSUE, Event.RETURN):
        move(ctx, reused, event)
    _smuggle_out(ctx, reused, Event.SWAP, "issued")

    with session_scope(ctx.engine) as s:
        found = {v.device_serial: v for v in uncertified_departures(s, load_public_key(ctx.settings))}
    assert set(found) == {"DEV-NEVER", "DEV-EDITED", "DEV-REUSED"}
    assert "never sanitised" in found["DEV-NEVER"].problems[0]
    assert found["DEV-EDITED"].event == "add_to_disposal" and "digest mismatch" in found["DEV-EDITED"].problems[0]
    assert "held user data" in found["DEV-REUSED"].problems[0]
    body = client.get("/api/audit/exceptions", headers=headers["admin"]).json()
    assert {v["device_serial"] for v in body["uncertified_departures"]} == set(found)


def test_out_of_custody_longer_than_n_days(ctx) -> None:
    issued_new_stock(ctx, "DEV-OUT")
    away, _ = sanitised_device(ctx, "DEV-HOME", ("H-M1",))  # in the factory: never listed
    now = datetime.now(UTC)
    with session_scope(ctx.engine) as s:
        assert out_of_custody(s, days=5, now=now)[0] == 0
        total, rows = out_of_custody(s, days=5, now=now + timedelta(days=6))
    assert total == 1 and rows[0].device_serial == "DEV-OUT"
    assert (rows[0].state, rows[0].custodian, rows[0].left_event, rows[0].days_out) == (
        "issued", "officer:4711", "issue", 6,
    )  # fmt: skip
    move(ctx, away, Event.START_PROVISION)
    with session_scope(ctx.engine) as s:
        device = s.exec(text("SELECT id FROM device WHERE serial = 'DEV-OUT'")).one()  # type: ignore[call-overload]
    move(ctx, device[0], Event.REPORT_LOST)  # lost devices stay on the report, counted from when they left
    with session_scope(ctx.engine) as s:
        total, rows = out_of_custody(s, days=5, now=now + timedelta(days=6))
    assert total == 1 and rows[0].state == "lost" and rows[0].left_event == "issue"


def test_certificates_by_wave_lists_each_devices_current_certificates(ctx, client, headers) -> None:
    from factory.custody.models import Allocation, Wave
    from factory.kernel.clock import utc_now

    refurbished, ids = sanitised_device(ctx, "DEV-W1", ("W1-M1", "W1-M2"))
    new = receive(ctx, "DEV-W2", ("W2-M1",), new_stock=True)
    released = receive(ctx, "DEV-W3", ("W3-M1",), new_stock=True)
    with session_scope(ctx.engine) as s:
        wave = Wave(name="2026-Q4 north", cohort="North station", created_at=utc_now())
        s.add(wave)
        s.flush()
        for device_id, status in ((refurbished, "allocated"), (new, "issued"), (released, "released")):
            s.add(
                Allocation(device_id=device_id, wave_id=wave.id, channel="in_person", status=status,
                           device_kind="laptop", allocated_seq=1, created_by="tech.one", created_at=utc_now())
            )  # fmt: skip
    body = client.get("/api/audit/exceptions", headers=headers["auditor"]).json()
    (wave_report,) = body["certificates_by_wave"]
    assert (wave_report["wave"], wave_report["device_count"], wave_report["certificate_count"]) == (
        "2026-Q4 north", 2, 2,
    )  # fmt: skip
    by_serial = {d["device_serial"]: d for d in wave_report["devices"]}
    assert sorted(by_serial["DEV-W1"]["certificate_ids"]) == sorted(ids) and by_serial["DEV-W1"]["held_user_data"]
    assert by_serial["DEV-W2"]["certificate_ids"] == [] and not by_serial["DEV-W2"]["held_user_data"]
