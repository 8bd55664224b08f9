"""A chain of stages, each on a thread of its own, that page-aligned slots flow through in order.

Deploy reads (or decompresses) a chunk, writes it and hashes it. ``imaging.pipeline`` overlaps two
stages and so made writing and hashing wait for each other chunk by chunk: a chunk whose hash ran
late (the hasher thread descheduled on a busy machine) left the disk idle. Here each stage only
waits for its own input, so a stage that falls behind catches up while the others keep going, and
the run takes as long as its slowest stage rather than the sum of each chunk's slowest.

Every slot visits the producer, then each stage in turn, in segment order, then returns to the
free list. One stage runs in the caller's thread (progress callbacks and cancellation stay there);
the first exception of any stage stops them all and is raised in the caller.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from imaging.pipeline import Segment

S = TypeVar("S")
Stage = Callable[[S, int, int], None]  # (slot, offset, length)

_END = object()


class StagedPipeline(Generic[S]):
    def __init__(self, slots: Sequence[S], produce: Stage[S], stages: Sequence[Stage[S]], caller_stage: int) -> None:
        if len(slots) < len(stages) + 1:
            raise ValueError("a staged pipeline needs a slot per stage plus one to overlap them")
        if not 0 <= caller_stage < len(stages):
            raise ValueError(f"caller_stage {caller_stage} is not one of the {len(stages)} stages")
        self._slots = slots
        self._produce = produce
        self._stages = stages
        self._caller_stage = caller_stage

    def run(self, segments: Iterable[Segment]) -> None:
        run = _Run(self._slots, len(self._stages))
        threads = [threading.Thread(target=run.guard, args=(self._producer, run, segments), name="deploy-read")]
        threads += [
            threading.Thread(target=run.guard, args=(self._consumer, run, index), name=f"deploy-stage{index}")
            for index in range(len(self._stages))
            if index != self._caller_stage
        ]
        for thread in threads:
            thread.daemon = True
            thread.start()
        # A failure anywhere stops every stage (guard); after a clean end each thread has its _END.
        run.guard(self._consumer, run, self._caller_stage)
        for thread in threads:
            thread.join()
        if run.errors:
            raise run.errors[0]

    def _producer(self, run: _Run[S], segments: Iterable[Segment]) -> None:
        for offset, length in segments:
            slot = run.free.get()
            if slot is _END or run.stop.is_set():
                return
            self._produce(slot, offset, length)  # type: ignore[arg-type]
            run.inboxes[0].put((slot, offset, length))
        run.inboxes[0].put(_END)

    def _consumer(self, run: _Run[S], index: int) -> None:
        inbox = run.inboxes[index]
        last = index == len(self._stages) - 1
        while True:
            item = inbox.get()
            if run.stop.is_set():
                return
            if item is _END:
                if not last:
                    run.inboxes[index + 1].put(_END)
                return
            slot, offset, length = item  # type: ignore[misc]
            self._stages[index](slot, offset, length)
            if last:
                run.free.put(slot)
            else:
                run.inboxes[index + 1].put(item)


class _Run(Generic[S]):
    """The queues of one run: free slots, one inbox per stage, and the first failure."""

    def __init__(self, slots: Sequence[S], stages: int) -> None:
        self.free: queue.Queue[object] = queue.Queue()
        for slot in slots:
            self.free.put(slot)
        self.inboxes: list[queue.Queue[object]] = [queue.Queue() for _ in range(stages)]
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

    def guard(self, work: Callable[..., None], *args: object) -> None:
        try:
            work(*args)
        except BaseException as exc:  # handed to the caller's thread, raised there
            self.errors.append(exc)
            self.stop_all()

    def stop_all(self) -> None:
        if self.stop.is_set():
            return
        self.stop.set()
        for box in (self.free, *self.inboxes):
            box.put(_END)
