"""iPads over USB: libimobiledevice's ``idevicepair`` and ``ideviceinfo`` through the command seam.

``idevicepair -u UDID validate`` says whether this host is trusted (a locked iPad, or one whose
"Trust this computer?" dialog is unanswered, says so in one line); ``ideviceinfo -u UDID`` prints
the lockdown values as ``Key: Value`` lines; ``-q com.apple.mobile.chaperone`` tells a supervised
iPad. Every message matched here is one the Debian 1.3.0 tools print.
"""

from __future__ import annotations

from dataclasses import dataclass

from imaging.commands import NOT_FOUND, TIMED_OUT, CommandRunner
from imaging.result import CommandRecord

TIMEOUT = 30.0


@dataclass(frozen=True)
class Pairing:
    trusted: bool
    problem: str | None  # why not, in one line
    action: str | None  # what the technician must do


# (text in idevicepair's output, the problem, the technician's action)
_PAIRING_PROBLEMS: tuple[tuple[str, str, str], ...] = (
    ("because a passcode is set", "the iPad is locked", "unlock the iPad with its passcode, then re-insert it"),
    ("accept the trust dialog", "the iPad has not trusted this bench", "tap Trust on the iPad, then re-insert it"),
    ("denied the trust dialog", "the trust dialog was declined", "re-insert it and tap Trust this time"),
    ("is not paired with this host", "the iPad is not paired with this bench", "unlock the iPad and tap Trust"),
    ("No device found", "the iPad is not reachable over usbmux", "check the cable and that usbmuxd runs"),
)


def validate_pairing(runner: CommandRunner, udid: str) -> tuple[Pairing, CommandRecord]:
    record = runner.run(["idevicepair", "-u", udid, "validate"], TIMEOUT)
    return parse_pairing(record), record


def parse_pairing(record: CommandRecord) -> Pairing:
    text = record.stdout + record.stderr
    if record.returncode == 0 and "SUCCESS: Validated pairing" in text:
        return Pairing(True, None, None)
    if record.returncode in (NOT_FOUND, TIMED_OUT):
        return Pairing(False, _tool_problem(record, "idevicepair"), "report it: the bench cannot run idevicepair")
    for needle, problem, action in _PAIRING_PROBLEMS:
        if needle in text:
            return Pairing(False, problem, action)
    return Pairing(False, f"idevicepair: {_one_line(text) or f'exit {record.returncode}'}", "re-insert the iPad")


def listed_udids(runner: CommandRunner) -> tuple[set[str] | None, CommandRecord]:
    """The UDIDs usbmuxd lists (``idevice_id -l``, one a line; nothing when no device is attached);
    None when the list could not be read (``ERROR: Unable to retrieve device list!`` without usbmuxd)."""
    record = runner.run(["idevice_id", "-l"], TIMEOUT)
    if record.returncode != 0:
        return None, record
    return {line.strip() for line in record.stdout.splitlines() if line.strip()}, record


def read_info(
    runner: CommandRunner, udid: str, domain: str | None = None, *, simple: bool = False
) -> tuple[dict[str, str], CommandRecord]:
    """Lockdown values (all of them, or of ``domain``); empty with the record when it failed.

    ``simple`` (``-s``) reads without pairing: what an erased, untrusted iPad still tells.
    """
    argv = ["ideviceinfo", "-u", udid] + (["-s"] if simple else []) + (["-q", domain] if domain else [])
    record = runner.run(argv, TIMEOUT)
    return (parse_info(record.stdout) if record.returncode == 0 else {}), record


def parse_info(text: str) -> dict[str, str]:
    """``Key: Value`` lines; nested dictionaries (indented) are skipped, their keys kept flat."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line[0].isspace() or ": " not in line:
            continue
        key, _, value = line.partition(": ")
        values[key.strip()] = value.strip()
    return values


def failure(record: CommandRecord, tool: str) -> str:
    return _tool_problem(record, tool)


def _tool_problem(record: CommandRecord, tool: str) -> str:
    if record.returncode == NOT_FOUND:
        return f"{tool} is not installed on this bench (Debian libimobiledevice-utils)"
    if record.returncode == TIMED_OUT:
        return f"{tool} timed out"
    return f"{tool}: {_one_line(record.stdout + record.stderr) or f'exit {record.returncode}'}"


def _one_line(text: str) -> str:
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())[:300]
