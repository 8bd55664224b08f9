"""What goes into and comes out of a provisioning run: the runner options, each host's outcome
and the job's. Plain data with no Ansible import, so callers and tests can use them freely;
``ansible_adapter.py`` fills them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from factory.provisioning.events import EventRouter, HostStatsDict, TaskStatus

DEFAULT_PLAYBOOK_DIR = Path(__file__).resolve().parents[2] / "playbooks"


class HostStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    HOST_KEY_REJECTED = "host_key_rejected"
    INCOMPLETE = "incomplete"  # the run stopped (cancel, timeout, crash) before the host finished


class RunStatus(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class RunnerOptions:
    playbook_dir: Path = DEFAULT_PLAYBOOK_DIR
    playbook: str = "provision.yml"
    forks: int = 5
    timeout_s: float = 1800.0  # whole job, retries included
    max_attempts: int = 3  # per unreachable host, the first run included
    backoff_initial_s: float = 2.0
    backoff_factor: float = 2.0
    backoff_max_s: float = 60.0
    connect_timeout_s: int = 10
    control_persist_s: int = 30
    keep_artifacts: bool = True

    def __post_init__(self) -> None:
        if self.forks < 1 or self.max_attempts < 1:
            raise ValueError("forks and max_attempts must be at least 1")
        if self.timeout_s <= 0 or self.backoff_initial_s < 0 or self.backoff_factor < 1:
            raise ValueError("timeout_s must be positive, backoff_initial_s >= 0, backoff_factor >= 1")


@dataclass(frozen=True)
class HostOutcome:
    host: str
    status: HostStatus
    stats: HostStatsDict
    attempts: int
    failed_task: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is HostStatus.OK


@dataclass(frozen=True)
class ProvisionOutcome:
    job_id: str
    status: RunStatus
    hosts: Mapping[str, HostOutcome]
    attempts: int
    duration_s: float
    private_data_dir: Path
    idents: tuple[str, ...] = field(default=())

    @property
    def succeeded(self) -> bool:
        return self.status is RunStatus.SUCCESSFUL

    @property
    def stats(self) -> dict[str, HostStatsDict]:
        return {name: dict(h.stats) for name, h in self.hosts.items()}

    @property
    def reason(self) -> str | None:
        """One line naming every host that did not succeed and why."""
        bad = [h for h in self.hosts.values() if not h.ok]
        if not bad and self.succeeded:
            return None
        parts = [f"{h.host}: {h.status}" + (f" at '{h.failed_task}'" if h.failed_task else "") for h in bad]
        parts = [p + (f" ({h.reason})" if h.reason else "") for p, h in zip(parts, bad, strict=True)]
        return f"{self.status}: " + ("; ".join(parts) or "no host results")


_ZERO_STATS: HostStatsDict = {
    "ok": 0,
    "changed": 0,
    "failures": 0,
    "unreachable": 0,
    "skipped": 0,
    "rescued": 0,
    "ignored": 0,
}


@dataclass
class _Attempt:
    ident: str
    status: str
    router: EventRouter


def _host_outcome(host: str, attempt: _Attempt, number: int) -> HostOutcome:
    router = attempt.router
    stats = (router.host_stats or {}).get(host)
    problem = router.problems.get(host)
    failed_task = problem.task if problem else None
    reason = problem.reason if problem else None
    if problem is not None and problem.host_key_rejected:
        status = HostStatus.HOST_KEY_REJECTED
    elif (stats and stats["unreachable"]) or (problem and problem.status is TaskStatus.UNREACHABLE):
        status = HostStatus.UNREACHABLE
    elif (stats and stats["failures"]) or problem is not None:
        status = HostStatus.FAILED
    elif stats is not None:
        status = HostStatus.OK
    else:
        status = HostStatus.INCOMPLETE
        reason = f"run {attempt.status} before the host finished" + (
            f": {router.last_error}" if router.last_error else ""
        )
    return HostOutcome(
        host=host,
        status=status,
        stats=dict(stats) if stats else dict(_ZERO_STATS),
        attempts=number,
        failed_task=failed_task,
        reason=reason,
    )
