"""What goes into and comes out of a provisioning run: the runner options, each host's outcome
and the job's. Plain data with no Ansible import, so callers and tests can use them freely;
``ansible_adapter.py`` fills them in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from factory.provisioning.events import COMPLETION_TASK, EventRouter, HostProblem, HostStatsDict, TaskStatus

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
    """Classify one host from one attempt.

    ``playbook_on_stats`` decides whenever the run got that far: the runner reports a failed task
    as ``runner_on_failed`` even when a block's ``rescue`` handled it, and an unreachable one as
    ``runner_on_unreachable`` even under ``ignore_unreachable`` (ansible-runner#726, ansible#77693);
    only the stats count what really stopped the host. Without stats the run died early, and any
    failure seen counts.
    """
    router = attempt.router
    stats = (router.host_stats or {}).get(host)
    if stats is None:
        return _without_stats(host, attempt, number)
    problem: HostProblem | None = None
    if stats["unreachable"]:
        problem = router.latest.get((host, TaskStatus.UNREACHABLE)) or router.problems.get(host)
        rejected = problem is not None and problem.host_key_rejected
        status = HostStatus.HOST_KEY_REJECTED if rejected else HostStatus.UNREACHABLE
    elif stats["failures"]:
        problem = router.latest.get((host, TaskStatus.FAILED)) or router.problems.get(host)
        status = HostStatus.FAILED
    elif router.expect_completion and host not in router.played:
        return HostOutcome(host, HostStatus.INCOMPLETE, dict(stats), number, None, _NOT_MATCHED)
    elif router.expect_completion and host not in router.completed:
        return HostOutcome(host, HostStatus.INCOMPLETE, dict(stats), number, None, _STOPPED)
    elif attempt.status == "failed" and not _any_host_failed(router):
        # The runner says the run failed, yet no host's stats say why: never call that a success.
        return HostOutcome(host, HostStatus.INCOMPLETE, dict(stats), number, None, _UNEXPLAINED)
    else:
        status = HostStatus.OK
    return HostOutcome(
        host=host,
        status=status,
        stats=dict(stats),
        attempts=number,
        failed_task=problem.task if problem else None,
        reason=problem.reason if problem else None,
    )


_NOT_MATCHED = "no task of the playbook ran on this host (no play matched it, or it ended before its first task)"
_STOPPED = (
    "the playbook stopped before it ended for this host, with no failure of its own "
    "(another host's failure ended the run: any_errors_fatal, max_fail_percentage or run_once)"
)
_UNEXPLAINED = "the runner reported the run failed, but no host's stats show a failure"


def _any_host_failed(router: EventRouter) -> bool:
    return any(s["failures"] or s["unreachable"] for s in (router.host_stats or {}).values())


def _without_stats(host: str, attempt: _Attempt, number: int) -> HostOutcome:
    """No ``playbook_on_stats`` for the host: the run stopped (or matched no host) before it ended."""
    router = attempt.router
    problem = router.problems.get(host)
    if problem is not None and problem.host_key_rejected:
        status = HostStatus.HOST_KEY_REJECTED
    elif problem is not None and problem.status is TaskStatus.UNREACHABLE:
        status = HostStatus.UNREACHABLE
    elif problem is not None:
        status = HostStatus.FAILED
    else:
        status = HostStatus.INCOMPLETE
    if problem is not None:
        return HostOutcome(host, status, dict(_ZERO_STATS), number, problem.task, problem.reason)
    if router.host_stats is not None:
        reason = f"run {attempt.status} without running the playbook on the host (no hosts matched)"
    else:
        reason = f"run {attempt.status} before the host finished" + (
            f": {router.last_error}" if router.last_error else ""
        )
    return HostOutcome(host, status, dict(_ZERO_STATS), number, None, reason)


def completion_wrapper(playbook: Path) -> str:
    """The playbook the adapter runs: ``playbook``, then the :data:`COMPLETION_TASK` play."""
    plays = [
        {"name": "Run the job's playbook", "ansible.builtin.import_playbook": str(playbook)},
        {
            "name": "Device Factory completion check",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [{"name": COMPLETION_TASK, "ansible.builtin.debug": {"msg": "completed"}}],
        },
    ]
    return json.dumps(plays, indent=2) + "\n"  # JSON is YAML: no quoting of the path to get wrong
