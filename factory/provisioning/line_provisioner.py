"""The line's provision step, done for real: Ansible over SSH to the device's pinned endpoint.

Implements the line's ``Provisioner`` protocol. The target comes from the device's records (asset
tag, kind, role and the service-environment endpoint whose host key was pinned at first contact);
task results stream into the job log; the final per-host stats are stored in the job log as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from factory.intake.views import get_device, get_endpoint
from factory.kernel.clock import utc_now
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import FactoryError
from factory.line.service import (
    DEFAULT_GRACE_SECONDS,
    JobLogBuffer,
    PersonaliseOutcome,
    PersonaliseRequest,
    ProvisionOutcome,
    ProvisionRequest,
    expect_reboot,
)
from factory.provisioning.adapter_types import ProvisionOutcome as RunOutcome
from factory.provisioning.ansible_adapter import ProvisionError, RunnerOptions, RunStatus, run_provision
from factory.provisioning.events import HostStatsDict
from factory.provisioning.inventory import (
    AccessibilityProfile,
    DeviceKind,
    InvalidTarget,
    ProvisionSecrets,
    ProvisionTarget,
    SiteSettings,
)

PERSONALISE_PLAYBOOK = "personalise.yml"
REBOOT_TASK_PREFIX = "Restart"
# The personalise playbook's QA assert says this, then what is missing joined by "; ".
_QA_FAILED = "QA failed: assistive technology not ready: "


class JobLogSink:
    """Streams runner output into the job's log in batches: a line waits at most
    ``FLUSH_SECONDS``, and each batch is one transaction. A transaction per Ansible event would take
    SQLite's write lock once per event for every device provisioning at once."""

    FLUSH_SECONDS = 1.0

    def __init__(self, engine: Engine, job_id: int, on_reboot: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self._job_id = job_id
        self._on_reboot = on_reboot  # a task that restarts the device is starting
        self._pending: list[tuple[str, str, str]] = []  # (at, level, message)
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one batch at a time, so lines keep their order
        self._timer: threading.Timer | None = None

    def _write(self, message: str, level: str = "info") -> None:
        with self._lock:
            self._pending.append((utc_now(), level, message))
            if self._timer is None:
                self._timer = threading.Timer(self.FLUSH_SECONDS, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Write what is buffered now (the provisioner calls this when the run ends)."""
        with self._flushing:
            with self._lock:
                rows, self._pending = self._pending, []
                timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()
            if rows:
                logs = JobLogBuffer()
                for at, level, message in rows:
                    logs.add(self._job_id, message, level, at=at)
                with session_scope(self._engine) as s:
                    logs.flush(s)

    def log(self, line: str) -> None:
        self._write(line)

    def task_event(self, host: str, task: str, status: str, changed: bool) -> None:
        if status == "started":
            # The playbooks name every task that restarts the device "Restart ...": the line then
            # expects its switch port to drop and come back (reboot_grace.py).
            if self._on_reboot is not None and task.rpartition(" : ")[2].startswith(REBOOT_TASK_PREFIX):
                self._on_reboot()
            return  # the board shows results; a line per dispatch would double the log
        level = "error" if status in ("failed", "unreachable") else "info"
        self._write(f"{host}: {task}: {status}{' (changed)' if changed else ''}", level)

    def stats(self, per_host: Mapping[str, HostStatsDict]) -> None:
        self._write("provision stats " + json.dumps(per_host, sort_keys=True))


@dataclass
class AnsibleProvisioner:
    engine: Engine
    site: SiteSettings
    secrets: ProvisionSecrets
    private_key_path: Path
    work_dir: Path
    options: RunnerOptions = field(default_factory=RunnerOptions)
    # Where the playbook writes on the device: "/" in production; tests point it into a sandbox.
    target_root: Callable[[str], str] = lambda _serial: "/"
    python_interpreter: str = "auto_silent"
    os_family: str = "linux"  # the golden image's: the playbooks' roles branch on it
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    name: str = "provision (ansible)"
    # How long a device may be away in a reboot a playbook starts before its job fails.
    reboot_grace_s: float = DEFAULT_GRACE_SECONDS

    def _target(self, request: ProvisionRequest, accessibility: AccessibilityProfile | None = None) -> ProvisionTarget:
        serial = request.device_serial
        with session_scope(self.engine) as s:
            device = get_device(s, serial)
            endpoint = get_endpoint(s, serial)
            if not device.asset_tag:
                raise InvalidTarget(f"device {serial} has no asset tag: its hostname is derived from it")
            if device.kind == DeviceKind.VEHICLE_TABLET and not request.vehicle_fleet_number:
                raise InvalidTarget(
                    f"vehicle tablet {serial} is not earmarked for, allocated to or installed in a vehicle in service: "
                    "it is provisioned for that vehicle's fleet number"
                )
            return ProvisionTarget(
                serial=device.serial,
                asset_tag=device.asset_tag,
                kind=device.kind,  # type: ignore[arg-type]
                role=device.role or "general",
                address=endpoint.address,
                port=endpoint.port,
                user=endpoint.username,
                private_key_path=self.private_key_path,
                host_key=endpoint.host_key,
                vehicle_fleet_number=request.vehicle_fleet_number,
                accessibility=accessibility,
                target_root=self.target_root(serial),
                python_interpreter=self.python_interpreter,
                os_family=self.os_family,
                extra_vars=dict(self.extra_vars),
            )

    def __call__(self, request: ProvisionRequest) -> ProvisionOutcome:
        try:
            target = self._target(request)
        except (FactoryError, InvalidTarget) as exc:
            return ProvisionOutcome(False, f"cannot provision: {getattr(exc, 'reason', exc)}")
        try:
            outcome = self._run(
                f"job-{request.job_id}", request.job_id, target, self.options, request.cancel,
                on_reboot=lambda: self._expect_reboot(request.slot),
            )  # fmt: skip
        except ProvisionError as exc:
            return ProvisionOutcome(False, f"cannot provision: {exc}")
        if outcome.status is RunStatus.SUCCESSFUL:
            return ProvisionOutcome(True, f"provisioned {target.kind}/{target.role} via ansible")
        return ProvisionOutcome(False, outcome.reason or f"provisioning ended {outcome.status}")

    def personalise(self, request: PersonaliseRequest) -> PersonaliseOutcome:
        """Run ``personalise.yml`` with the officer's profile on the device's pinned endpoint; the
        QA's findings come back one item each."""
        try:
            profile = AccessibilityProfile.for_officer(request.staff_number, request.needs)
            with session_scope(self.engine) as s:
                device = get_device(s, request.device_serial)
                kind, role = device.kind, device.role
            # Only officers' devices are personalised: a vehicle tablet never gets here.
            provision = ProvisionRequest(request.job_id, request.device_serial, kind, role, "", "", request.cancel)
            target = self._target(provision, profile)
        except (FactoryError, InvalidTarget) as exc:
            return PersonaliseOutcome(False, f"cannot personalise: {getattr(exc, 'reason', exc)}")
        options = dataclasses.replace(self.options, playbook=PERSONALISE_PLAYBOOK)
        try:
            outcome = self._run(f"job-{request.job_id}-personalise", request.job_id, target, options, request.cancel)
        except ProvisionError as exc:
            return PersonaliseOutcome(False, f"cannot personalise: {exc}")
        if outcome.status is RunStatus.SUCCESSFUL:
            return PersonaliseOutcome(
                True, f"assistive technology applied and checked: {', '.join(profile_features(profile))}"
            )
        reason = outcome.reason or f"personalisation ended {outcome.status}"
        host = outcome.hosts.get(target.inventory_name)
        said = (host.reason if host is not None else None) or ""  # the failed task's own message
        missing = said.split(_QA_FAILED, 1)[1].split("; ") if _QA_FAILED in said else []
        return PersonaliseOutcome(False, reason, tuple(m.strip() for m in missing if m.strip()))

    def _run(
        self,
        name: str,
        job_id: int,
        target: ProvisionTarget,
        options: RunnerOptions,
        cancel: threading.Event,
        on_reboot: Callable[[], None] | None = None,
    ) -> RunOutcome:
        sink = JobLogSink(self.engine, job_id, on_reboot)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            return run_provision(name, [target], self.site, self.secrets, sink, self.work_dir, options, cancel=cancel)
        finally:
            sink.flush()  # the whole log is in before the step ends

    def _expect_reboot(self, slot: str) -> None:
        """A playbook task restarts the device now: its switch port may drop for the grace period."""
        if slot:
            with session_scope(self.engine) as s:
                expect_reboot(s, slot, self.reboot_grace_s)


def profile_features(profile: AccessibilityProfile) -> list[str]:
    names = ("screen_reader", "magnifier", "high_contrast", "large_text", "dictation")
    return [n.replace("_", " ") for n in names if getattr(profile, n)]
