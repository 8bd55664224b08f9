"""umockdev recordings of an iPad, an Android tablet and a Windows tablet (booted from the bench
stick) arriving on a bench hub: udev's events (through hardware_drivers.udev under umockdev) place
each in its slot through the site's port map and drive a job on the board. The tools and the
services behind the bench are the recorded replays (tests/fixtures/tablets), on a real line config.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.domain import receive
from harness.requirements import require, require_tool
from sqlmodel import col, select

from factory.intake.service import MediaSpec
from factory.kernel.db.engine import session_scope
from factory.kernel.models.certificate import Certificate
from factory.line.bench_config import load_line_config
from factory.line.controller import Controller
from factory.line.models import Job, JobStep, Slot
from factory.line.views import board_snapshot
from factory.tablets.service import TabletBench
from hardware_drivers.events import DeviceAttached
from hardware_drivers.tablet_usb import classify
from imaging.commands import ReplayRunner
from imaging.tablets.device_management import AndroidManagement, AppleMdm, IntuneGraph, WipeWait
from imaging.tablets.methods import CRYPTO_RESET

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "tests" / "harness" / "umockdev_run.py"
UDEV = REPO / "tests" / "fixtures" / "udev"
TABLETS = REPO / "tests" / "fixtures" / "tablets"
UDID = "00008103-001A2B3C4D5E001E"
# recording -> (slot, USB serial, the device as booked in: serial, medium type, medium serial)
ARRIVALS = {
    "bench1-ipad.umockdev": ("bench-1/slot-1", "00008103001A2B3C4D5E001E", ("DMPXK4QJ2R", "nvme", UDID)),
    "bench1-android-tablet.umockdev": ("bench-1/slot-2", "R52N50ABCDE", ("R52N50ABCDE", "ufs", "R52N50ABCDE")),
    "bench1-windows-tablet.umockdev": ("bench-1/slot-3", "PTB55G20042", ("PTB55G20042", "emmc", "PTB55G20042")),
}


def replayed_events(recording: str) -> list[dict[str, Any]]:
    """The typed events hardware_drivers.udev makes of the recording, under umockdev."""
    wrapper = require_tool("umockdev-wrapper")
    require(importlib.util.find_spec("gi") is not None, "needs PyGObject (pip install 'PyGObject<3.51')")
    proc = subprocess.run(
        [wrapper, sys.executable, str(HARNESS), "replay", str(UDEV / recording)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def replay_bench() -> TabletBench:
    """The bench's seam serving each tablet's recorded tools and service answers."""
    runners = {
        "00008103-001A2B3C4D5E001E": ReplayRunner(TABLETS / "ipad-mdm-acknowledged.json", device=UDID),
        "R52N50ABCDE": ReplayRunner(TABLETS / "android-amapi-acknowledged.json", device="R52N50ABCDE"),
        "PTB55G20042": ReplayRunner(TABLETS / "windows-emmc-sanitize.json", device="/dev/mmcblk0"),
    }
    seam = runners["R52N50ABCDE"]
    management = {
        "ipados": AppleMdm(runners[UDID], "https://mdm.example.invalid"),
        "android": AndroidManagement(seam, "LC02abcd"),
        "windows": IntuneGraph(runners["PTB55G20042"], windows=True),
    }
    return TabletBench(management, runner_for=runners.__getitem__, wait=WipeWait(0.0, 5.0), windows_here=True)


@pytest.fixture
def hub_line(ctx, tmp_path: Path) -> Iterator[Controller]:
    site = tmp_path / "site.toml"
    wiring = ", ".join(f'{{id_path = "pci-0000:00:14.0-usb-0:3.{n}", slot = "bench-1/slot-{n}"}}' for n in (1, 2, 3))
    site.write_text(
        'agent = "hub-agent"\nerase_processes = 0\n'
        '[[bench]]\nname = "bench-1"\nslots = [{position = 1}, {position = 2}, {position = 3}]\n'
        f"[port_map]\nudev = [{wiring}]\n"
    )
    controller = Controller(ctx, load_line_config(site), tablets=replay_bench())
    controller.start()
    try:
        yield controller
    finally:
        controller.stop(drain_seconds=5)


@pytest.mark.slow  # a umockdev subprocess per recording and three full jobs
def test_recorded_tablets_arrive_on_the_hub_and_drive_jobs_on_the_board(ctx, hub_line: Controller) -> None:
    for recording, (_, usb_serial, (serial, medium, medium_serial)) in ARRIVALS.items():
        receive(ctx, serial, [MediaSpec(medium, medium_serial, 64 * 10**9)], kind="tablet")
        events = [e for e in replayed_events(recording) if e["phase"] == "monitor"]
        [tablet] = [e for e in events if e["serial"] == usb_serial]
        fields = {k: v for k, v in tablet.items() if k not in {"phase", "event", "action"}}
        event = DeviceAttached(**fields)
        assert classify(event) is not None
        for seen in events:  # the hub too: a device on an unwired port is only a notice
            hub_line.submit(DeviceAttached(**{k: v for k, v in seen.items() if k not in {"phase", "event", "action"}}))
    assert hub_line.wait_idle(60)

    with session_scope(hub_line.engine) as s:
        jobs = {
            code: (job.status, job.reason, job.device_serial)
            for job, code in s.exec(select(Job, Slot.code).join(Slot, col(Slot.id) == Job.slot_id)).all()
        }
        steps = [(st.name, st.status) for st in s.exec(select(JobStep).order_by(col(JobStep.id))).all()]
        methods = sorted(c.method for c in s.exec(select(Certificate)).all())
        board = board_snapshot(s)
    assert jobs == {
        "bench-1/slot-1": ("succeeded", None, "DMPXK4QJ2R"),
        "bench-1/slot-2": ("succeeded", None, "R52N50ABCDE"),
        "bench-1/slot-3": ("succeeded", None, "PTB55G20042"),
    }, jobs
    assert steps.count(("enrol (device management)", "succeeded")) == 3
    assert methods == [CRYPTO_RESET, CRYPTO_RESET, "eMMC secure erase + sanitize"]
    shown = {slot["code"]: slot["job"]["pipeline"] for slot in board["benches"][0]["slots"]}
    assert shown == {
        "bench-1/slot-1": "ipados tablet sanitise-provision",
        "bench-1/slot-2": "android tablet sanitise-provision",
        "bench-1/slot-3": "windows tablet sanitise-provision",
    }
