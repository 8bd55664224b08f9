"""Simulated tablets for ``--simulate`` only: iPads, Android and Windows tablets that answer the
bench's tools and its device-management services the way the real ones do (the same output
formats and response shapes the replay fixtures hold), so the line runs its real tablet steps.

The stand-in sits behind the bench's one command seam (``TabletBench.runner_for``); the controller
refuses a bench marked ``simulated`` on a real line.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from factory.tablets.service import TabletBench
from hardware_drivers.events import DeviceAttached, DeviceDetached, UdevEvent
from imaging.commands import NOT_FOUND, utc_now
from imaging.result import CommandRecord
from imaging.tablets import usb_erase
from imaging.tablets.device_management import AndroidManagement, AppleMdm, IntuneGraph, WipeWait

MDM = "https://mdm.sim.invalid"
ENTERPRISE = "LCsim"
# platform -> (USB vendor, product, interfaces, maker, model, medium type)
USB: dict[str, tuple[str, str, str, str, str, str]] = {
    "ipados": ("05ac", "12ab", ":060101:fffe02:", "Apple", "iPad13,18", "nvme"),
    "android": ("04e8", "6860", ":ffff00:ff4201:", "Samsung", "SM-T505", "ufs"),
    "windows": ("1d6b", "0104", ":020d00:0a0000:", "Panasonic", "FZ-G2", "emmc"),
}


@dataclass
class SimTablet:
    platform: str
    usb_serial: str  # what the hub reports
    serial: str  # the device's own serial (booked in under it)
    encrypted: bool = True
    wiped: bool = False
    restarted: bool = False  # left and came back on the bus after its reset
    emmc_sanitize: bool = True  # a Windows tablet's eMMC offers secure erase + sanitize
    emmc_image: Path | None = None  # its eMMC as a block device (a file) the bench sees, if any
    wipe_error: tuple[str, str] | None = None  # (errorCode, message) the Android service reports for its WIPE
    mdm_enrolled: bool = True  # an iPad the MDM reaches; a supervised one it does not is erased over USB

    @property
    def udid(self) -> str:
        return f"{self.usb_serial[:8]}-{self.usb_serial[8:]}"

    @property
    def ref(self) -> str:
        """What the tools address it by (and the medium is recorded under)."""
        return self.udid if self.platform == "ipados" else self.usb_serial


def new_tablet(platform: str, token: int, *, encrypted: bool = True) -> SimTablet:
    token &= 0xFFFFFFFF
    if platform == "ipados":  # one in three supervised iPads is not in the MDM: erased over USB
        return SimTablet(platform, f"00008103{token:016X}", f"DMP{token:09X}", encrypted, mdm_enrolled=token % 3 != 2)
    usb = f"R52{token:09X}" if platform == "android" else f"FZG2{token:08X}"
    return SimTablet(platform, usb, usb, encrypted)


def arrival_event(tablet: SimTablet, id_path: str, attached: bool = True) -> UdevEvent:
    vendor, product, interfaces, maker, model, _ = USB[tablet.platform]
    if tablet.wiped and tablet.platform == "android":
        interfaces = ":ffff00:"  # back in its setup wizard: USB debugging is off again
    cls = DeviceAttached if attached else DeviceDetached
    return cls(
        subsystem="usb",
        sys_path=f"/sys/devices/sim/{id_path}/{tablet.usb_serial}",
        device_node=None,
        devtype="usb_device",
        serial=tablet.usb_serial,
        vendor=maker,
        model=model,
        id_path=id_path,
        bench_port=None,
        size_bytes=None,
        vendor_id=vendor,
        product_id=product,
        usb_interfaces=interfaces,
    )


class SimulatedTablets:
    """The tablets on the simulated benches, by the reference the tools use."""

    def __init__(self) -> None:
        self._tablets: dict[str, SimTablet] = {}
        self._lock = threading.Lock()
        self.on_restart: Callable[[SimTablet], None] | None = None  # the simulated line re-plugs it

    def add(self, tablet: SimTablet) -> None:
        with self._lock:
            self._tablets[tablet.ref] = tablet
            if tablet.platform == "android":
                self._tablets[tablet.serial or tablet.usb_serial] = tablet

    def bench(self) -> TabletBench:
        mdm = AppleMdm(_Seam(self, None), MDM)
        android = AndroidManagement(_Seam(self, None), ENTERPRISE)
        intune = IntuneGraph(_Seam(self, None), windows=True)  # Windows tablets: Autopilot profile
        return TabletBench(
            {"ipados": mdm, "android": android, "windows": intune},
            runner_for=lambda ref: _Seam(self, ref),
            wait=WipeWait(poll_interval=0.05, deadline_seconds=30.0),
            simulated=True,
            windows_here=True,  # the stand-in plays the service environment too
            emmc_exposed=self.emmc_image,
            usb_erase_tool=True,  # and pymobiledevice3's erase over USB
        )

    def emmc_image(self, ref: str) -> str | None:
        tablet = self.find(ref)
        return str(tablet.emmc_image) if tablet is not None and tablet.emmc_image is not None else None

    def find(self, ref: str | None) -> SimTablet | None:
        with self._lock:
            if ref is None:
                return None
            return self._tablets.get(ref) or next((t for t in self._tablets.values() if ref in t.ref), None)


class _Seam:
    """One tablet's command seam: its tools and the services' answers about it."""

    def __init__(self, tablets: SimulatedTablets, ref: str | None) -> None:
        self.tablets, self.ref = tablets, ref

    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord:
        argv = tuple(argv)
        started = utc_now()
        tablet = self.tablets.find(self.ref) or self.tablets.find(_ref_in(argv))
        if tablet is None:
            return CommandRecord(argv, 1, "", "ERROR: No device found!\n", started, utc_now())
        out, rc = _answer(tablet, argv)
        if tablet.wiped and not tablet.restarted and tablet.platform != "windows":
            tablet.restarted = True  # the reset restarts it: it leaves the bus and comes back
            if self.tablets.on_restart is not None:
                self.tablets.on_restart(tablet)
        if argv[0] == usb_erase.TOOL:  # it logs on stderr, as coloredlogs does
            return CommandRecord(argv, rc, "", out, started, utc_now())
        return CommandRecord(argv, rc, out, "" if rc in (0, 200, 204) else out, started, utc_now())


def _ref_in(argv: tuple[str, ...]) -> str | None:
    for part in argv:
        for piece in part.replace("'", "/").split("/"):
            if len(piece) >= 12 and piece[:3] in ("000", "R52", "FZG"):
                return piece
    return None


def _answer(t: SimTablet, argv: tuple[str, ...]) -> tuple[str, int]:
    tool = argv[0]
    if tool == "idevicepair":
        return f"SUCCESS: Validated pairing with device {t.udid}\n", 0
    if tool == "ideviceinfo":
        return _ideviceinfo(t, argv), 0
    if tool == "idevice_id":  # an erasing iPad restarts: off usbmuxd's list
        return ("" if t.wiped else f"{t.udid}\n"), 0
    if tool == "adb":
        return _adb(t, argv)
    if tool == "mmc":
        return _mmc(t, argv)
    if tool == "https":
        return _https(t, argv)
    if argv[:3] == (usb_erase.TOOL, "profile", "erase-device"):
        t.wiped = True  # the supervised iPad took the request and erases itself
        log = "2026-01-01 00:00:00 sim pymobiledevice3.cli.profile[1] INFO"
        erasing = "Erasing device with preserve_data_plan: False, disallow_proximity_setup: True"
        return f"{log} {erasing}\n{log} Erased device\n", 0
    return f"{tool}: command not found", NOT_FOUND


def _ideviceinfo(t: SimTablet, argv: tuple[str, ...]) -> str:
    if "com.apple.mobile.chaperone" in argv:
        return "DeviceIsChaperoned: true\n"
    state = "Unactivated" if t.wiped else "Activated"
    return (
        f"ActivationState: {state}\nBuildVersion: 21E236\nDeviceClass: iPad\nProductType: iPad13,18\n"
        f"ProductVersion: 17.4.1\nSerialNumber: {t.serial}\nUniqueDeviceID: {t.udid}\n"
    )


def _adb(t: SimTablet, argv: tuple[str, ...]) -> tuple[str, int]:
    if argv[1:] == ("devices", "-l"):
        listed = "" if t.wiped else f"{t.usb_serial}            device usb:1-1.2 model:SM_T505 transport_id:1\n"
        return f"List of devices attached\n{listed}\n", 0
    command = " ".join(argv[3:])
    if command == "shell getprop":
        state = "encrypted" if t.encrypted else "unencrypted"
        kind = "file" if t.encrypted else "none"
        props = {
            "ro.serialno": t.usb_serial,
            "ro.product.manufacturer": "samsung",
            "ro.product.model": "SM-T505",
            "ro.build.fingerprint": "samsung/gta4lwifieea/gta4lwifi:12/SP1A.210812.016/T505XXS5CWB1:user/release-keys",
            "ro.crypto.state": state,
            "ro.crypto.type": kind,
        }
        return "".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items())), 0
    if command == "shell dumpsys device_policy":
        return "Current Device Policy Manager state:\n  Immutable state:\n    mHasFeature=true\n", 0
    if command == "shell dumpsys account":
        return "User UserInfo{0:Owner:c13}:\n  Accounts: 0\n", 0
    if command.startswith("shell settings get"):
        return "0\n" if t.wiped else "1\n", 0
    return f"error: unknown command {command}", 1


def _mmc(t: SimTablet, argv: tuple[str, ...]) -> tuple[str, int]:
    if argv[1:3] == ("extcsd", "read"):
        features = "0x55" if t.emmc_sanitize else "0x15"  # bit 6: sanitize (SEC_SANITIZE)
        return (
            f"  Extended CSD rev 1.8 (MMC 5.1)\nSecure Feature support [SEC_FEATURE_SUPPORT: {features}]\n"
            "Sector Count [SEC_COUNT: 0x0733c000]\nErased memory content [ERASED_MEM_CONT: 0x00]\n"
        ), 0
    if argv[1] == "erase":
        return f"Executing Secure Erase from 0x00000000 to {argv[4]}\n Secure Erase Succeed!\n\n", 0
    return "", 0


def _https(t: SimTablet, argv: tuple[str, ...]) -> tuple[str, int]:
    method, url = argv[1], argv[2]
    if "/v1/enqueue/" in url:
        return json.dumps({"command_uuid": str(uuid.uuid4()).upper(), "request_type": "EraseDevice"}), 200
    if "/v1/results/" in url:
        t.wiped = True  # the iPad acknowledged and erased itself
        return json.dumps({"UDID": t.udid, "CommandUUID": url.rsplit("/", 1)[-1], "Status": "Acknowledged"}), 200
    if "/v1/devices/" in url and not t.mdm_enrolled:
        return json.dumps({"error": {"message": "enrollment not found"}}), 404
    if "/v1/devices/" in url:
        return json.dumps({"UDID": t.udid, "IsSupervised": True, "IsActivationLockEnabled": False}), 200
    if "/v1/dep/profile/devices" in url:
        return json.dumps({"devices": {t.serial: "SUCCESS"}}), 200
    if "managedDevices?$filter" in url:
        return json.dumps({"value": [{"id": f"sim-{t.serial}"}]}), 200
    if "windowsAutopilotDeploymentProfiles" in url:
        return "", 204
    device = f"enterprises/{ENTERPRISE}/devices/sim{t.usb_serial}"
    if url.endswith(f"enterprises/{ENTERPRISE}/devices") and method == "GET":
        return json.dumps({"devices": [{"name": device, "hardwareInfo": {"serialNumber": t.usb_serial}}]}), 200
    if url.endswith(":issueCommand"):
        return json.dumps({"name": f"{device}/operations/1", "done": False}), 200
    if "/operations/" in url:
        meta = {"type": "WIPE", "createTime": utc_now(), "userName": f"enterprises/{ENTERPRISE}/users/sim"}
        if t.wipe_error is not None:  # the Android Management API's failed operation
            code, message = t.wipe_error
            failed = {"done": True, "metadata": {**meta, "errorCode": code}, "error": {"code": 9, "message": message}}
            return json.dumps({"name": f"{device}/operations/1", **failed}), 200
        t.wiped = True
        return json.dumps({"name": f"{device}/operations/1", "done": True, "metadata": meta}), 200
    if url.endswith("/enrollmentTokens"):
        return json.dumps({"name": f"enterprises/{ENTERPRISE}/enrollmentTokens/sim", "value": "SIMTOKEN"}), 200
    return json.dumps({"error": {"message": f"no such resource {url}"}}), 404
