"""The tablet tools' output variants real devices show (tests/fixtures/tablets/README.md, "Variants
seen on real devices"): each fixture is our own text in the variant's format, made-up identifiers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from imaging.commands import utc_now
from imaging.errors import PlanError
from imaging.result import CommandRecord, Level
from imaging.tablets import android, emmc, ios
from imaging.tablets.device_management import AndroidManagement
from imaging.tablets.failure import ENCRYPTION_UNKNOWN, NOT_ENCRYPTED, from_plan
from imaging.tablets.identity import probe_android, probe_android_after_reset, probe_ipad_after_reset
from imaging.tablets.methods import ResetContext, ResetOutcome, plan_reset
from imaging.tablets.reset import after_checks

OUTPUTS = Path(__file__).resolve().parents[1] / "fixtures" / "tablets" / "outputs"
SERIAL = "R9TQ20XYZ01"
UDID = "00008112-000A1B2C3D4E801E"


def output(name: str, dev: str = SERIAL) -> str:
    return (OUTPUTS / name).read_bytes().decode().replace("{dev}", dev)  # bytes: CRLF kept as the tool sent it


class ToolOutputs:
    """Answers each command with the output of the first argv fragment it contains (else nothing, exit 0)."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord:
        line = " ".join(argv)
        stdout = next((text for fragment, text in self.answers.items() if fragment in line), "")
        now = utc_now()
        return CommandRecord(tuple(argv), 0, stdout, "", now, now)


@pytest.mark.parametrize(
    ("fixture", "state", "problem"),
    [
        ("adb-devices-no-permissions.txt", "no permissions", "no permission to open the tablet's USB device"),
        ("adb-devices-authorizing.txt", "authorizing", "still authorising"),
    ],
)
def test_adb_states_real_benches_show_are_recognised(fixture: str, state: str, problem: str) -> None:
    assert android.parse_devices(output(fixture))[SERIAL].state == state
    probe = probe_android(ToolOutputs({"devices -l": output(fixture)}), SERIAL)
    assert not probe.identified
    assert problem in (probe.problem or "") and "USB debugging" not in (probe.action or "")


def test_two_tablets_sharing_a_placeholder_serial_are_never_one_of_them() -> None:
    listed = android.parse_devices(output("adb-devices-shared-serial.txt"))
    assert [(d.serial, d.state) for d in listed.values()] == [("0123456789ABCDEF", android.SHARED)]
    runner = ToolOutputs({"devices -l": output("adb-devices-shared-serial.txt"), "getprop": "[ro.serialno]: [x]\n"})
    after = probe_android_after_reset(runner, "0123456789ABCDEF")  # the other tablet must not pass as "back"
    assert not after.identified and "cannot tell them apart" in (after.problem or "")


@pytest.mark.parametrize("placeholder", ["0123456789ABCDEF", "0123456789", "0000000000000000", "unknown"])
def test_a_tablet_reporting_a_placeholder_serial_is_not_identified(placeholder: str) -> None:
    # Alone on the bench it is listed as any tablet is; its serial would still make it every such tablet.
    runner = ToolOutputs(
        {
            "devices -l": output("adb-devices-one.txt", placeholder),
            "getprop": output("adb-getprop-encrypted.txt", placeholder),
        }
    )
    probe = probe_android(runner, placeholder)
    assert not probe.identified and probe.serial == placeholder
    assert "placeholder serial" in (probe.problem or "") and "set it aside" in (probe.action or "")
    assert probe.evidence()["encrypted"] is None  # nothing read past the serial is kept


def test_real_serials_are_not_taken_for_placeholders() -> None:
    assert not any(map(android.placeholder_serial, [SERIAL, "0123456789ABCDEG", "ce0217127b5d1e2a03", "HA1K2PQR"]))
    assert probe_android(
        ToolOutputs({"devices -l": output("adb-devices-one.txt"), "getprop": output("adb-getprop-encrypted.txt")}),
        SERIAL,
    ).identified


def test_getprop_with_crlf_line_ends_and_a_value_spanning_lines() -> None:
    props = android.parse_props(output("adb-getprop-multiline-crlf.txt"))
    assert props["persist.sys.boot.reason.history"].splitlines() == [
        "reboot,shell,1767250000",
        "reboot,ota,1766000000",
        "shutdown,battery,1765000000",
    ]
    assert (props["ro.crypto.state"], props["ro.crypto.type"], props["ro.serialno"]) == ("encrypted", "file", SERIAL)
    assert props["ro.vendor.empty"] == "" and props["sys.boot_completed"] == "1"


def test_a_line_inside_a_multi_line_value_is_not_read_as_a_property() -> None:
    text = "[persist.vendor.log]: [first\n[ro.crypto.state]: [encrypted\nlast]\n[ro.product.model]: [Tab 8]\n"
    assert android.parse_props(text) == {
        "persist.vendor.log": "first\n[ro.crypto.state]: [encrypted\nlast",
        "ro.product.model": "Tab 8",
    }


def test_getprop_without_ro_crypto_state_is_encryption_unknown_and_no_crypto_erase() -> None:
    runner = ToolOutputs({"devices -l": output("adb-devices-one.txt"), "getprop": output("adb-getprop-booting.txt")})
    probe = probe_android(runner, SERIAL)
    assert probe.identified and probe.serial == SERIAL
    assert probe.encrypted is None  # unknown, not "not encrypted"
    ctx = ResetContext(runner, {"android": AndroidManagement(runner, "LC02abcd")}, "3a9f61c0e2b14d57")
    with pytest.raises(PlanError, match="encryption state unknown") as refused:
        plan_reset(probe, ctx, Level.PURGE)
    # Not sent to destruction as an unencrypted tablet is: it may only have been read too early.
    failure = from_plan(probe, refused.value)
    assert failure.kind == ENCRYPTION_UNKNOWN != NOT_ENCRYPTED
    assert failure.action.startswith("let it finish starting up") and "witnessed destruction" in failure.action


@pytest.mark.parametrize(("state", "expected"), [("encrypted", True), ("unencrypted", False), ("unsupported", False)])
def test_getprop_crypto_states_vold_sets(state: str, expected: bool) -> None:
    assert android.encrypted({"ro.crypto.state": state}) is expected


def test_dumpsys_device_policy_with_crlf_line_ends_names_the_owner() -> None:
    text = output("adb-dumpsys-device-policy-owner.txt").replace("\n", "\r\r\n")
    assert android.parse_device_owner(text) == "uk.police.dpc"


def test_pm_list_users_of_android_14_with_flag_bits_and_a_named_secondary_user() -> None:
    runner = ToolOutputs({"list users": output("adb-pm-list-users-android14.txt")})
    assert android.users(runner, SERIAL)[0] == (0, 11)


def test_ideviceinfo_simple_read_without_activation_state_is_not_a_reset_iPad() -> None:
    runner = ToolOutputs({"ideviceinfo": output("ideviceinfo-ipad-simple-no-activation.txt", UDID)})
    after = probe_ipad_after_reset(runner, UDID)
    assert after.identified and after.setup_complete is None and after.serial is None
    before = probe_ipad_after_reset(ToolOutputs({"ideviceinfo": output("ideviceinfo-ipad.txt", UDID)}), UDID)
    checks = {
        c.name: c for c in after_checks(before, after, ResetOutcome(("sent",), "usb (supervised erase)"), expected=True)
    }
    assert not checks["in setup state"].passed and checks["in setup state"].detail == "unknown"


def test_ideviceinfo_nested_and_empty_values_keep_the_top_level_keys() -> None:
    info = ios.parse_info(output("ideviceinfo-ipad-nested-empty.txt", UDID))
    assert (info["ActivationState"], info["SerialNumber"], info["UniqueDeviceID"]) == ("Activated", "HX4QZ7V2LM", UDID)
    assert info["DeviceName"] == "Unit 7: evidence iPad" and info["SoftwareBundleVersion"] == ""
    assert not {"0", "1", "auto-boot", "PartitionType"} & set(info)


def test_mmc_extcsd_of_an_emmc_4_5_part_with_padded_lines() -> None:
    ext = emmc.parse_extcsd(output("mmc-extcsd-rev6-padded.txt"))
    assert (ext.revision, ext.mmc_version, ext.sanitize, ext.secure_erase, ext.sectors) == (
        6,
        "4.5",
        True,
        True,
        0x00E90000,
    )
