"""The tools' real answers recorded on this machine (tests/fixtures/tablets/recorded-no-device.json:
no tablet attached, so what they print is the no-device answer), replayed through the command
seam: each becomes a problem with the technician's action or a failed tool call, never an identity.
test_real_tools.py runs the same tools live; this replay keeps their exact text under test where
the tools are not installed, and is the ground truth the written fixtures' messages follow."""

from __future__ import annotations

from pathlib import Path

from imaging.commands import ReplayRunner
from imaging.tablets import android, emmc, ios
from imaging.tablets.identity import probe_android, probe_ipad, probe_ipad_after_reset, probe_windows

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "tablets" / "recorded-no-device.json"
UDID = "00008103-001A2B3C4D5E001E"


def recorded() -> ReplayRunner:
    return ReplayRunner(RECORDED, device="/dev/null")


def test_the_recorded_idevice_answers_are_an_unreachable_ipad() -> None:
    probe = probe_ipad(recorded(), UDID)
    assert (probe.identified, probe.problem) == (False, "the iPad is not reachable over usbmux")
    assert probe.action == "check the cable and that usbmuxd runs"
    listed, record = ios.listed_udids(recorded())  # no usbmuxd: the list cannot be read, proves nothing
    assert listed is None and record.stderr == "ERROR: Unable to retrieve device list!\n"
    after = probe_ipad_after_reset(recorded(), UDID)
    assert not after.identified and after.problem == f"ideviceinfo: ERROR: Device {UDID} not found!"


def test_the_recorded_adb_answers_are_a_tablet_not_listed() -> None:
    probe = probe_android(recorded(), "R52N50ABCDE")
    assert (probe.identified, probe.problem) == (False, "adb does not list the tablet")
    props, record = android.getprop(recorded(), "R52N50ABCDE")
    assert props == {} and "error: device 'R52N50ABCDE' not found" in android.failure(record)


def test_the_recorded_mmc_answers_on_a_node_that_is_no_emmc() -> None:
    probe = probe_windows(recorded(), "/dev/null", None)
    assert probe.emmc is None and probe.problem == (
        "mmc extcsd: ioctl: Inappropriate ioctl for device | Could not read EXT_CSD from /dev/null"
    )
    refused = emmc.sanitize(recorded(), "/dev/null")
    assert emmc.failure(refused) == (
        "mmc sanitize: ioctl: Inappropriate ioctl for device | Could not write 0x01 to EXT_CSD[165] in /dev/null"
    )
