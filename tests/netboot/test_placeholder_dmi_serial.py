"""A laptop whose firmware reports a placeholder DMI serial (tests/fixtures/udev/VARIANTS.md): every
such laptop reports the same text, so it must never match, or book in, a device by it."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.domain import receive
from harness.netboot_site import boot, register_netboot_bench, report
from sqlalchemy import update
from sqlmodel import select

from factory.intake.models import Enrolment
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.models.device import Device
from factory.line.models import Job, JobStatus

MAC_A = "52:54:00:12:34:56"
MAC_B = "52:54:00:aa:bb:cc"
DISKS = [("nvme", "NV-1"), ("sata", "SA-1")]
# As /sys/class/dmi/id/product_serial holds them on white-box and some vendors' boards (the agent
# strips trailing spaces); the last one is dmidecode's counting placeholder.
PLACEHOLDERS = ["To Be Filled By O.E.M.", "Default string", "System Serial Number", "123456789"]


@pytest.fixture
def bench(ctx: AppContext, tmp_path: Path) -> None:
    register_netboot_bench(ctx, tmp_path, slots=2)


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
def test_two_laptops_with_the_same_placeholder_serial_are_never_one_device(  # type: ignore[no-untyped-def]
    ctx: AppContext, client, bench, placeholder: str
) -> None:
    # The first white-box laptop is not booked in under the placeholder: identify it by hand.
    first = client.post("/api/netboot/enrol", json=report(MAC_A, placeholder, DISKS, token=boot(client, MAC_A)))
    assert (first.status_code, first.json()["error"]) == (422, "invalid_input"), first.text
    assert "placeholder" in first.json()["reason"] and "by hand" in first.json()["reason"]
    # Once its real serial and MAC are recorded, the second laptop (same placeholder, another MAC)
    # is still not taken for it; the first, booting again with the placeholder, is matched by its MAC.
    receive(ctx, "WB-0001", ["NV-1", "SA-1"])
    assert client.post("/api/netboot/enrol", json=report(MAC_A, "WB-0001", DISKS, token=boot(client, MAC_A))).is_success
    with session_scope(ctx.engine) as s:
        s.execute(update(Job).values(status=JobStatus.SUCCEEDED))
    other = client.post("/api/netboot/enrol", json=report(MAC_B, placeholder, DISKS, token=boot(client, MAC_B)))
    assert other.status_code == 422 and "placeholder" in other.json()["reason"]
    again = client.post("/api/netboot/enrol", json=report(MAC_A, placeholder, DISKS, token=boot(client, MAC_A)))
    assert again.status_code == 200 and (again.json()["serial"], again.json()["matched_by"]) == ("WB-0001", "mac")
    with session_scope(ctx.engine) as s:
        assert s.exec(select(Device).where(Device.serial == placeholder)).all() == []
        assert [r.dmi_serial for r in s.exec(select(Enrolment).order_by(Enrolment.id)).all()] == [
            "WB-0001",
            placeholder,
        ]  # type: ignore[arg-type]
