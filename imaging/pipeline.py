"""Two-stage pipeline: a worker thread prepares the next slot while the caller consumes this one.

Used to overlap pattern generation with writing, and reading with comparing. The heavy work in
either stage (pwritev/preadv, AES-CTR, numpy) releases the GIL, so the stages run in parallel.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

S = TypeVar("S")
Segment = tuple[int, int]  # (offset, length)

_DONE = object()


class Pipeline(Generic[S]):
    def __init__(
        self,
        slots: Sequence[S],
        prepare: Callable[[S, int, int], None],
        consume: Callable[[S, int, int], None],
    ) -> None:
        if len(slots) < 2:
            raise ValueError("a pipeline needs at least two slots to overlap its stages")
        self._slots = slots
        self._prepare = prepare
        self._consume = consume

    def run(self, segments: Iterable[Segment]) -> None:
        free: queue.Queue[S | None] = queue.Queue()
        ready: queue.Queue[object] = queue.Queue()
        for slot in self._slots:
            free.put(slot)
        stop = threading.Event()

        def worker() -> None:
            try:
                for offset, length in segments:
                    slot = free.get()
                    if slot is None or stop.is_set():
                        return
                    self._prepare(slot, offset, length)
                    ready.put((slot, offset, length))
            except BaseException as exc:  # handed to the consumer thread, re-raised there
                ready.put(exc)
                return
            ready.put(_DONE)

        thread = threading.Thread(target=worker, name="imaging-pipeline", daemon=True)
        thread.start()
        try:
            while True:
                item = ready.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                slot, offset, length = item  # type: ignore[misc]
                self._consume(slot, offset, length)
                free.put(slot)
        finally:
            stop.set()
            free.put(None)
            thread.join()
