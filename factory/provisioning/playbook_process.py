"""One ``ansible-playbook`` process for the provisioning adapter, and nothing else runs one.

The adapter (``ansible_adapter.py``, the project's one way into ``playbooks/``) calls
:func:`run_playbook`; this module is its private process half. Ansible's ``default`` stdout
callback prints the display text (stdout and stderr share one pipe, as on a terminal) and the
``df_events`` callback plugin (``ansible_plugins/df_events.py``) writes one JSON line per task
event to a second pipe, so the adapter costs what plain ``ansible-playbook`` costs plus a process
start: no pty, no per-event files, no event wrapping inside Ansible.

The vault password goes to the process's stdin, read once by a tiny vault client script (``cat``)
that Ansible runs at start-up: it is never written to disk, an argument or the environment.
Everything a run shows is kept under ``artifacts/<ident>/``: ``command`` (argv, cwd and the pinned
Ansible settings), ``stdout``, ``job_events.jsonl``, ``rc`` and ``status``.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

PLUGIN_DIR = Path(__file__).resolve().parent / "ansible_plugins"
EVENTS_FD_VAR = "DF_EVENTS_FD"
# How often cancel and the deadline are looked at while Ansible is quiet.
POLL_S = 0.25
# After SIGTERM, Ansible gets this long to stop its workers before the group is killed.
_STOP_GRACE_S = 5.0
# Once ansible-playbook has exited, output still held by a straggler is not waited for longer.
_DRAIN_S = 2.0


@dataclass(frozen=True)
class PlaybookRun:
    """One ``ansible-playbook`` invocation: what to run, where, and with what."""

    command: tuple[str, ...]
    cwd: Path
    settings: Mapping[str, str]  # the pinned ANSIBLE_* environment, recorded in artifacts
    stdin_text: str = field(repr=False)  # the vault password line
    artifact_dir: Path
    deadline: float  # time.monotonic() after which the run is stopped ("timeout")


@dataclass
class _Lines:
    """Splits a byte stream into text lines, keeping an unfinished tail for the next read."""

    emit: Callable[[str], None]
    tail: bytes = b""

    def feed(self, chunk: bytes) -> None:
        *lines, self.tail = (self.tail + chunk).split(b"\n")
        for line in lines:
            self.emit(line.decode("utf-8", "replace"))

    def close(self) -> None:
        if self.tail:
            self.emit(self.tail.decode("utf-8", "replace"))
            self.tail = b""


def run_playbook(
    spec: PlaybookRun,
    on_output: Callable[[str], None],
    on_event: Callable[[Mapping[str, Any]], object],
    cancel: threading.Event,
) -> str:
    """Run ``spec`` to its end, or until ``cancel`` or its deadline; the final status word
    (``successful``, ``failed``, ``canceled`` or ``timeout``, as ansible-runner words them)."""
    spec.artifact_dir.mkdir(parents=True)
    env = {**os.environ, **spec.settings, "ANSIBLE_CALLBACK_PLUGINS": str(PLUGIN_DIR)}
    env["ANSIBLE_CALLBACKS_ENABLED"] = "df_events"
    (spec.artifact_dir / "command").write_text(
        json.dumps({"command": list(spec.command), "cwd": str(spec.cwd), "env": dict(spec.settings)}, indent=2)
    )
    events_read, events_write = os.pipe()
    env[EVENTS_FD_VAR] = str(events_write)
    try:
        process = subprocess.Popen(
            spec.command, cwd=spec.cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, pass_fds=(events_write,), start_new_session=True,
        )  # fmt: skip
    finally:
        os.close(events_write)  # the child holds its own copy: EOF comes when Ansible is done
    with (
        open(spec.artifact_dir / "stdout", "w", encoding="utf-8") as stdout_file,
        open(spec.artifact_dir / "job_events.jsonl", "w", encoding="utf-8") as events_file,
    ):
        try:
            _feed_stdin(process, spec.stdin_text)
            status = _pump(
                process, events_read, spec.deadline, cancel, _sinks(stdout_file, events_file, on_output, on_event)
            )
        finally:
            os.close(events_read)
            if process.stdout is not None:
                process.stdout.close()
            if process.poll() is None:
                _stop(process)
    (spec.artifact_dir / "rc").write_text(str(process.returncode))
    (spec.artifact_dir / "status").write_text(status)
    return status


def _sinks(
    stdout_file: IO[str],
    events_file: IO[str],
    on_output: Callable[[str], None],
    on_event: Callable[[Mapping[str, Any]], object],
) -> tuple[_Lines, _Lines]:
    def output(line: str) -> None:
        stdout_file.write(line + "\n")
        on_output(line)

    def event(line: str) -> None:
        if line.strip():
            events_file.write(line + "\n")
            on_event(json.loads(line))

    return _Lines(output), _Lines(event)


def _feed_stdin(process: subprocess.Popen[bytes], text: str) -> None:
    assert process.stdin is not None
    try:
        process.stdin.write(text.encode())
        process.stdin.close()
    except BrokenPipeError:  # Ansible died before reading it; its output says why
        pass


def _pump(
    process: subprocess.Popen[bytes],
    events_fd: int,
    deadline: float,
    cancel: threading.Event,
    sinks: tuple[_Lines, _Lines],
) -> str:
    """Read both pipes until Ansible is done; stop it on cancel or at the deadline."""
    assert process.stdout is not None
    output, events = sinks
    selector = selectors.DefaultSelector()
    # Display text first when both are ready: the callback flushed it before writing the event.
    selector.register(process.stdout.fileno(), selectors.EVENT_READ, output)
    selector.register(events_fd, selectors.EVENT_READ, events)
    exited_at: float | None = None
    with selector:
        while selector.get_map():
            if cancel.is_set():
                return _stopped(process, "canceled")
            now = time.monotonic()
            if now >= deadline:
                return _stopped(process, "timeout")
            if exited_at is None and process.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > _DRAIN_S:
                break  # a straggler (never Ansible itself) holds a pipe open
            ready = selector.select(min(POLL_S, deadline - now))
            for key, _ in sorted(ready, key=lambda item: item[0].data is not output):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    key.data.feed(chunk)
                else:
                    key.data.close()
                    selector.unregister(key.fd)
    return "successful" if process.wait() == 0 else "failed"


def _stopped(process: subprocess.Popen[bytes], status: str) -> str:
    _stop(process)
    return status


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop Ansible and everything it started in its session (workers, ssh clients)."""
    for sig, wait_s in ((signal.SIGTERM, _STOP_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
