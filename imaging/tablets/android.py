"""Android tablets over USB: Debian's ``adb`` through the command seam.

``adb devices -l`` says whether the tablet is authorised (an unanswered "Allow USB debugging?"
dialog shows as ``unauthorized``); ``adb -s SERIAL shell getprop`` gives identity and encryption
(``ro.crypto.state``, ``ro.crypto.type`` = ``file`` for file-based encryption); ``dumpsys
device_policy`` names the device owner; ``dumpsys account`` shows the Google accounts whose
presence turns on factory-reset protection after a reset; ``settings get secure
user_setup_complete`` tells a device still in its setup wizard.

After a reset over USB the tablet itself is the only witness: it is read again once it is back on
``adb`` (``identity.probe_android_after_reset``): ``ro.serialno`` (the same tablet), ``settings get secure
user_setup_complete`` and ``settings get global device_provisioned`` (both ``0`` in the setup
wizard), ``pm list users`` (only the system user 0: no secondary user, no work profile), and
``settings get global secure_frp_mode`` (``1`` while Factory Reset Protection holds the setup wizard).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imaging.commands import NOT_FOUND, TIMED_OUT, CommandRunner
from imaging.result import CommandRecord

TIMEOUT = 30.0
_PROP = re.compile(r"^\[([^\]]+)\]: \[(.*)$")  # a property's first line; its value ends at a line's last "]"
_LINE_END = re.compile(r"\r*\n|\r")  # "\n", CRLF, and the "\r\r\n" an older adb client makes of a pty's CRLF
_DEVICE_LINE = re.compile(r"^(\S+)\s+(.*)$")
_OWNER_PACKAGE = re.compile(r"^\s*package=(\S+)", re.MULTILINE)
_GOOGLE_ACCOUNT = re.compile(r"Account \{name=[^,]*, type=com\.google\}")
_USER = re.compile(r"UserInfo\{(\d+):[^}]*\}")


@dataclass(frozen=True)
class AdbDevice:
    serial: str
    state: str  # device, unauthorized, offline, recovery, sideload, bootloader, no permissions, ... or SHARED
    details: dict[str, str]


# Not an adb state: two or more devices listed under one serial (cheap tablets ship with the same
# placeholder serial); ``adb -s`` cannot address either, and what answers may be the other one.
SHARED = "shared serial"


# Serials some tablets ship with, the chip vendor's default left in, many tablets alike: the
# inventory, custody and certificates key a tablet on its serial, so one of these would make every
# such tablet one device (a tablet arriving booked back as another, still issued, one).
PLACEHOLDER_SERIALS = frozenset({"0123456789abcdef", "0123456789", "1234567890abcdef", "unknown", "none", "null"})
PLACEHOLDER_PROBLEM = "the tablet reports a placeholder serial that other tablets share: it cannot be told apart"
PLACEHOLDER_ACTION = "set it aside: it cannot be booked in or sanitised by serial; report it to the site's device team"


def placeholder_serial(serial: str) -> bool:
    """A serial that names no one tablet: a known default, or one character repeated (``0000...``)."""
    text = serial.strip().lower()
    return text in PLACEHOLDER_SERIALS or len(set(text)) <= 1


# adb's state for a listed device -> (problem, the technician's action)
STATE_PROBLEMS: dict[str, tuple[str, str]] = {
    "unauthorized": (
        "the tablet has not allowed USB debugging from this bench",
        "unlock the tablet and tap Allow on 'Allow USB debugging?', then re-insert it",
    ),
    "offline": ("adb sees the tablet offline", "unplug it, wait five seconds and re-insert it"),
    "recovery": ("the tablet is in recovery mode", "choose 'Reboot system now', then re-insert it"),
    "sideload": ("the tablet is in sideload mode", "reboot it normally, then re-insert it"),
    "bootloader": ("the tablet is in its bootloader", "choose 'Start' to boot Android, then re-insert it"),
    "no permissions": (
        "adb on this bench has no permission to open the tablet's USB device (udev rules)",
        "report it: the bench's udev rules must let adb use the tablet; then re-insert it",
    ),
    "authorizing": ("adb is still authorising the tablet", "wait a few seconds, then re-insert it"),
    "connecting": ("adb is still connecting to the tablet", "wait a few seconds, then re-insert it"),
    SHARED: (
        "more than one device on this bench reports this serial: adb cannot tell them apart",
        "leave only this tablet attached, then re-insert it",
    ),
}


def adb(serial: str, *args: str) -> list[str]:
    return ["adb", "-s", serial, *args]


def list_devices(runner: CommandRunner) -> tuple[dict[str, AdbDevice], CommandRecord]:
    record = runner.run(["adb", "devices", "-l"], TIMEOUT)
    return (parse_devices(record.stdout) if record.returncode == 0 else {}), record


def parse_devices(text: str) -> dict[str, AdbDevice]:
    """``SERIAL  STATE [usb:...] [product:...] [model:...] [device:...] [transport_id:N]`` lines; a
    serial listed twice is :data:`SHARED` (never one of them picked)."""
    found: dict[str, AdbDevice] = {}
    for line in text.splitlines():
        match = _DEVICE_LINE.match(line.strip())
        if match is None or line.startswith(("List of devices", "*")):
            continue
        serial, rest = match.groups()
        state = "no permissions" if rest.startswith("no permissions") else rest.split(None, 1)[0]
        details = dict(part.split(":", 1) for part in rest.split() if ":" in part and not part.startswith("("))
        found[serial] = AdbDevice(serial, SHARED, {}) if serial in found else AdbDevice(serial, state, details)
    return found


def getprop(runner: CommandRunner, serial: str) -> tuple[dict[str, str], CommandRecord]:
    record = runner.run(adb(serial, "shell", "getprop"), TIMEOUT)
    return (parse_props(record.stdout) if record.returncode == 0 else {}), record


def parse_props(text: str) -> dict[str, str]:
    """``[key]: [value]`` lines; a value spanning lines (``persist.sys.boot.reason.history``) is
    kept whole, and its lines are never read as properties of their own. A value never closed is dropped."""
    props: dict[str, str] = {}
    key: str | None = None
    lines: list[str] = []
    for line in _LINE_END.split(text):
        if key is None:
            match = _PROP.match(line.strip())
            if match is None:
                continue
            key, lines = match.group(1), []
            line = match.group(2)
        lines.append(line)
        if line.rstrip().endswith("]"):
            props[key] = "\n".join(lines).rstrip()[:-1]
            key = None
    return props


# ro.crypto.state as vold sets it; anything else, or no such line (vold has not set it yet, or the
# output was not read whole), is not known: never "not encrypted"
CRYPTO_STATES: dict[str, bool] = {"encrypted": True, "unencrypted": False, "unsupported": False}


def encrypted(props: dict[str, str]) -> bool | None:
    return CRYPTO_STATES.get(props.get("ro.crypto.state", ""))


def device_owner(runner: CommandRunner, serial: str) -> tuple[str | None, CommandRecord]:
    """The device owner's package, or None when the tablet has none."""
    record = runner.run(adb(serial, "shell", "dumpsys", "device_policy"), TIMEOUT)
    return parse_device_owner(record.stdout) if record.returncode == 0 else None, record


def parse_device_owner(text: str) -> str | None:
    _, found, after = _LINE_END.sub("\n", text).partition("Device Owner:")
    if not found:
        return None
    match = _OWNER_PACKAGE.search(after.split("\n\n", 1)[0])
    return match.group(1) if match else None


def google_accounts(runner: CommandRunner, serial: str) -> tuple[int | None, CommandRecord]:
    """How many Google accounts are on the tablet (None: unknown); names are not kept."""
    record = runner.run(adb(serial, "shell", "dumpsys", "account"), TIMEOUT)
    return (len(_GOOGLE_ACCOUNT.findall(record.stdout)) if record.returncode == 0 else None), record


def setting(runner: CommandRunner, serial: str, namespace: str, key: str) -> tuple[bool | None, CommandRecord]:
    """A 0/1 setting as a bool; None when it is unset (``null``) or could not be read."""
    record = runner.run(adb(serial, "shell", "settings", "get", namespace, key), TIMEOUT)
    value = record.stdout.strip()
    return ({"1": True, "0": False}.get(value) if record.returncode == 0 else None), record


def setup_complete(runner: CommandRunner, serial: str) -> tuple[bool | None, CommandRecord]:
    return setting(runner, serial, "secure", "user_setup_complete")


def users(runner: CommandRunner, serial: str) -> tuple[tuple[int, ...] | None, CommandRecord]:
    """The ids of the tablet's users and profiles (``pm list users``); None when it could not be read."""
    record = runner.run(adb(serial, "shell", "pm", "list", "users"), TIMEOUT)
    found = tuple(int(uid) for uid in _USER.findall(record.stdout))
    return (found if record.returncode == 0 and found else None), record


def failure(record: CommandRecord) -> str:
    if record.returncode == NOT_FOUND:
        return "adb is not installed on this bench (Debian package adb)"
    if record.returncode == TIMED_OUT:
        return "adb timed out"
    text = " | ".join(line.strip() for line in (record.stderr + record.stdout).splitlines() if line.strip())
    return f"adb: {text[:300] or f'exit {record.returncode}'}"
