"""A few I/O workers over one target's chunks, so more than one request is in flight.

A single reader or writer (dd, or one thread) leaves the device idle between one request completing
and the next being issued; two or three workers, each with its own buffers, keep it busy, and the
CPU work of a chunk (generating a keystream, comparing) runs while another worker's request is on
the device. Chunks are handed out in order; they complete out of order, so progress is reported as
a low-water mark: the bytes from the start with no gap, what is known to be done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator

from imaging.blockio import TargetIO
from imaging.errors import EraseFailure
from imaging.pipeline import Segment

CHUNKS_PER_WORKER = 4
# The worker index selects that worker's own buffers; (offset, length) is the chunk.
Work = Callable[[int, int, int], None]


def worker_count(io: TargetIO, wanted: int, chunks: int) -> int:
    """How many workers for ``chunks`` chunks: ``wanted`` on direct I/O, at most one per
    CHUNKS_PER_WORKER chunks (a pass of a few chunks is over before extra threads pay off, and
    one worker notices a cancel or failure at the very next chunk); one in buffered mode, whose
    syncs and tail descriptor are not shared between threads."""
    if not io.direct:
        return 1
    return max(1, min(wanted, chunks // CHUNKS_PER_WORKER))


def run_workers(segments: Iterable[Segment], work: Work, workers: int) -> None:
    """Run ``work`` on every segment with ``workers`` threads; the first error stops them all (a
    request already issued completes) and an error is raised here (see ``_first``)."""
    source = _Source(iter(segments))
    errors: list[BaseException] = []

    def loop(index: int) -> None:
        try:
            while (segment := source.next()) is not None:
                work(index, *segment)
        except BaseException as exc:  # handed to the caller's thread, raised there
            source.stop()
            errors.append(exc)

    if workers <= 1:
        loop(0)
    else:
        threads = [threading.Thread(target=loop, args=(i,), name=f"imaging-io-{i}") for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise _first(errors)


def _first(errors: list[BaseException]) -> BaseException:
    """The error to report: an unexpected one before any failure of the medium, else the failure
    at the lowest offset (several workers can fail at once, e.g. on a device that vanished)."""
    unexpected = [e for e in errors if not isinstance(e, EraseFailure)]
    if unexpected:
        return unexpected[0]
    failures = [e for e in errors if isinstance(e, EraseFailure)]
    return min(failures, key=lambda e: -1 if e.offset is None else e.offset)


class _Source:
    """The segments, handed out one at a time under a lock until exhausted or stopped."""

    def __init__(self, segments: Iterator[Segment]) -> None:
        self._segments = segments
        self._lock = threading.Lock()
        self._stopped = False

    def next(self) -> Segment | None:
        with self._lock:
            if self._stopped:
                return None
            return next(self._segments, None)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True


class Watermark:
    """Bytes done contiguously from ``start``, whatever order the chunks complete in.

    ``on_bytes`` gets the mark each time it advances (under the lock, so a progress reporter that
    is not thread-safe sees one call at a time); ``total`` counts every completed chunk.
    """

    def __init__(self, on_bytes: Callable[[int], None] | None, start: int = 0) -> None:
        self._on_bytes = on_bytes
        self._start = start
        self.mark = start
        self.total = 0
        self._ahead: dict[int, int] = {}
        self._lock = threading.Lock()

    def done(self, offset: int, length: int) -> None:
        with self._lock:
            self.total += length
            self._ahead[offset] = length
            moved = False
            while self.mark in self._ahead:
                self.mark += self._ahead.pop(self.mark)
                moved = True
            if moved and self._on_bytes is not None:
                self._on_bytes(self.mark - self._start)
