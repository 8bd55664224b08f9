"""A Windows tablet on a real line: its eMMC commands run in its service environment over SSH (a
real sshd), never on the bench host; without an endpoint or when it cannot be reached the job is
held with the reason and the device is untouched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.domain import receive, state_of
from harness.sshd import SshdTarget, one_sshd_target
from sqlmodel import col, select

from factory.intake.service import MediaSpec, register_endpoint
from factory.kernel.db.engine import session_scope
from factory.line.bench_config import load_line_config
from factory.line.controller import Controller
from factory.line.models import Job
from factory.tablets.service import TabletBench
from hardware_drivers.events import DeviceAttached

pytestmark = pytest.mark.slow  # a real sshd per module and three line runs

SERIAL = "PTB55G20042"
PORT = "pci-0000:00:14.0-usb-0:3.3"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdTarget]:
    yield from one_sshd_target(tmp_path_factory.mktemp("wintab"), prefix="wt")


def gadget() -> DeviceAttached:
    """The Windows tablet booted from the bench stick, as tests/fixtures/udev/bench1-windows-tablet.umockdev."""
    return DeviceAttached(
        subsystem="usb",
        sys_path="/sys/devices/pci0000:00/0000:00:14.0/usb3/3-3/3-3.3",
        device_node="/dev/bus/usb/003/007",
        devtype="usb_device",
        serial=SERIAL,
        vendor="Linux_6.1.0-28-amd64_with_dwc3-pci",
        model="Device_Factory_service_environment",
        id_path=PORT,
        bench_port=None,
        size_bytes=None,
        vendor_id="1d6b",
        product_id="0104",
        usb_interfaces=":020d00:0a0000:",
    )


def run_line(ctx, tmp_path: Path, key: Path) -> Job:
    site = tmp_path / "site.toml"
    site.write_text(
        'agent = "win-agent"\nerase_processes = 0\n[[bench]]\nname = "bench-1"\nslots = [{position = 1}]\n'
        f'[port_map]\nudev = [{{id_path = "{PORT}", slot = "bench-1/slot-1"}}]\n'
        f'[service_env]\nssh_private_key = "{key}"\n'
    )
    controller = Controller(ctx, load_line_config(site), tablets=TabletBench())  # a real bench: tools run for real
    controller.start()
    try:
        controller.submit(gadget())
        assert controller.wait_idle(60)
        with session_scope(controller.engine) as s:
            job = s.exec(select(Job).order_by(col(Job.id).desc())).first()
            assert job is not None
            return job
    finally:
        controller.stop(drain_seconds=5)


def test_the_emmc_is_read_in_the_service_environment_over_ssh(ctx, tmp_path: Path, target: SshdTarget) -> None:
    receive(ctx, SERIAL, [MediaSpec("emmc", SERIAL, 64 * 10**9)], kind="tablet")
    with session_scope(ctx.engine) as s:
        register_endpoint(
            s, SERIAL, address="127.0.0.1", port=target.port, username="root", host_key=target.host_key_pub, actor="t"
        )
    job = run_line(ctx, tmp_path, target.client_key)
    # The real mmc ran over SSH in the service environment, which has no eMMC: held with its answer.
    reason = job.reason or ""
    assert job.status == "held" and reason.startswith("mmc extcsd:"), reason
    assert "open: No such file or directory" in reason  # the login shell may add its own lines before it
    assert state_of(ctx, SERIAL) == "received"


def test_an_unreachable_service_environment_holds_the_job(ctx, tmp_path: Path, target: SshdTarget) -> None:
    receive(ctx, SERIAL, [MediaSpec("emmc", SERIAL, 64 * 10**9)], kind="tablet")
    with session_scope(ctx.engine) as s:
        register_endpoint(
            s, SERIAL, address="127.0.0.1", port=1, username="root", host_key=target.host_key_pub, actor="t"
        )
    job = run_line(ctx, tmp_path, target.client_key)
    assert job.status == "held" and (job.reason or "").startswith("service environment unreachable"), job.reason


def test_without_an_endpoint_a_windows_tablet_is_held(ctx, tmp_path: Path, target: SshdTarget) -> None:
    receive(ctx, SERIAL, [MediaSpec("emmc", SERIAL, 64 * 10**9)], kind="tablet")
    job = run_line(ctx, tmp_path, target.client_key)
    assert (job.status, job.reason) == ("held", "no service-environment endpoint recorded for this Windows tablet")
    assert state_of(ctx, SERIAL) == "received"
