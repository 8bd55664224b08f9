"""Who a tablet is and what state it is in, read with the platform's own tools (the "before" evidence).

One :class:`TabletProbe` per platform, every tool call through the command seam and kept on the
probe. A probe with a ``problem`` could not identify the tablet (locked, untrusted, not reachable)
and says what the technician must do; nothing is erased from such a probe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from imaging.commands import CommandRunner
from imaging.result import CommandRecord
from imaging.tablets import android, emmc, ios
from imaging.tablets.disks import TabletDisk, find_disks

IPADOS, ANDROID, WINDOWS = "ipados", "android", "windows"
PLATFORMS = (IPADOS, ANDROID, WINDOWS)


@dataclass(frozen=True)
class TabletProbe:
    platform: str
    ref: str  # what the tools address: UDID, adb serial, or the eMMC device node
    serial: str | None = None
    udid: str | None = None
    imei: str | None = None
    maker: str | None = None
    model: str | None = None
    os_build: str | None = None
    encrypted: bool | None = None  # None: not known (a crypto erase is then refused)
    encryption: str = "unknown"
    lock: str | None = None  # Activation Lock / Factory Reset Protection: blocks redistribution
    supervised: bool | None = None
    device_owner: str | None = None
    setup_complete: bool | None = None  # False: in its setup wizard / unactivated
    emmc: emmc.ExtCsd | None = None
    # A Windows tablet's NVMe / SATA disks in its service environment (its recorded media there)
    disks: tuple[TabletDisk, ...] = ()
    users: tuple[int, ...] | None = None  # Android user and profile ids (read after a reset over USB)
    problem: str | None = None
    action: str | None = None
    commands: tuple[CommandRecord, ...] = field(default=(), repr=False)

    @property
    def identified(self) -> bool:
        return self.problem is None

    def evidence(self) -> dict[str, Any]:
        """What the custody record keeps of it (no account names, no tool output)."""
        return {
            "platform": self.platform,
            "serial": self.serial,
            "udid": self.udid,
            "imei": self.imei,
            "model": self.model,
            "os_build": self.os_build,
            "encrypted": self.encrypted,
            "encryption": self.encryption,
            "lock": self.lock,
            "supervised": self.supervised,
            "device_owner": self.device_owner,
            "setup_complete": self.setup_complete,
        }

    def read_back_evidence(self) -> dict[str, Any]:
        """What the custody record keeps of the tablet read again after its reset."""
        if not self.identified:
            return {"platform": self.platform, "read": False, "problem": self.problem}
        return {
            "platform": self.platform,
            "read": True,
            "serial": self.serial,
            "udid": self.udid,
            "model": self.model,
            "setup_complete": self.setup_complete,
            "users": list(self.users) if self.users is not None else None,
            "lock": self.lock,
        }


def probe_ipad(runner: CommandRunner, udid: str) -> TabletProbe:
    base = TabletProbe(IPADOS, udid, udid=udid, maker="Apple")
    pairing, paired = ios.validate_pairing(runner, udid)
    if not pairing.trusted:
        return replace(base, problem=pairing.problem, action=pairing.action, commands=(paired,))
    info, record = ios.read_info(runner, udid)
    chaperone, chaperone_record = ios.read_info(runner, udid, "com.apple.mobile.chaperone")
    commands = (paired, record, chaperone_record)
    if not info:
        return replace(base, problem=ios.failure(record, "ideviceinfo"), action="re-insert the iPad", commands=commands)
    return replace(
        base,
        serial=info.get("SerialNumber"),
        udid=info.get("UniqueDeviceID", udid),
        imei=info.get("InternationalMobileEquipmentIdentity"),
        model=info.get("ProductType"),
        os_build=f"{info.get('ProductVersion', '?')} ({info.get('BuildVersion', '?')})",
        # iPadOS encrypts all user data with Data Protection keys from first use; an erase destroys them.
        encrypted=True,
        encryption="Data Protection (hardware AES, always on)",
        supervised=chaperone.get("DeviceIsChaperoned") == "true" if chaperone else None,
        setup_complete=_activated(info),
        commands=commands,
    )


def probe_ipad_after_reset(runner: CommandRunner, udid: str) -> TabletProbe:
    """An erased iPad trusts no host: read what it tells without pairing (identity, activation)."""
    info, record = ios.read_info(runner, udid, simple=True)
    base = TabletProbe(IPADOS, udid, udid=udid, maker="Apple", commands=(record,))
    if not info:
        return replace(base, problem=ios.failure(record, "ideviceinfo"), action="re-insert the iPad")
    return replace(
        base,
        serial=info.get("SerialNumber"),
        udid=info.get("UniqueDeviceID", udid),
        model=info.get("ProductType"),
        setup_complete=_activated(info),
    )


def _activated(info: dict[str, str]) -> bool | None:
    """Past activation unless lockdown says ``Unactivated``; not known when it did not say (an
    untrusted host's ``-s`` read may leave ``ActivationState`` out): never read as "reset done"."""
    state = info.get("ActivationState")
    return None if not state else state != "Unactivated"


def probe_android(runner: CommandRunner, serial: str) -> TabletProbe:
    base = TabletProbe(ANDROID, serial, serial=serial)
    listed, devices = android.list_devices(runner)
    if devices.returncode != 0:
        return replace(
            base, problem=android.failure(devices), action="report it: adb does not run", commands=(devices,)
        )
    seen = listed.get(serial)
    if seen is None or seen.state != "device":
        problem, action = android.STATE_PROBLEMS.get(
            seen.state if seen else "", ("adb does not list the tablet", "enable USB debugging, then re-insert it")
        )
        return replace(base, problem=problem, action=action, commands=(devices,))
    props, getprop = android.getprop(runner, serial)
    owner, owner_record = android.device_owner(runner, serial)
    accounts, account_record = android.google_accounts(runner, serial)
    setup, setup_record = android.setup_complete(runner, serial)
    commands = (devices, getprop, owner_record, account_record, setup_record)
    if not props:
        return replace(base, problem=android.failure(getprop), action="re-insert the tablet", commands=commands)
    if android.placeholder_serial(props.get("ro.serialno", serial)) or android.placeholder_serial(serial):
        problem, action = android.PLACEHOLDER_PROBLEM, android.PLACEHOLDER_ACTION
        return replace(base, problem=problem, action=action, commands=commands)
    state, kind = props.get("ro.crypto.state"), props.get("ro.crypto.type")
    encryption = f"ro.crypto.state={state or 'unset'}, ro.crypto.type={kind or 'unset'}"
    return replace(
        base,
        serial=props.get("ro.serialno", serial),
        maker=props.get("ro.product.manufacturer"),
        model=props.get("ro.product.model"),
        os_build=props.get("ro.build.fingerprint"),
        encrypted=android.encrypted(props),
        encryption=("file-based encryption, " if kind == "file" else "") + encryption,
        lock=_frp(accounts, props),
        device_owner=owner,
        setup_complete=setup,
        commands=commands,
    )


NOT_BACK = "the tablet is not back on adb after its reset"


def probe_android_after_reset(runner: CommandRunner, serial: str) -> TabletProbe:
    """A tablet reset over USB, back on adb: who it is (``ro.serialno``), whether it is in its setup
    wizard (``user_setup_complete`` and ``device_provisioned`` both 0) with only the system user, and
    whether Factory Reset Protection holds it (``secure_frp_mode``)."""
    base = TabletProbe(ANDROID, serial)
    listed, devices = android.list_devices(runner)
    seen = listed.get(serial)
    if seen is None or seen.state != "device":
        problem = android.STATE_PROBLEMS[seen.state][0] if seen and seen.state in android.STATE_PROBLEMS else NOT_BACK
        return replace(base, problem=problem, action="re-sanitise or destroy the tablet", commands=(devices,))
    props, getprop = android.getprop(runner, serial)
    user_setup, user_record = android.setting(runner, serial, "secure", "user_setup_complete")
    provisioned, provisioned_record = android.setting(runner, serial, "global", "device_provisioned")
    ids, users_record = android.users(runner, serial)
    frp, frp_record = android.setting(runner, serial, "global", "secure_frp_mode")
    commands = (devices, getprop, user_record, provisioned_record, users_record, frp_record)
    if not props.get("ro.serialno"):
        return replace(base, problem=android.failure(getprop), action="re-insert the tablet", commands=commands)
    return replace(
        base,
        serial=props["ro.serialno"],
        maker=props.get("ro.product.manufacturer"),
        model=props.get("ro.product.model"),
        os_build=props.get("ro.build.fingerprint"),
        setup_complete=_set_up(user_setup, provisioned),
        users=ids,
        lock="Factory Reset Protection on (secure_frp_mode=1)" if frp else None,
        commands=commands,
    )


def _set_up(user_setup: bool | None, provisioned: bool | None) -> bool | None:
    """Set up if either flag says so; in the setup wizard only when no flag does and one was read."""
    if user_setup or provisioned:
        return True
    return None if user_setup is None and provisioned is None else False


def _frp(accounts: int | None, props: dict[str, str]) -> str | None:
    """A Google account on a tablet with an FRP partition turns protection on after a reset."""
    if not props.get("ro.frp.pst"):
        return None
    if accounts is None:
        return "Factory Reset Protection state unknown (accounts could not be read)"
    return f"Factory Reset Protection on ({accounts} Google account(s))" if accounts else None


def probe_windows(
    runner: CommandRunner, dev: str, serial: str | None, disks: Sequence[str] = (), nodes: Sequence[str] = ()
) -> TabletProbe:
    """A Windows tablet in its service environment: its NVMe / SATA disks where media other than an
    eMMC are recorded on it (``disks``: their serials; ``nodes``: where to look, else every disk
    there), else its eMMC at ``dev`` through ``mmc extcsd read``."""
    if disks:
        return _probe_windows_disks(runner, serial, disks, nodes)
    base = TabletProbe(WINDOWS, dev, serial=serial)
    ext, record = emmc.read_extcsd(runner, dev)
    if ext is None:
        return replace(
            base, problem=emmc.failure(record), action="check the tablet booted the bench stick", commands=(record,)
        )
    return replace(
        base, emmc=ext, model=f"eMMC {ext.mmc_version}", encryption="not used by the eMMC methods", commands=(record,)
    )


def _probe_windows_disks(
    runner: CommandRunner, serial: str | None, media: Sequence[str], nodes: Sequence[str]
) -> TabletProbe:
    search = find_disks(runner, media, nodes)
    base = TabletProbe(WINDOWS, serial or "", serial=serial, commands=search.commands)
    if search.problem is not None:
        action = "check the tablet booted the bench stick and its recorded media; re-insert it"
        return replace(base, problem=search.problem, action=action)
    first = search.disks[0].probe
    models = ", ".join(f"{d.probe.media_type} {d.probe.model or '?'}" for d in search.disks)
    return replace(
        base,
        ref=first.path,
        disks=search.disks,
        model=models,
        encryption="not used by the disk methods",
    )
