"""The one seam through which every external tool (nvme, hdparm) is run.

``SubprocessRunner`` runs the real tools; ``ReplayRunner`` serves recorded outputs from a scenario
file so firmware paths are tested without the hardware. ``RecordingRunner`` wraps either and keeps
every ``CommandRecord`` for the erase result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from imaging.errors import UnexpectedCommand
from imaging.result import CommandRecord

# Tools live in /usr/sbin, which is not on every service account's PATH.
_SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
TIMED_OUT = -9
NOT_FOUND = 127
_WILDCARD = re.compile(r"\{([a-z_]+)\}")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@runtime_checkable
class CommandRunner(Protocol):
    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord: ...


def _resolve(tool: str) -> str | None:
    found = shutil.which(tool)
    if found:
        return found
    for directory in _SBIN_DIRS:
        candidate = os.path.join(directory, tool)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class SubprocessRunner:
    """Runs the real tool with a C locale (stable output to parse) and a hard timeout."""

    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord:
        argv = tuple(argv)
        started = utc_now()
        executable = _resolve(argv[0])
        if executable is None:
            return CommandRecord(argv, NOT_FOUND, "", f"{argv[0]}: command not found", started, utc_now())
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        try:
            done = subprocess.run(
                (executable, *argv[1:]),
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                env=env,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            return CommandRecord(argv, TIMED_OUT, out, err + f"\ntimed out after {timeout:g}s", started, utc_now())
        return CommandRecord(argv, done.returncode, done.stdout, done.stderr, started, utc_now())


class RecordingRunner:
    """Passes calls through and keeps their records in order (thread-safe)."""

    def __init__(self, inner: CommandRunner) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._records: list[CommandRecord] = []

    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord:
        record = self._inner.run(argv, timeout)
        with self._lock:
            self._records.append(record)
        return record

    @property
    def records(self) -> tuple[CommandRecord, ...]:
        with self._lock:
            return tuple(self._records)


Effect = Callable[[tuple[str, ...]], None]


class ReplayRunner:
    """Serves recorded tool outputs from a JSON scenario file.

    Scenario format::

        {"description": "...",
         "steps": [{"argv": ["nvme", "id-ctrl", "{dev}", "-o", "json"],
                    "stdout_file": "nvme/id-ctrl.json", "stdout": "...", "stderr": "...",
                    "returncode": 0, "effect": "zero-fill"}]}

    ``{dev}`` in argv and outputs is replaced by the device path; any other ``{name}`` in argv
    matches one argument and is replaced by it in the outputs (temporary passwords). Steps with the
    same argv are served in order and the last one repeats (a status polled until done). ``effect``
    names a callable given to the runner, run when the step is served, so a test can make the
    "firmware" act on its backing file.
    """

    def __init__(
        self,
        scenario: str | os.PathLike[str],
        *,
        device: str,
        effects: Mapping[str, Effect] | None = None,
    ) -> None:
        self._path = Path(scenario)
        self._device = device
        self._effects = dict(effects or {})
        data = json.loads(self._path.read_text())
        self.description: str = data.get("description", "")
        self._steps: list[dict[str, Any]] = list(data["steps"])
        self._served: dict[int, int] = {}
        self._lock = threading.Lock()
        self.calls: list[tuple[str, ...]] = []

    def _subst(self, text: str, captured: Mapping[str, str] | None = None) -> str:
        text = text.replace("{dev}", self._device)
        for name, value in (captured or {}).items():
            text = text.replace("{" + name + "}", value)
        return text

    def _match(self, pattern: Sequence[str], argv: tuple[str, ...]) -> dict[str, str] | None:
        """Captured wildcards when ``argv`` matches ``pattern``, else None."""
        if len(pattern) != len(argv):
            return None
        captured: dict[str, str] = {}
        for expected, actual in zip(pattern, argv, strict=True):
            wildcard = _WILDCARD.fullmatch(expected)
            if wildcard and wildcard.group(1) != "dev":
                captured[wildcard.group(1)] = actual
            elif self._subst(expected) != actual:
                return None
        return captured

    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord:
        argv = tuple(argv)
        started = utc_now()
        with self._lock:
            self.calls.append(argv)
            matches = [
                (i, captured)
                for i, step in enumerate(self._steps)
                if (captured := self._match(step["argv"], argv)) is not None
            ]
            if not matches:
                raise UnexpectedCommand(f"scenario {self._path.name} has no step for {' '.join(argv)}")
            unserved = [m for m in matches if m[0] not in self._served]
            index, captured = unserved[0] if unserved else matches[-1]
            self._served[index] = self._served.get(index, 0) + 1
            step = self._steps[index]
        stdout = str(step.get("stdout", ""))
        if "stdout_file" in step:
            stdout = (self._path.parent / str(step["stdout_file"])).read_text()
        effect = step.get("effect")
        if effect is not None:
            if effect not in self._effects:
                raise UnexpectedCommand(f"scenario effect {effect!r} was not provided by the test")
            self._effects[str(effect)](argv)
        return CommandRecord(
            argv,
            int(step.get("returncode", 0)),
            self._subst(stdout, captured),
            self._subst(str(step.get("stderr", "")), captured),
            started,
            utc_now(),
        )
