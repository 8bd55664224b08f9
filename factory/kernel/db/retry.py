"""Waiting out a database that cannot be reached, for the long-running workers (the line).

When a PostgreSQL primary dies, its promoted standby takes writes a few seconds later; an engine
whose URL names both hosts (``target_session_attrs=read-write``) finds it on its next connection.
Until then every unit of work fails with a connection error. A request can answer 503 and let the
client retry; a worker that drops the work instead loses it (a device plugged in meanwhile that
never gets a job, a job that never records its end). These workers try the unit again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from factory.kernel.db.errors import is_busy

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_DELAY = 0.5
MAX_DELAY = 5.0


def until_reachable(action: Callable[[], T], *, stopping: threading.Event, what: str) -> T:
    """Run ``action`` (one whole transaction) until it does not fail for want of the database.

    Other errors, and any error once ``stopping`` is set, propagate. ``action`` must be safe to
    repeat: its transaction rolled back whole, or committed with the acknowledgement lost, so it
    must recognise its own earlier effect.
    """
    delay = FIRST_DELAY
    while True:
        try:
            return action()
        except Exception as exc:
            if not is_busy(exc) or stopping.is_set():
                raise
            log.warning("%s waits for the database: %s", what, exc)
        stopping.wait(delay)
        delay = min(delay * 2, MAX_DELAY)
