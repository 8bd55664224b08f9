"""Ansible callback plugin ``df_events``: the task events the provisioning adapter records.

Loaded by ``ansible-playbook`` itself (never imported by the project): the adapter points
``ANSIBLE_CALLBACK_PLUGINS`` at this directory, enables the plugin and hands it the write end of
a pipe in ``DF_EVENTS_FD``. Ansible's own ``default`` stdout callback still prints the display
text, exactly as plain ``ansible-playbook`` does; this plugin only adds one JSON line per event
the adapter uses (task start and result per host, the final stats), shaped like ansible-runner's
events (``{"event": ..., "event_data": {...}}``) so the adapter's router reads either.

Only the result fields the adapter reads are written, and a ``no_log`` result is replaced by
Ansible's censored marker, so the stored event file carries no secret a task handled.
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: df_events
    type: notification
    short_description: JSON lines of task events for the Device Factory provisioning adapter
    description:
      - Writes one JSON object per task start, task result and the final stats to the file
        descriptor named by DF_EVENTS_FD.
    requirements:
      - DF_EVENTS_FD set in the environment (the adapter does this)
"""

CENSORED = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
# What the adapter's router reads from a result: change flag and the failure's words.
_RESULT_KEYS = ("changed", "msg", "stderr", "module_stderr", "unreachable")
_STATS_FIELDS = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored", "processed")


class CallbackModule(CallbackBase):  # type: ignore[misc]  # Ansible's base class is untyped
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "df_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display: Any = None) -> None:
        super().__init__(display)
        fd = os.environ.get("DF_EVENTS_FD")
        self._out: IO[str] | None = os.fdopen(int(fd), "w", encoding="utf-8") if fd else None
        if self._out is None:
            self.disabled = True

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        if self._out is None:
            return
        # The stdout callback ran first for this event: flush its text so the display line
        # reaches the adapter before the event it belongs to.
        sys.stdout.flush()
        self._out.write(json.dumps({"event": event, "event_data": data}, default=str) + "\n")
        self._out.flush()

    def _result_event(self, event: str, result: Any, **extra: Any) -> None:
        data = {**_task_fields(_attr(result, "task")), "host": _attr(result, "host").get_name(), **extra}
        res = _attr(result, "result")
        if res is not None:
            data["res"] = _safe_result(res)
        self._emit(event, data)

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        self._emit("runner_on_start", {**_task_fields(task), "host": host.get_name()})

    def v2_runner_on_ok(self, result: Any) -> None:
        self._result_event("runner_on_ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._result_event("runner_on_failed", result, ignore_errors=ignore_errors)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._result_event("runner_on_unreachable", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._result_event("runner_on_skipped", result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._emit("playbook_on_stats", {name: dict(getattr(stats, name, {}) or {}) for name in _STATS_FIELDS})


def _attr(result: Any, name: str) -> Any:
    """``result.task`` / ``.host`` / ``.result`` (ansible-core 2.19+), else the older ``_task``..."""
    return getattr(result, name, None) or getattr(result, f"_{name}", None)


def _task_fields(task: Any) -> dict[str, Any]:
    role = getattr(task, "_role", None)
    role_name = role._role_name if role is not None else getattr(task, "role_name", "")
    fields = {"task": task.name or task.action}
    if role_name:
        fields["role"] = role_name
    return fields


def _safe_result(res: Any) -> dict[str, Any]:
    if res.get("_ansible_no_log") or "censored" in res:
        return {"censored": CENSORED}
    return {key: res[key] for key in _RESULT_KEYS if key in res}
