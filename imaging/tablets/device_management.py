"""The one adapter to the device-management services: send a wipe, poll its status, read its audit record.

No such service can run on a bench host, so each is reached through this narrow protocol and its
exchanges go through the command seam like any tool: ``("https", METHOD, URL, BODY)`` is run by
:class:`HttpsRunner` for real and replayed from the services' published response shapes in tests
(so every exchange lands on the erase result, as a command does).

Services, and how their answers map to :class:`WipeState`:

* Apple MDM ``EraseDevice`` through the site's MDM server (NanoMDM-style: the command enqueued
  for the UDID, the device's own response read back): ``Acknowledged`` -> acknowledged,
  ``NotNow`` or not yet answered -> pending, ``Error``/``CommandFormatError`` -> error.
* Microsoft Intune (Graph) ``managedDevices/{id}/wipe`` (204), status from the device's
  ``deviceActionResults`` and the audit from ``remoteActionAudits``: ``done`` -> acknowledged,
  ``pending``/``active`` -> pending, ``failed``/``canceled``/``notSupported`` -> error.
* Android Management API ``devices.issueCommand`` type ``WIPE``, a long-running operation:
  ``done`` without ``error`` -> acknowledged, not done -> pending, ``error`` -> error.

A wipe that is not acknowledged before the deadline is ``timed out``: its outcome is unknown.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, Self

from imaging.commands import TIMED_OUT, CommandRunner, utc_now
from imaging.result import CommandRecord

HTTP_TIMEOUT = 30.0
UNREACHABLE = -2  # no HTTP answer at all (DNS, refused, TLS)


class WipeState(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    PENDING = "pending"
    ERROR = "error"
    TIMED_OUT = "timed out"


class ServiceRefused(Exception):
    """The service did not accept a request; ``reason`` says why (nothing was queued)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WipeRefused(ServiceRefused):
    """The service did not accept the wipe request (nothing was queued)."""


@dataclass(frozen=True)
class WipeCommand:
    service: str
    device_ref: str  # the service's id for the device (UDID, managed device id, device name)
    command_id: str
    sent_at: str


@dataclass(frozen=True)
class WipeStatus:
    state: WipeState
    detail: str


@dataclass(frozen=True)
class AuditRecord:
    command_id: str
    state: str  # as the service words it
    initiated_by: str | None
    requested_at: str | None
    completed_at: str | None
    device_lock: str | None  # activation lock / FRP the service reports after the wipe, or None
    raw: Mapping[str, Any] = field(default_factory=dict)


class DeviceManagement(Protocol):
    service: str

    def bound(self, runner: CommandRunner) -> DeviceManagement:
        """The same service, its exchanges through ``runner`` (a reset's recording seam)."""
        ...

    def send_wipe(self, device_ref: str) -> WipeCommand: ...

    def poll_status(self, command: WipeCommand) -> WipeStatus: ...

    def read_audit(self, command: WipeCommand) -> AuditRecord: ...

    def lookup(self, identity: str) -> str | None:
        """The service's id for the tablet with this serial (UDID for Apple), None if not enrolled."""
        ...

    def enrol(self, serial: str, device_ref: str | None, profile: str) -> str:
        """Assign the enrolment profile the tablet takes at its next setup; a reference to the assignment.

        :raises ServiceRefused: the service refused it.
        """
        ...


def exchange(runner: CommandRunner, method: str, url: str, body: Mapping[str, Any] | None = None) -> CommandRecord:
    payload = json.dumps(body, sort_keys=True, separators=(",", ":")) if body is not None else ""
    return runner.run(["https", method, url, payload], HTTP_TIMEOUT)


def _json(record: CommandRecord) -> dict[str, Any]:
    try:
        value = json.loads(record.stdout) if record.stdout.strip() else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _refusal(service: str, record: CommandRecord) -> str:
    if record.returncode == TIMED_OUT:
        return f"{service}: the wipe request timed out: whether it was queued is unknown"
    if record.returncode == UNREACHABLE:
        return f"{service}: unreachable: {record.stderr.strip()[:200]}"
    body = _json(record)
    message = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else None
    return f"{service}: HTTP {record.returncode}: {message or record.stdout.strip()[:200] or 'no detail'}"


def _ok(record: CommandRecord) -> bool:
    return 200 <= record.returncode < 300


class _Service:
    runner: CommandRunner

    def bound(self, runner: CommandRunner) -> Self:
        twin = copy.copy(self)
        twin.runner = runner
        return twin


class AppleMdm(_Service):
    """The site's Apple MDM server: enqueue ``EraseDevice`` (Return to Service where enrolled)."""

    service = "apple-mdm"

    def __init__(self, runner: CommandRunner, base_url: str, *, return_to_service: bool = True) -> None:
        self.runner, self.base, self.return_to_service = runner, base_url.rstrip("/"), return_to_service

    def send_wipe(self, device_ref: str) -> WipeCommand:
        command_id = str(uuid.uuid4()).upper()
        command: dict[str, Any] = {"RequestType": "EraseDevice", "PreserveDataPlan": False}
        if self.return_to_service:
            command["ReturnToService"] = {"Enabled": True}
        sent_at = utc_now()
        record = exchange(
            self.runner, "PUT", f"{self.base}/v1/enqueue/{device_ref}", {"CommandUUID": command_id, "Command": command}
        )
        if not _ok(record):
            raise WipeRefused(_refusal(self.service, record))
        return WipeCommand(self.service, device_ref, _json(record).get("command_uuid", command_id), sent_at)

    def _result(self, command: WipeCommand) -> tuple[dict[str, Any], CommandRecord]:
        record = exchange(self.runner, "GET", f"{self.base}/v1/results/{command.command_id}")
        return (_json(record) if _ok(record) else {}), record

    def poll_status(self, command: WipeCommand) -> WipeStatus:
        result, record = self._result(command)
        status = result.get("Status")
        if status == "Acknowledged":
            return WipeStatus(WipeState.ACKNOWLEDGED, "the iPad acknowledged EraseDevice")
        if status in ("Error", "CommandFormatError"):
            chain = result.get("ErrorChain") or [{}]
            why = "; ".join(str(e.get("LocalizedDescription") or e.get("ErrorCode")) for e in chain)
            return WipeStatus(WipeState.ERROR, f"EraseDevice {status}: {why}")
        if status == "NotNow":
            return WipeStatus(WipeState.PENDING, "the iPad answered NotNow (busy or locked): the server retries")
        return WipeStatus(WipeState.PENDING, f"no answer from the iPad yet (HTTP {record.returncode})")

    def read_audit(self, command: WipeCommand) -> AuditRecord:
        result, _ = self._result(command)
        info_record = exchange(self.runner, "GET", f"{self.base}/v1/devices/{command.device_ref}")
        info = _json(info_record) if _ok(info_record) else {}
        locked = info.get("IsActivationLockEnabled")
        return AuditRecord(
            command.command_id,
            str(result.get("Status", "unknown")),
            None,
            command.sent_at,
            result.get("ReceivedAt") if isinstance(result.get("ReceivedAt"), str) else None,
            "Activation Lock on" if locked is True else None,
            {"result": result, "device": info},
        )

    def lookup(self, identity: str) -> str | None:
        record = exchange(self.runner, "GET", f"{self.base}/v1/devices/{identity}")
        return identity if _ok(record) else None

    def enrol(self, serial: str, device_ref: str | None, profile: str) -> str:
        """Apple Business Manager's device assignment (``POST /profile/devices``) through the MDM server."""
        body = {"profile_uuid": profile, "devices": [serial]}
        record = exchange(self.runner, "POST", f"{self.base}/v1/dep/profile/devices", body)
        outcome = (_json(record).get("devices") or {}).get(serial)
        if not _ok(record) or outcome != "SUCCESS":
            raise ServiceRefused(
                f"{self.service}: profile {profile} not assigned: {outcome or _refusal(self.service, record)}"
            )
        return f"abm-profile:{profile}"


class IntuneGraph(_Service):
    """Microsoft Intune through Microsoft Graph v1.0."""

    service = "intune"
    BASE = "https://graph.microsoft.com/v1.0/deviceManagement"
    _STATES = {"done": WipeState.ACKNOWLEDGED, "pending": WipeState.PENDING, "active": WipeState.PENDING}

    def __init__(self, runner: CommandRunner, base_url: str = BASE, *, windows: bool = False) -> None:
        self.runner, self.base, self.windows = runner, base_url.rstrip("/"), windows

    def send_wipe(self, device_ref: str) -> WipeCommand:
        body = {"keepEnrollmentData": False, "keepUserData": False, "persistEsimDataPlan": False}
        sent_at = utc_now()
        record = exchange(self.runner, "POST", f"{self.base}/managedDevices/{device_ref}/wipe", body)
        if not _ok(record):
            raise WipeRefused(_refusal(self.service, record))
        return WipeCommand(self.service, device_ref, f"{device_ref}/wipe@{sent_at}", sent_at)

    def poll_status(self, command: WipeCommand) -> WipeStatus:
        url = f"{self.base}/managedDevices/{command.device_ref}?$select=id,deviceActionResults"
        record = exchange(self.runner, "GET", url)
        results = _json(record).get("deviceActionResults") or []
        wipe = next((r for r in results if r.get("actionName") == "wipe"), None)
        if wipe is None:
            return WipeStatus(WipeState.PENDING, f"no wipe result reported yet (HTTP {record.returncode})")
        state = str(wipe.get("actionState"))
        mapped = self._STATES.get(state, WipeState.ERROR)
        return WipeStatus(mapped, f"Intune actionState '{state}'")

    def read_audit(self, command: WipeCommand) -> AuditRecord:
        url = f"{self.base}/remoteActionAudits?$filter=managedDeviceId eq '{command.device_ref}'"
        audits = _json(exchange(self.runner, "GET", url)).get("value") or []
        resets = [a for a in audits if a.get("action") == "factoryReset"]
        latest = max(resets, key=lambda a: str(a.get("requestDateTime")), default={})
        return AuditRecord(
            command.command_id,
            str(latest.get("actionState", "unknown")),
            latest.get("initiatedByUserPrincipalName"),
            latest.get("requestDateTime"),
            None,
            None,
            latest,
        )

    def lookup(self, identity: str) -> str | None:
        url = f"{self.base}/managedDevices?$filter=serialNumber eq '{identity}'&$select=id"
        found = _json(exchange(self.runner, "GET", url)).get("value") or []
        return str(found[0]["id"]) if found and "id" in found[0] else None

    def enrol(self, serial: str, device_ref: str | None, profile: str) -> str:
        """A token of the Android Enterprise corporate-owned enrolment profile (``createToken``), or
        for Windows tablets the Autopilot deployment profile's assignment."""
        if self.windows:
            url = f"{self.base}/windowsAutopilotDeploymentProfiles/{profile}/assign"
            record = exchange(self.runner, "POST", url, {"target": {"deviceId": device_ref}})
        else:
            url = f"{self.base}/androidDeviceOwnerEnrollmentProfiles/{profile}/createToken"
            record = exchange(self.runner, "POST", url, {"tokenValidityInSeconds": 86400})
        if not _ok(record):
            raise ServiceRefused(_refusal(self.service, record))
        return f"intune-{'autopilot' if self.windows else 'enrolment'}-profile:{profile}"


class AndroidManagement(_Service):
    """Android Enterprise through the Android Management API (``issueCommand`` WIPE)."""

    service = "android-management"
    BASE = "https://androidmanagement.googleapis.com/v1"

    def __init__(self, runner: CommandRunner, enterprise: str, base_url: str = BASE) -> None:
        self.runner, self.enterprise, self.base = runner, enterprise, base_url.rstrip("/")

    def send_wipe(self, device_ref: str) -> WipeCommand:
        body = {
            "type": "WIPE",
            "wipeParams": {
                "wipeDataFlags": ["WIPE_EXTERNAL_STORAGE"],
                "wipeReason": {"defaultMessage": "Returned to the device factory: sanitised for reuse"},
            },
        }
        name = f"enterprises/{self.enterprise}/devices/{device_ref}"
        sent_at = utc_now()
        record = exchange(self.runner, "POST", f"{self.base}/{name}:issueCommand", body)
        operation = _json(record).get("name")
        if not _ok(record) or not operation:
            raise WipeRefused(_refusal(self.service, record))
        return WipeCommand(self.service, device_ref, str(operation), sent_at)

    def poll_status(self, command: WipeCommand) -> WipeStatus:
        op = _json(exchange(self.runner, "GET", f"{self.base}/{command.command_id}"))
        if not op.get("done"):
            return WipeStatus(WipeState.PENDING, "the WIPE command is not done yet")
        if isinstance(op.get("error"), dict):
            code = (op.get("metadata") or {}).get("errorCode", "")
            return WipeStatus(WipeState.ERROR, f"WIPE failed: {op['error'].get('message', '')} {code}".strip())
        return WipeStatus(WipeState.ACKNOWLEDGED, "the tablet reported the WIPE command done")

    def read_audit(self, command: WipeCommand) -> AuditRecord:
        op = _json(exchange(self.runner, "GET", f"{self.base}/{command.command_id}"))
        meta = op.get("metadata") or {}
        state = "done" if op.get("done") and "error" not in op else "error" if op.get("done") else "pending"
        return AuditRecord(command.command_id, state, meta.get("userName"), meta.get("createTime"), None, None, op)

    def lookup(self, identity: str) -> str | None:
        devices = _json(exchange(self.runner, "GET", f"{self.base}/enterprises/{self.enterprise}/devices")).get(
            "devices"
        )
        for device in devices or []:
            if (device.get("hardwareInfo") or {}).get("serialNumber") == identity:
                return str(device.get("name", "")).rsplit("/", 1)[-1] or None
        return None

    def enrol(self, serial: str, device_ref: str | None, profile: str) -> str:
        """An enrolment token for the policy ``profile`` (``enterprises.enrollmentTokens.create``)."""
        body = {
            "policyName": f"enterprises/{self.enterprise}/policies/{profile}",
            "duration": "86400s",
            "allowPersonalUsage": "PERSONAL_USAGE_DISALLOWED",
        }
        record = exchange(self.runner, "POST", f"{self.base}/enterprises/{self.enterprise}/enrollmentTokens", body)
        name = _json(record).get("name")
        if not _ok(record) or not name:
            raise ServiceRefused(_refusal(self.service, record))
        return str(name)


# ------------------------------------------------------------------ waiting for the outcome


@dataclass
class WipeWait:
    poll_interval: float = 15.0
    deadline_seconds: float = 1800.0
    cancel: threading.Event | None = None
    clock: Callable[[], float] = time.monotonic


def wait_for_wipe(dm: DeviceManagement, command: WipeCommand, wait: WipeWait) -> WipeStatus:
    """Poll until the wipe is acknowledged or in error; ``timed out`` once the deadline passes."""
    cancel = wait.cancel or threading.Event()
    deadline = wait.clock() + wait.deadline_seconds
    status = dm.poll_status(command)
    while status.state is WipeState.PENDING:
        if wait.clock() >= deadline or cancel.wait(wait.poll_interval) or wait.clock() >= deadline:
            return WipeStatus(WipeState.TIMED_OUT, f"not acknowledged in time (last: {status.detail})")
        status = dm.poll_status(command)
    return status
