"""A supervised iPad erased over USB: pymobiledevice3's ``profile erase-device`` through the command seam.

pymobiledevice3 (PyPI, not a dependency of this project: 93 packages, several compiled) is an
optional tool of the bench; the planner offers this method only where it is installed. Read from
its source (``pymobiledevice3/cli/profile.py``, ``services/mobile_config.py``, 11.45.0):

* ``pymobiledevice3 profile erase-device --udid UDID --no-preserve-data-plan --disallow-proximity-setup``
  opens the lockdown service ``com.apple.mobile.MCInstall`` over usbmux and sends
  ``{"RequestType": "EraseDevice", "PreserveDataPlan": false, "DisallowProximitySetup": true}``
  (the same PreserveDataPlan as the MDM adapter's ``EraseDevice``); it takes the pairing record
  usbmuxd holds (``pair_records.get_preferred_pair_record``: the one ``idevicepair`` made when the
  bench identified the iPad), and does not escalate with a supervision identity;
* it logs through coloredlogs on stderr, ``DATE TIME HOST LOGGER[PID] LEVEL MESSAGE``: ``INFO
  Erasing device with preserve_data_plan: False, disallow_proximity_setup: True`` before the
  request, ``INFO Erased device`` after it; a device answer other than ``Acknowledged`` is
  ``ERROR The device rejected the profile request: {...}``; no usbmuxd, no such device, not paired
  or locked are ``ERROR <message>`` too, and the exit status is 1 (10.10.3 logged the error and
  exited 0, so the status alone is never trusted: ``Erased device`` must be there and no ERROR);
* the iPad drops the connection as it starts erasing and the library swallows that, so ``Erased
  device`` means "sent, not refused", never "erased". The erase is shown only by the iPad itself,
  read back after its restart: same UDID, ``ActivationState: Unactivated`` (``ideviceinfo -s``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imaging.commands import NOT_FOUND, TIMED_OUT
from imaging.result import CommandRecord

TOOL = "pymobiledevice3"
ERASE_TIMEOUT = 120.0  # the request itself is one exchange; the erase runs on the iPad afterwards
SENT = "Erased device"
_LOG_LINE = re.compile(r"^\S+ \S+ \S+ \S+\[\d+\] (?P<level>[A-Z]+) (?P<message>.*)$")
# (text of an ERROR line, is the iPad locked): messages pymobiledevice3's exceptions carry
_LOCKED = ("password protected", "passcode")


def erase_argv(udid: str) -> list[str]:
    return [TOOL, "profile", "erase-device", "--udid", udid, "--no-preserve-data-plan", "--disallow-proximity-setup"]


@dataclass(frozen=True)
class EraseRequest:
    """What the tool's output says of the request: sent (not refused), or why not."""

    sent: bool
    reason: str  # the tool's own message: "Erased device", or its first ERROR line
    locked: bool = False  # the iPad refused because it is locked (passcode)
    timed_out: bool = False


def parse_erase(record: CommandRecord) -> EraseRequest:
    if record.returncode == NOT_FOUND:
        return EraseRequest(False, f"{TOOL} is not installed on this bench")
    if record.returncode == TIMED_OUT:
        return EraseRequest(False, f"{TOOL} did not answer: outcome unknown", timed_out=True)
    lines = [_LOG_LINE.match(line.strip()) for line in (record.stderr + "\n" + record.stdout).splitlines()]
    logged = [(m.group("level"), m.group("message").strip()) for m in lines if m is not None]
    errors = [message for level, message in logged if level in ("ERROR", "CRITICAL")]
    if errors:
        reason = errors[0][:300]
        return EraseRequest(False, reason, locked=any(word in reason.lower() for word in _LOCKED))
    if record.returncode == 0 and any(message == SENT for _, message in logged):
        return EraseRequest(True, SENT)
    text = " | ".join(line.strip() for line in (record.stderr + record.stdout).splitlines() if line.strip())
    return EraseRequest(False, f"{TOOL} exit {record.returncode}: {text[:300] or 'no output'}")


__all__ = ["ERASE_TIMEOUT", "TOOL", "EraseRequest", "erase_argv", "parse_erase"]
