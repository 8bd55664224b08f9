"""Outcomes from event streams in the shapes real runs produce (ansible-core 2.19 / ansible-runner
2.4, captured locally; see EVENT_VARIANTS.md). Each stream is ours, trimmed to what the adapter reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from harness.provisioning_site import RecordingSink

from factory.provisioning.adapter_types import HostOutcome, HostStatus, _Attempt, _host_outcome, completion_wrapper
from factory.provisioning.events import COMPLETION_TASK, EventRouter

Event = dict[str, object]


def _result(kind: str, task: str, host: str = "h1", **data: object) -> Event:
    return {"event": kind, "stdout": "", "event_data": {"host": host, "task": task, "play": "all", **data}}


def _failed(task: str, host: str = "h1", ignore_errors: bool | None = None, **res: object) -> Event:
    # ansible-runner always sends ignore_errors on runner_on_failed: true, or null (not false).
    return _result("runner_on_failed", task, host, ignore_errors=ignore_errors, res={"changed": False, **res})


def _stats(**counts: Mapping[str, int]) -> Event:
    keys = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored", "processed")
    return {"event": "playbook_on_stats", "stdout": "", "event_data": {k: dict(counts.get(k, {})) for k in keys}}


def _done(*hosts: str) -> list[Event]:
    """The adapter's completion play: a controller-side debug, ok on every host still running."""
    return [_result("runner_on_ok", COMPLETION_TASK, h, res={"msg": "completed", "changed": False}) for h in hosts]


def _outcome(events: Iterable[Event], status: str, host: str = "h1", wrapped: bool = True) -> HostOutcome:
    router = EventRouter(RecordingSink(), expect_completion=wrapped)
    for event in events:
        router(event)
    return _host_outcome(host, _Attempt("job-1", status, router), 1)


def test_a_failure_rescued_by_a_block_is_not_a_failure() -> None:
    events = [
        _failed("Fails in block", rc=1, msg="non-zero return code"),
        _result("runner_on_ok", "Rescue it", res={"changed": False}),
        *_done("h1"),
        _stats(ok={"h1": 3}, rescued={"h1": 1}, processed={"h1": 1}),
    ]
    outcome = _outcome(events, "successful")
    assert outcome.status is HostStatus.OK and outcome.stats["rescued"] == 1
    assert outcome.failed_task is None


def test_a_rescue_that_fails_names_the_task_that_really_failed() -> None:
    events = [
        _failed("Fails in block", rc=1, msg="non-zero return code"),
        _failed("Rescue fails", msg="rescue broke"),
        _stats(failures={"h1": 1}, rescued={"h1": 1}, processed={"h1": 1}),
    ]
    outcome = _outcome(events, "failed")
    assert (outcome.status, outcome.failed_task, outcome.reason) == (HostStatus.FAILED, "Rescue fails", "rescue broke")


def test_ignore_errors_and_ignore_unreachable_are_the_authors_call() -> None:
    ignored = [
        _failed("Optional", ignore_errors=True, msg="meh"),
        *_done("h1"),
        _stats(ok={"h1": 3}, ignored={"h1": 1}, processed={"h1": 1}),
    ]
    assert _outcome(ignored, "successful").status is HostStatus.OK
    # ansible-core >= 2.14 counts an ignored unreachable as ok + ignored, not dark (ansible#77693).
    unreachable = {"msg": "Failed to connect to the host via ssh: Connection refused", "unreachable": True}
    ignored_unreachable = [
        _result("runner_on_unreachable", "Ping", res=unreachable),
        *_done("h1"),
        _stats(ok={"h1": 3}, ignored={"h1": 1}, processed={"h1": 1}),
    ]
    assert _outcome(ignored_unreachable, "successful").status is HostStatus.OK
    # Where the stats still count it dark (ansible-core < 2.14), it is unreachable.
    dark = [_result("runner_on_unreachable", "Ping", res=unreachable), _stats(dark={"h1": 1}, processed={"h1": 1})]
    assert _outcome(dark, "failed").status is HostStatus.UNREACHABLE


def test_no_play_matching_the_device_is_never_a_success() -> None:
    # "skipping: no hosts matched": rc 0, status successful, the playbook's stats empty.
    bare = [{"event": "playbook_on_no_hosts_matched", "stdout": "", "event_data": {}}, _stats()]
    outcome = _outcome(bare, "successful", wrapped=False)
    assert outcome.status is HostStatus.INCOMPLETE and "no hosts matched" in (outcome.reason or "")
    # Through the adapter the completion play still matches the host: it proves nothing alone.
    wrapped = [*bare[:1], *_done("h1"), _stats(ok={"h1": 1}, processed={"h1": 1})]
    outcome = _outcome(wrapped, "successful")
    assert outcome.status is HostStatus.INCOMPLETE and "no task of the playbook ran" in (outcome.reason or "")


def test_a_host_stopped_by_another_hosts_fatal_failure_is_not_provisioned() -> None:
    # any_errors_fatal / max_fail_percentage: h2's stats are clean, but its play never finished.
    events = [
        _result("runner_on_skipped", "Fail on h1", "h2"),
        _failed("Fail on h1", msg="boom"),
        _stats(failures={"h1": 1}, skipped={"h2": 1}, processed={"h1": 1, "h2": 1}),
    ]
    h2 = _outcome(events, "failed", host="h2")
    assert h2.status is HostStatus.INCOMPLETE and "any_errors_fatal" in (h2.reason or "")
    assert _outcome(events, "failed", host="h1").status is HostStatus.FAILED
    # The same failure without the fatal flag: h2 runs on to the end, and is provisioned.
    finished = [*events[:2], *_done("h2"), _stats(ok={"h2": 2}, failures={"h1": 1}, processed={"h1": 1, "h2": 1})]
    assert _outcome(finished, "failed", host="h2").status is HostStatus.OK


def test_a_failed_run_with_clean_stats_is_not_a_success() -> None:
    events = [_result("runner_on_ok", "Write", res={"changed": True}), _stats(ok={"h1": 1}, processed={"h1": 1})]
    outcome = _outcome(events, "failed", wrapped=False)
    assert outcome.status is HostStatus.INCOMPLETE and "runner reported the run failed" in (outcome.reason or "")


def test_a_failing_handler_fails_the_host() -> None:
    events = [
        _result("runner_on_ok", "Notify", res={"changed": True}),
        {"event": "playbook_on_notify", "stdout": "", "event_data": {"host": "h1", "handler": "Refresh"}},
        _failed("Refresh", rc=1, msg="non-zero return code"),
        _stats(ok={"h1": 1}, changed={"h1": 1}, failures={"h1": 1}, processed={"h1": 1}),
    ]
    outcome = _outcome(events, "failed")
    assert (outcome.status, outcome.failed_task) == (HostStatus.FAILED, "Refresh")


def test_a_loop_failure_names_the_failed_item() -> None:
    items = [
        {"rc": 0, "failed": False, "msg": "", "item": "/bin/true", "_ansible_item_label": "/bin/true"},
        {"rc": 1, "failed": True, "msg": "non-zero return code", "item": "/bin/false", "_ansible_item_label": "/bin/f"},
    ]
    events = [
        _result("runner_item_on_ok", "Loop", res=items[0]),
        _result("runner_item_on_failed", "Loop", res=items[1]),
        _failed("Loop", msg="One or more items failed", results=items),
        _stats(failures={"h1": 1}, processed={"h1": 1}),
    ]
    outcome = _outcome(events, "failed")
    assert outcome.status is HostStatus.FAILED
    assert outcome.reason == "One or more items failed (item '/bin/f': non-zero return code)"  # the label, as displayed
    hidden = [_failed("Loop", msg="One or more items failed", results=[{"censored": "hidden", "failed": True}])]
    assert "item output hidden (no_log)" in (_outcome(hidden, "failed", wrapped=False).reason or "")


def test_meta_end_play_is_the_authors_end() -> None:
    events = [_result("runner_on_ok", "First", res={}), *_done("h1"), _stats(ok={"h1": 2}, processed={"h1": 1})]
    assert _outcome(events, "successful").status is HostStatus.OK


def test_the_adapter_runs_the_playbook_then_the_completion_check() -> None:
    plays = json.loads(completion_wrapper(Path("/p/provision.yml")))
    assert plays[0]["ansible.builtin.import_playbook"] == "/p/provision.yml"
    assert plays[1]["hosts"] == "all" and plays[1]["tasks"][0]["name"] == COMPLETION_TASK
