"""In-process notifications for live views: a version counter plus the latest few events.

The database stays the source of truth; the bus only tells the board (SSE) to look again now
rather than at its next poll. Thread-safe; cheap enough to publish on every progress tick.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BusEvent:
    version: int
    kind: str  # slot, job, progress, agent
    data: dict[str, Any]
    at: float


class LineBus:
    def __init__(self, keep: int = 256) -> None:
        self._cond = threading.Condition()
        self._version = 0
        self._recent: deque[BusEvent] = deque(maxlen=keep)
        self._live: dict[int, tuple[str, float]] = {}  # job id -> (step, progress), newest tick

    @property
    def version(self) -> int:
        return self._version

    def publish(self, kind: str, **data: Any) -> None:
        with self._cond:
            self._version += 1
            self._recent.append(BusEvent(self._version, kind, data, time.time()))
            if kind == "progress":
                self._live[int(data["job"])] = (str(data["step"]), float(data["progress"]))
            elif kind == "job" and "step" not in data:
                self._live.pop(int(data["job"]), None)
            self._cond.notify_all()

    def wait(self, since: int, timeout: float) -> int:
        """Block until the version moves past ``since`` or ``timeout`` passes; return the version."""
        with self._cond:
            self._cond.wait_for(lambda: self._version > since, timeout=timeout)
            return self._version

    def live_progress(self) -> dict[int, tuple[str, float]]:
        """The latest progress of running jobs in this process (fresher than the database)."""
        with self._cond:
            return dict(self._live)

    def since(self, version: int) -> list[BusEvent]:
        with self._cond:
            return [e for e in self._recent if e.version > version]


_process_bus: LineBus | None = None


def set_process_bus(bus: LineBus | None) -> None:
    """Publish the bus of the agent running in this process (``serve --simulate``) to the API."""
    global _process_bus
    _process_bus = bus


def process_bus() -> LineBus | None:
    return _process_bus
