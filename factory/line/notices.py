"""The controller's counters and notices: what the board should show that is not a job (an
unmapped port, a failing switch, an event that could not be handled).

Notices are kept in memory, published on the bus at once, and handed to the heartbeat only when
they changed, which stores the latest on the agent's row so a board served by another process
shows them too.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from factory.kernel.clock import utc_now
from factory.line.bus import LineBus

BOARD_NOTICES = 20  # how many of an agent's latest notices the board shows
KEPT_NOTICES = 50  # how many the controller keeps in memory


@dataclass
class Notice:
    """Something the board should show that is not a job: an unmapped port, a bad event."""

    at: str
    message: str


@dataclass
class LineStats:
    """Counters and notices of one controller. ``notices`` has its own lock: notices may come
    from code holding the controller's locks."""

    events: int = 0
    unmapped: int = 0
    notices: list[Notice] = field(default_factory=list)
    _changed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def notice(self, message: str, bus: LineBus) -> None:
        with self._lock:
            self.notices.append(Notice(utc_now(), message))
            del self.notices[:-KEPT_NOTICES]
            self._changed = True  # the next heartbeat stores them for boards in other processes
        bus.publish("notice", message=message)

    def take_changed(self) -> list[dict[str, Any]] | None:
        """The latest notices for the board if they changed since the last call, else None."""
        with self._lock:
            changed, self._changed = self._changed, False
            return [asdict(n) for n in self.notices[-BOARD_NOTICES:]] if changed else None

    def unsent(self) -> None:
        """The heartbeat could not store them: try again next beat."""
        with self._lock:
            self._changed = True
