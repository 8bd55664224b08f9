"""Page-aligned slots filled in order by one or more producers, then read by every stage side by side.

Deploy reads (or decompresses) a chunk, then writes it and hashes it. Writing and hashing only read
the slot, so both get each filled slot at once, each on its own thread, and the slot goes back to
the free list when the last of them is done with it. Chained (write, then hash) a slot was held for
read + write + hash; on a 2-CPU machine each of the three takes about as long as the others
(SHA-256 on one core runs at about the disk's speed), so four slots left too little slack, and a
stage that ran late (its thread descheduled by other work) idled the disk. Each stage only waits
for its own input, so one that falls behind catches up while the others keep going.

Several producers keep several reads of a raw image in flight (one O_DIRECT read at a time leaves
the disk idle between requests, where dd's buffered reads have the kernel's readahead running).
Each claims the next segment together with a free slot, so slots are taken in segment order, and
hands its slot on only after every earlier segment's: the stages see the segments in order.

One stage runs in the caller's thread (progress callbacks and cancellation stay there); the first
exception of any producer or stage stops them all and is raised in the caller.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from imaging.pipeline import Segment

S = TypeVar("S")
Stage = Callable[[S, int, int], None]  # (slot, offset, length)

_END = object()


class StagedPipeline(Generic[S]):
    def __init__(
        self,
        slots: Sequence[S],
        produce: Stage[S],
        stages: Sequence[Stage[S]],
        caller_stage: int,
        producers: int = 1,
    ) -> None:
        if producers < 1:
            raise ValueError(f"a staged pipeline needs at least one producer, not {producers}")
        if len(slots) < producers + 1:
            raise ValueError("a staged pipeline needs a slot per producer plus one for the stages")
        if not 0 <= caller_stage < len(stages):
            raise ValueError(f"caller_stage {caller_stage} is not one of the {len(stages)} stages")
        self._slots = slots
        self._produce = produce
        self._stages = stages
        self._caller_stage = caller_stage
        self._producers = producers

    def run(self, segments: Iterable[Segment]) -> None:
        run = _Run(self._slots, len(self._stages), iter(segments))
        threads = [
            threading.Thread(target=run.guard, args=(self._producer, run), name=f"deploy-read{index}")
            for index in range(self._producers)
        ]
        threads += [
            threading.Thread(target=run.guard, args=(self._consumer, run, index), name=f"deploy-stage{index}")
            for index in range(len(self._stages))
            if index != self._caller_stage
        ]
        for thread in threads:
            thread.daemon = True
            thread.start()
        # A failure anywhere stops every stage (guard); after a clean end each stage has its _END.
        run.guard(self._consumer, run, self._caller_stage)
        for thread in threads:
            thread.join()
        if run.errors:
            raise run.errors[0]

    def _producer(self, run: _Run[S]) -> None:
        while (claim := run.claim()) is not None:
            ticket, slot, offset, length = claim
            self._produce(slot, offset, length)
            if not run.hand_on(ticket, _Filled(slot, offset, length, len(self._stages))):
                return

    def _consumer(self, run: _Run[S], index: int) -> None:
        inbox = run.inboxes[index]
        while True:
            item = inbox.get()
            if run.stop.is_set() or not isinstance(item, _Filled):
                return  # stopped, or _END
            self._stages[index](item.slot, item.offset, item.length)
            run.done_with(item)


class _Filled(Generic[S]):
    """A produced slot on its way through the stages; ``pending`` counts those not done with it."""

    __slots__ = ("length", "offset", "pending", "slot")

    def __init__(self, slot: S, offset: int, length: int, stages: int) -> None:
        self.slot = slot
        self.offset = offset
        self.length = length
        self.pending = stages


class _Run(Generic[S]):
    """One run's state: free slots, one inbox per stage, the first failure, and the tickets that
    keep several producers' segments in order."""

    def __init__(self, slots: Sequence[S], stages: int, segments: Iterator[Segment]) -> None:
        self.free: queue.Queue[object] = queue.Queue()
        for slot in slots:
            self.free.put(slot)
        self.inboxes: list[queue.Queue[object]] = [queue.Queue() for _ in range(stages)]
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self._segments = segments
        self._claiming = threading.Lock()
        self._issued = 0  # tickets handed out
        self._handed_on = 0  # tickets whose slot the stages have been given
        self._ended = False
        self._turn = threading.Condition()
        self._counting = threading.Lock()

    def claim(self) -> tuple[int, S, int, int] | None:
        """The next ticket, with a free slot and the segment to produce into it; None when no
        segment is left (the producer that finds the end hands it on, after every segment) or the
        run stopped. Holding the lock while waiting for a slot keeps slots taken in ticket order,
        so no producer waits for a slot held by one behind it."""
        with self._claiming:
            if self._ended or self.stop.is_set():
                return None
            segment = next(self._segments, None)
            if segment is None:
                self._ended = True
                self.hand_on(self._issued, _END)
                return None
            slot = self.free.get()
            if slot is _END:  # stopped
                return None
            ticket = self._issued
            self._issued += 1
        return ticket, slot, *segment  # type: ignore[return-value]

    def hand_on(self, ticket: int, item: object) -> bool:
        """Give ``item`` to every stage once every earlier ticket's has been; False if stopped."""
        with self._turn:
            self._turn.wait_for(lambda: self._handed_on == ticket or self.stop.is_set())
            if self.stop.is_set():
                return False
            for inbox in self.inboxes:
                inbox.put(item)
            self._handed_on += 1
            self._turn.notify_all()
        return True

    def done_with(self, item: _Filled[S]) -> None:
        """One stage is done with ``item``; the last one frees its slot."""
        with self._counting:
            item.pending -= 1
            last = item.pending == 0
        if last:
            self.free.put(item.slot)

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
        # Wake everything that may be waiting: one _END per inbox, and the one producer that can
        # be waiting for a free slot (the others wait for the claiming lock, then see the stop).
        for box in (self.free, *self.inboxes):
            box.put(_END)
        with self._turn:
            self._turn.notify_all()


def ordered_reads(slots: Sequence[S], readers: int, segs: Sequence[Segment], read: Stage[S], consume: Stage[S]) -> None:
    """``read`` the segments on ``readers`` threads, several requests in flight, and ``consume``
    each in order in this thread (SHA-256 is one sequential stream). dd reads one block at a time;
    on direct I/O the device returns more with a few requests queued, so the reads keep ahead of
    the hashing (at 512 MiB, load 5: read-back 0.97 s median with 3 readers, 1.14 s with one)."""
    pending: deque[tuple[Future[None], S, int, int]] = deque()
    todo = iter(segs)
    with ThreadPoolExecutor(max_workers=readers, thread_name_prefix="deploy-readback") as pool:

        def issue(slot: S) -> None:
            segment = next(todo, None)
            if segment is not None:
                pending.append((pool.submit(read, slot, *segment), slot, *segment))

        try:
            for slot in slots:
                issue(slot)
            while pending:
                future, slot, offset, length = pending.popleft()
                future.result()
                consume(slot, offset, length)
                issue(slot)
        finally:
            for future, *_ in pending:
                future.cancel()  # a failure stops the reads not yet started; started ones finish
