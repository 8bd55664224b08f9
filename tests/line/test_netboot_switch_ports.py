"""A laptop that network-boots on a bench whose switch the line polls: the switch sees its MAC
before it enrols. The sighting occupies the switch-port slot without a job (a network-booted
laptop's endpoint is bound to one boot: its host key is that boot's), the enrolment queues the job
on that same slot (so its link and reboots count there), and after the laptop has booted its own
disk a new sighting waits for its next network boot instead of driving the last boot's endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.domain import receive
from harness.line_sites import ONE_SWITCH, switch_site_file
from harness.netboot_site import boot, report
from harness.switch_ports import gone, jobs_in, seen, slot, with_mac
from harness.waiting import wait_until
from sqlmodel import col, select

from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line.bench_config import load_line_config
from factory.line.bus import LineBus
from factory.line.controller import Controller
from factory.line.leases import register_agent
from factory.line.models import FINISHED_JOB_STATUSES, Job
from factory.line.network_slots import NetworkSlots

LAPTOP = "00:1b:63:aa:00:01"  # on sw-bench-1 Gi1/0/1 in the snmpsim fixture's port map
SLOT1 = "bench-1/slot-1"
DISKS = [("nvme", "NV-SW-1")]


def _enrol(client, serial: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    r = client.post("/api/netboot/enrol", json=report(LAPTOP, serial, DISKS, token=boot(client, LAPTOP)))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _all_finished(ctx: AppContext) -> bool:
    with session_scope(ctx.engine) as s:
        statuses = s.exec(select(Job.status)).all()
    return bool(statuses) and all(status in FINISHED_JOB_STATUSES for status in statuses)


def test_the_enrolment_queues_the_job_on_the_switch_port_the_laptop_was_seen_on(
    ctx: AppContext, controller: Controller, client
) -> None:  # type: ignore[no-untyped-def]
    receive(ctx, "LT-SW-1", ["NV-SW-1"])
    controller.submit(seen(LAPTOP, 1))  # powered on: the switch learns its MAC before it enrols
    assert controller.wait_idle(30)
    waiting = slot(ctx, SLOT1)
    assert (waiting.attached_mac, waiting.attached_serial) == (LAPTOP, None)
    assert jobs_in(ctx, SLOT1) == [], "a MAC sighting alone must not start a job"

    body = _enrol(client, "LT-SW-1")
    assert (body["outcome"], body["serial"], body["job_status"]) == ("accepted", "LT-SW-1", "queued")
    (job,) = jobs_in(ctx, SLOT1)  # on the switch-port slot, not a network-boot pool slot
    assert job.device_serial == "LT-SW-1"
    enrolled = slot(ctx, SLOT1)
    assert (enrolled.attached_serial, enrolled.attached_mac, enrolled.error) == ("LT-SW-1", LAPTOP, None)
    wait_until(lambda: _all_finished(ctx), timeout=60, message="the job to end (its address is not reachable here)")

    # It boots its own disk: the link drops, then the switch sees it again.
    controller.submit(gone(LAPTOP, 1))
    controller.submit(seen(LAPTOP, 1))
    assert controller.wait_idle(30)
    assert [j.id for j in jobs_in(ctx, SLOT1)] == [job.id], "the last boot's endpoint must not be driven again"
    after = slot(ctx, SLOT1)
    assert after.attached_serial == "LT-SW-1"
    assert after.error is not None and "waiting for its network boot" in after.error


def test_a_laptop_whose_endpoint_was_typed_by_hand_still_gets_its_job_from_the_sighting(
    ctx: AppContext, controller: Controller
) -> None:
    with_mac(ctx, "LT-SW-2", LAPTOP)  # `factory device endpoint ... --mac`: the exception path
    controller.submit(seen(LAPTOP, 1))
    assert controller.wait_idle(30)
    (job,) = jobs_in(ctx, SLOT1)
    assert job.device_serial == "LT-SW-2"


@pytest.fixture
def network_slots(ctx: AppContext, tmp_path: Path) -> NetworkSlots:
    """The switch-port slots of an agent that serves network boot (its dnsmasq is not needed here)."""
    config = load_line_config(switch_site_file(tmp_path, ONE_SWITCH))
    with session_scope(ctx.engine) as s:
        benches = register_agent(s, config, site=ctx.settings.site_name, run_id="test-run")
    return NetworkSlots(
        ctx.engine, config.port_map, LineBus(), bench_ids=lambda: benches,
        provision_name="provision", notice=lambda _m: None, release=lambda *_a: None, wake=lambda: None,
        network_boot=True,
    )  # fmt: skip


def test_on_a_network_boot_bench_an_unrecorded_mac_is_a_laptop_yet_to_enrol(
    ctx: AppContext, network_slots: NetworkSlots
) -> None:
    network_slots.handle(seen(LAPTOP, 1), 0.0)
    waiting = slot(ctx, SLOT1)
    assert waiting.error is not None
    assert waiting.error.startswith(f"MAC {LAPTOP} (not recorded yet) is on the bench, waiting for its network boot")
    with session_scope(ctx.engine) as s:
        assert s.exec(select(col(Job.id))).all() == []
