"""Self-enrolment over HTTP: the per-MAC iPXE script issues a one-time boot token; the enrolment
checks it (single use, bound to the MAC, short-lived), matches the laptop, pins this boot's host
key, compares its disks with the media recorded, and queues (or holds) its job on a network-boot slot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness.domain import move, receive, state_of
from harness.netboot_site import boot, new_host_key, register_netboot_bench, report
from sqlalchemy import update
from sqlmodel import select

from factory.intake.models import BootToken, Enrolment
from factory.intake.views import get_endpoint
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.device import Device, StorageMedium
from factory.line.models import Job, JobStatus, Slot

MAC = "52:54:00:12:34:56"
OTHER_MAC = "52:54:00:aa:bb:cc"
DISKS = [("nvme", "NV-1"), ("sata", "SA-1")]


@pytest.fixture
def bench(ctx: AppContext, tmp_path: Path) -> None:
    register_netboot_bench(ctx, tmp_path, slots=2)


def only_job(ctx: AppContext) -> Job:
    with session_scope(ctx.engine) as s:
        (job,) = s.exec(select(Job)).all()
        s.expunge(job)
        return job


def test_chain_and_service_scripts_point_back_at_the_controller(client) -> None:  # type: ignore[no-untyped-def]
    chain = client.get("/netboot/boot.ipxe")
    assert chain.status_code == 200 and chain.text.startswith("#!ipxe")
    assert "http://testserver/netboot/ipxe/${netX/mac:hexhyp}" in chain.text
    r = client.get("/netboot/ipxe/52-54-00-12-34-56")
    assert "kernel http://testserver/netboot/files/bzImage initrd=initrd" in r.text
    assert "initrd --name initrd http://testserver/netboot/files/initramfs.cpio" in r.text
    assert f"df.enrol=http://testserver/api/netboot/enrol df.mac={MAC} df.token=" in r.text
    assert client.get("/netboot/ipxe/not-a-mac").status_code == 422
    assert client.get("/netboot/files/bzImage").status_code == 404  # not installed in this FACTORY_HOME
    assert client.get("/netboot/files/etc-passwd").status_code == 422


def test_enrolment_pins_the_boots_host_key_and_queues_the_job(ctx: AppContext, client, bench) -> None:  # type: ignore[no-untyped-def]
    receive(ctx, "LT-1", ["NV-1", "SA-1"])
    key = new_host_key()
    r = client.post("/api/netboot/enrol", json=report(MAC, "LT-1", DISKS, token=boot(client, MAC), host_key=key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["outcome"], body["serial"], body["matched_by"], body["job_status"]) == (
        "accepted", "LT-1", "serial", "queued"
    )  # fmt: skip
    job = only_job(ctx)
    assert (job.device_serial, job.pipeline, job.status) == ("LT-1", "sanitise-provision", "queued")
    with session_scope(ctx.engine) as s:
        endpoint = get_endpoint(s, "LT-1")
        assert (endpoint.host_key, endpoint.mac, endpoint.address) == (" ".join(key.split()[:2]), MAC, "testclient")
        slot = s.get(Slot, job.slot_id)
        assert slot is not None and (slot.code, slot.attached_mac) == ("bench-net/slot-1", MAC)
        (row,) = s.exec(select(Enrolment)).all()
        assert (row.outcome, row.dmi_serial, row.mac) == ("accepted", "LT-1", MAC)
        assert [d["serial"] for d in json.loads(row.report)["disks"]] == ["NV-1", "SA-1"]


def test_enrolment_without_a_token_or_with_a_used_one_is_refused(ctx: AppContext, client, bench) -> None:  # type: ignore[no-untyped-def]
    receive(ctx, "LT-2", ["NV-1", "SA-1"])
    r = client.post("/api/netboot/enrol", json=report(MAC, "LT-2", DISKS, token=None))
    assert (r.status_code, r.json()["error"]) == (401, "unauthenticated")
    assert "no boot token" in r.json()["reason"]
    r = client.post("/api/netboot/enrol", json=report(MAC, "LT-2", DISKS, token="made-up"))
    assert r.status_code == 401 and "not recognised" in r.json()["reason"]
    token = boot(client, MAC)
    assert client.post("/api/netboot/enrol", json=report(MAC, "LT-2", DISKS, token=token)).status_code == 200
    # The same boot posting again, with another host key: the token is spent, nothing changes.
    again = client.post("/api/netboot/enrol", json=report(MAC, "LT-2", DISKS, token=token))
    assert again.status_code == 401 and "already used" in again.json()["reason"]
    with session_scope(ctx.engine) as s:
        assert len(s.exec(select(Enrolment)).all()) == 1
        assert len(s.exec(select(Job)).all()) == 1


def test_a_token_for_another_mac_or_an_expired_one_is_refused(ctx: AppContext, client, bench) -> None:  # type: ignore[no-untyped-def]
    receive(ctx, "LT-3", ["NV-1", "SA-1"])
    theirs = boot(client, OTHER_MAC)
    r = client.post("/api/netboot/enrol", json=report(MAC, "LT-3", DISKS, token=theirs))
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    assert f"issued to MAC {OTHER_MAC}" in r.json()["reason"]
    mine = boot(client, MAC)
    with session_scope(ctx.engine) as s:  # the laptop took longer than the token lives
        s.execute(update(BootToken).values(expires_at="2000-01-01T00:00:00.000000Z"))
    r = client.post("/api/netboot/enrol", json=report(MAC, "LT-3", DISKS, token=mine))
    assert r.status_code == 401 and "expired" in r.json()["reason"]
    with session_scope(ctx.engine) as s:
        assert s.exec(select(Enrolment)).all() == [] and s.exec(select(Job)).all() == []


def test_an_unknown_laptop_is_booked_in_with_its_disks_and_quarantined(ctx: AppContext, client, bench) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/netboot/enrol", json=report(MAC, "STRANGER-1", DISKS, token=boot(client, MAC)))
    assert r.status_code == 200, r.text
    assert (r.json()["outcome"], r.json()["matched_by"], r.json()["job_status"]) == ("quarantined", "new", "held")
    assert state_of(ctx, "STRANGER-1") == "quarantined"
    job = only_job(ctx)
    assert job.status == JobStatus.HELD and job.reason is not None and "quarantined" in job.reason
    with session_scope(ctx.engine) as s:
        device = s.exec(select(Device).where(Device.serial == "STRANGER-1")).one()
        media = s.exec(select(StorageMedium).where(StorageMedium.device_id == device.id)).all()
        assert sorted((m.serial, m.media_type) for m in media) == [("NV-1", "nvme"), ("SA-1", "sata-ssd")]
    # Its next boot is held at iPXE: the bench does not boot a quarantined laptop.
    held = client.get(f"/netboot/ipxe/{MAC}")
    assert held.headers["x-boot-decision"] == "hold" and "quarantined" in held.text


def test_a_laptop_is_matched_by_its_mac_when_its_dmi_serial_is_not_on_record(ctx: AppContext, client, bench) -> None:  # type: ignore[no-untyped-def]
    receive(ctx, "LT-4", ["NV-1", "SA-1"])
    token = boot(client, MAC)
    assert client.post("/api/netboot/enrol", json=report(MAC, "LT-4", DISKS, token=token)).status_code == 200
    # Board replaced: the DMI serial changed, the NIC (recorded at the first enrolment) did not.
    with session_scope(ctx.engine) as s:
        s.execute(update(Job).values(status=JobStatus.SUCCEEDED))
    r = client.post("/api/netboot/enrol", json=report(MAC, "NEW-BOARD", DISKS, token=boot(client, MAC)))
    assert r.status_code == 200 and (r.json()["serial"], r.json()["matched_by"]) == ("LT-4", "mac")


@pytest.mark.parametrize(
    ("found", "reason"),
    [
        ([("nvme", "NV-1")], "recorded media not found: SA-1"),
        ([*DISKS, ("usb", "EXTRA-9")], "disks found that are not recorded: EXTRA-9"),
    ],
)
def test_disks_not_as_recorded_stop_the_job_with_the_reason(  # type: ignore[no-untyped-def]
    ctx: AppContext, client, bench, found: list[tuple[str, str]], reason: str
) -> None:
    receive(ctx, "LT-5", ["NV-1", "SA-1"])
    r = client.post("/api/netboot/enrol", json=report(MAC, "LT-5", found, token=boot(client, MAC)))
    assert (r.status_code, r.json()["error"]) == (409, "enrolment_refused")
    assert reason in r.json()["reason"]
    job = only_job(ctx)
    assert job.status == JobStatus.HELD and job.reason is not None and reason in job.reason
    assert state_of(ctx, "LT-5") == "received"  # nothing was done to it
    with session_scope(ctx.engine) as s:
        (row,) = s.exec(select(Enrolment)).all()
        assert row.outcome == "refused" and reason in (row.reason or "")


def test_a_laptop_whose_work_is_done_boots_its_own_disk(ctx: AppContext, client, bench) -> None:  # type: ignore[no-untyped-def]
    device_id = receive(ctx, "LT-6", ["NV-1", "SA-1"], new_stock=True)
    token = boot(client, MAC)
    assert client.post("/api/netboot/enrol", json=report(MAC, "LT-6", DISKS, token=token)).status_code == 200
    assert client.get(f"/netboot/next/{MAC}").text == "wait\n"  # the agent keeps the laptop up
    move(ctx, device_id, Event.START_PROVISION)
    move(ctx, device_id, Event.PROVISIONED)
    assert client.get(f"/netboot/next/{MAC}").text == "reboot\n"  # work done: the agent reboots it
    r = client.get(f"/netboot/ipxe/{MAC}")
    assert r.headers["x-boot-decision"] == "local"
    assert "sanboot --no-describe --drive 0x80 || exit" in r.text and "df.token" not in r.text


def test_every_network_boot_slot_busy_refuses_without_spending_the_token(
    ctx: AppContext, client, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    register_netboot_bench(ctx, tmp_path, slots=1)
    receive(ctx, "LT-7", ["NV-1", "SA-1"])
    receive(ctx, "LT-8", ["NV-2"])
    token = boot(client, MAC)
    assert client.post("/api/netboot/enrol", json=report(MAC, "LT-7", DISKS, token=token)).status_code == 200
    token = boot(client, OTHER_MAC)
    body = report(OTHER_MAC, "LT-8", [("nvme", "NV-2")], token=token)
    r = client.post("/api/netboot/enrol", json=body)
    assert r.status_code == 409 and "no free network-boot slot" in r.json()["reason"]
    with session_scope(ctx.engine) as s:
        s.execute(update(Job).values(status=JobStatus.SUCCEEDED))
    assert client.post("/api/netboot/enrol", json=body).status_code == 200  # the same boot, once a slot is free


def test_an_enrolment_from_another_address_than_the_macs_lease_is_refused_without_spending_the_token(  # type: ignore[no-untyped-def]
    ctx: AppContext, client, bench
) -> None:
    receive(ctx, "LT-9", ["NV-1", "SA-1"])
    leases = ctx.settings.work_dir / "netboot" / "bench-net" / "dnsmasq.leases"
    leases.parent.mkdir(parents=True)
    leases.write_text(f"1765000000 {MAC} 198.18.0.120 * 01:{MAC}\n")  # dnsmasq's lease file format
    token = boot(client, MAC)
    r = client.post("/api/netboot/enrol", json=report(MAC, "LT-9", DISKS, token=token))
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    assert "came from testclient, which its lease (198.18.0.120) is not" in r.json()["reason"]
    leases.write_text("")  # the lease gone (a site's own DHCP): the same boot's token still works
    assert client.post("/api/netboot/enrol", json=report(MAC, "LT-9", DISKS, token=token)).status_code == 200
