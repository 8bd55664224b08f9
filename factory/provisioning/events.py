"""From ansible-runner events to a ``JobSink`` (job log, task results, final stats).

Only fields known to be safe are forwarded: task names, host names, status and the display
text of each event (which Ansible itself censors for ``no_log`` tasks). Known secret values are
also redacted from every line as a second line of defence. The runner's ``starting`` status
payload (it carries the whole environment) never reaches this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

REDACTED = "********"
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# OpenSSH wording when the pinned key does not match (or the device has no such key type).
_HOST_KEY_MARKERS = (
    "Host key verification failed",
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "No matching host key type found",
    "no matching host key type found",
    "Offending",
)


class TaskStatus(StrEnum):
    STARTED = "started"
    OK = "ok"
    FAILED = "failed"
    IGNORED = "ignored"  # failed with ignore_errors
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"


# The adapter runs the playbook, then one more play with this one task (a controller-side debug).
# Ansible runs a later play only on hosts that neither failed nor went unreachable, and none at
# all once ``any_errors_fatal``, ``max_fail_percentage`` or a failed ``run_once`` task broke the
# run: which leaves the other hosts' stats clean (ansible#57138). Its ok result is the proof that
# the playbook ran to its end for that host.
COMPLETION_TASK = "Device Factory: the playbook ran to its end"

HostStatsDict = dict[str, int]  # ok, changed, failures, unreachable, skipped, rescued, ignored


@runtime_checkable
class JobSink(Protocol):
    """Where a provisioning job reports; the lead wires this to job records and the bench board."""

    def log(self, line: str) -> None: ...

    def task_event(self, host: str, task: str, status: str, changed: bool) -> None: ...

    def stats(self, per_host: Mapping[str, HostStatsDict]) -> None: ...


@dataclass
class HostProblem:
    """The first thing that went wrong for a host in one attempt."""

    task: str
    status: TaskStatus
    reason: str
    host_key_rejected: bool = False


_EVENT_STATUS = {
    "runner_on_start": TaskStatus.STARTED,
    "runner_on_ok": TaskStatus.OK,
    "runner_on_failed": TaskStatus.FAILED,
    "runner_on_unreachable": TaskStatus.UNREACHABLE,
    "runner_on_skipped": TaskStatus.SKIPPED,
}
_STATS_KEYS = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failures",
    "dark": "unreachable",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}


def task_label(event_data: Mapping[str, Any]) -> str:
    task = str(event_data.get("task") or "")
    role = event_data.get("role")
    return f"{role} : {task}" if role else task


def is_host_key_rejection(message: str) -> bool:
    return any(marker in message for marker in _HOST_KEY_MARKERS)


def one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


@dataclass
class EventRouter:
    """An ansible-runner ``event_handler`` for one attempt of a job.

    Records per-host problems and the final stats for the runner adapter, and forwards a
    sanitised view to the sink.
    """

    sink: JobSink
    secrets: Iterable[str] = ()
    # The first problem per host, and the latest per (host, status). A failed task may yet be
    # rescued by a block's ``rescue`` (the runner reports it as failed all the same): only the
    # stats say whether it counted, and then the latest failure is the one that stopped the host.
    problems: dict[str, HostProblem] = field(default_factory=dict)
    latest: dict[tuple[str, TaskStatus], HostProblem] = field(default_factory=dict)
    # Set when the run ends with the COMPLETION_TASK play: hosts without its ok did not finish.
    expect_completion: bool = False
    completed: set[str] = field(default_factory=set)
    played: set[str] = field(default_factory=set)  # hosts with a result from the playbook's own tasks
    host_stats: dict[str, HostStatsDict] | None = None
    # Ansible's last error line: the only clue when a run dies before any task ran.
    last_error: str | None = None

    def __post_init__(self) -> None:
        # Longest first, so a secret containing another is redacted whole.
        self._secrets = sorted({s for s in self.secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def log(self, line: str) -> None:
        line = self.redact(line)
        if line.lstrip().startswith(("ERROR!", "[ERROR]")):
            self.last_error = one_line(line)
        self.sink.log(line)

    def __call__(self, event: Mapping[str, Any]) -> bool:
        stdout = event.get("stdout")
        if stdout:
            for line in _ANSI_RE.sub("", str(stdout)).splitlines():
                if line.strip():
                    self.log(line)
        kind = str(event.get("event", ""))
        data: Mapping[str, Any] = event.get("event_data") or {}
        if kind in _EVENT_STATUS:
            self._task_event(kind, data)
        elif kind == "playbook_on_stats":
            self.host_stats = _parse_stats(data)
        # False: ansible-runner writes no job_events/<n>-<uuid>.json per event. The sink is the job's
        # record (log, task events, stats); writing and renaming a file per event cost the run time.
        return False

    def _task_event(self, kind: str, data: Mapping[str, Any]) -> None:
        host = str(data.get("host") or "")
        task = self.redact(task_label(data))
        status = _EVENT_STATUS[kind]
        res = data.get("res") if isinstance(data.get("res"), Mapping) else {}
        if status is TaskStatus.FAILED and data.get("ignore_errors"):
            status = TaskStatus.IGNORED
        changed = bool(res.get("changed")) if status is TaskStatus.OK else False
        if task == COMPLETION_TASK:
            if status is TaskStatus.OK:
                self.completed.add(host)
        elif status is not TaskStatus.STARTED:
            self.played.add(host)
        self.sink.task_event(host, task, str(status), changed)
        if status in (TaskStatus.FAILED, TaskStatus.UNREACHABLE):
            problem = self._problem(task, status, res)
            self.problems.setdefault(host, problem)
            self.latest[(host, status)] = problem

    def _problem(self, task: str, status: TaskStatus, res: Mapping[str, Any]) -> HostProblem:
        message = _result_message(res)
        rejected = status is TaskStatus.UNREACHABLE and is_host_key_rejection(message)
        if rejected:
            # OpenSSH's banner is long; say plainly what happened.
            marker = next(m for m in _HOST_KEY_MARKERS if m in message)
            message = f"host key rejected: the device did not present its pinned key (ssh: {marker})"
        return HostProblem(
            task=task,
            status=status,
            reason=self.redact(one_line(message)) or str(status),
            host_key_rejected=rejected,
        )


def _result_message(res: Mapping[str, Any]) -> str:
    if "censored" in res:
        return "output hidden (no_log)"
    parts = [str(res.get("msg") or "")]
    item = _failed_item(res)
    if item is not None and "censored" in item:
        parts.append("(item output hidden (no_log))")
    elif item is not None:  # a loop: the task's own msg is only "One or more items failed"
        label = item.get("_ansible_item_label", item.get("item"))
        said = str(item.get("msg") or item.get("stderr") or "")
        parts.append(f"(item {label!r}: {said})" if said else f"(item {label!r})")
    stderr = str(res.get("stderr") or res.get("module_stderr") or "")
    if stderr and stderr not in parts[0]:
        parts.append(stderr)
    return " ".join(p for p in parts if p)


def _failed_item(res: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first failed item of a loop task's result, if any."""
    results = res.get("results")
    if not isinstance(results, list):
        return None
    return next((r for r in results if isinstance(r, Mapping) and r.get("failed")), None)


def _parse_stats(data: Mapping[str, Any]) -> dict[str, HostStatsDict]:
    hosts: set[str] = set()
    for key in (*_STATS_KEYS, "processed"):
        hosts.update((data.get(key) or {}).keys())
    return {
        host: {ours: int((data.get(theirs) or {}).get(host, 0)) for theirs, ours in _STATS_KEYS.items()}
        for host in sorted(hosts)
    }
