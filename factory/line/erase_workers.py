"""Erases in worker processes, so the engine's CPU work never competes with the controller's.

With every erase on a thread of the agent, 48 erases (pattern fills, numpy compares, their
pipeline threads) share one GIL with the controller's short database transactions; a thread
holding SQLite's write lock then waits for the GIL at every statement, and the whole line
queues behind it. :class:`EraseWorkers` is a drop-in ``erase_fn`` for the controller: it runs
:func:`imaging.engine.erase` in a few long-lived child processes (each running several erases on
threads) and relays progress, cancellation, the result and pre-write refusals.

Crash safety: a worker reads its socket to the agent all the time and exits at once when it
closes, so a worker never outlives a killed agent and never writes on after the agent's
successor has opened a new erase round. A worker that dies mid-erase fails that erase
("outcome unknown"); nothing from it can be certified.

Protocol (pickled over a socketpair): agent -> worker ``("erase", id, path, options, cancelled)``
and ``("cancel", id)``; worker -> agent ``("ready", pid)``, ``("progress", id, Progress)``,
``("done", id, EraseResult)`` and ``("error", id, exception)``.
"""

from __future__ import annotations

import itertools
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from imaging.engine import Progress, erase
from imaging.errors import EraseFailure, ImagingError
from imaging.result import EraseResult

CANCEL_POLL_SECONDS = 0.1  # how soon a cancel requested on the agent reaches the worker
READY_TIMEOUT_SECONDS = 60.0
# Erasing is bulk work; the agent's bookkeeping (which holds the database's write lock) is what
# everyone waits for, so on a busy CPU the agent goes first.
WORKER_NICENESS = 10
_REPO = Path(__file__).resolve().parents[2]


class Msg(StrEnum):
    """The first item of every message between the agent and a worker. Messages carry the plain
    string value: the worker runs this module as ``__main__``, so a pickled member would name a
    class the other side cannot find."""

    ERASE = "erase"  # agent -> worker: (ERASE, id, path, options, cancelled)
    CANCEL = "cancel"  # agent -> worker: (CANCEL, id): the job was stopped (any StopKind)
    READY = "ready"  # worker -> agent: (READY, pid), once the engine is imported
    PROGRESS = "progress"  # worker -> agent: (PROGRESS, id, Progress)
    DONE = "done"  # worker -> agent: (DONE, id, EraseResult)
    ERROR = "error"  # worker -> agent: (ERROR, id, exception): a refusal or a bug
    LOST = "lost"  # agent only: the worker died with the erase; its outcome is unknown


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    sock: socket.socket  # kept to shut down: that wakes our reader and tells the worker to exit
    conn: Connection
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    tasks: dict[int, queue.SimpleQueue[tuple[str, Any]]] = field(default_factory=dict)
    sent: set[int] = field(default_factory=set)  # tasks whose erase message reached the socket
    ready: threading.Event = field(default_factory=threading.Event)
    alive: bool = True

    def send(self, message: tuple[Any, ...]) -> None:
        with self.send_lock:
            self.conn.send(message)


class EraseWorkers:
    """A callable with :data:`factory.line.job_runner.EraseFn`'s signature, backed by processes."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("EraseWorkers needs at least one process")
        self.processes = processes
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def launch(self) -> None:
        """Spawn the workers without waiting for them (they import the engine meanwhile)."""
        with self._lock:
            while len(self._workers) < self.processes:
                self._workers.append(self._spawn())

    def start(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Spawn the workers and wait until each has imported the engine."""
        self.launch()
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            if not worker.ready.wait(timeout):
                raise RuntimeError(f"erase worker {worker.proc.pid} did not start within {timeout:.0f} s")

    def close(self) -> None:
        """Close the sockets (each worker exits when it sees that) and reap the processes."""
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
        for worker in workers:
            _shutdown(worker.sock)
        for worker in workers:
            try:
                worker.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [w.proc.pid for w in self._workers if w.alive]

    @property
    def in_flight(self) -> int:
        """Erases handed to a worker (sent, not merely assigned) and not yet answered."""
        with self._lock:
            return sum(len(w.sent) for w in self._workers)

    def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO), env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "factory.line.erase_workers", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            theirs.close()
        worker = _Worker(proc, ours, Connection(os.dup(ours.fileno())))
        threading.Thread(target=self._read, args=(worker,), name=f"erase-worker-{proc.pid}", daemon=True).start()
        return worker

    def _read(self, worker: _Worker) -> None:
        """Route a worker's messages to the job threads waiting for them."""
        while True:
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                break
            kind, task_id = message[0], message[1]
            if kind == Msg.READY:
                worker.ready.set()
                continue
            with self._lock:
                inbox = worker.tasks.get(task_id)
            if inbox is not None:
                inbox.put((kind, message[2]))
        with self._lock:
            worker.alive = False
            orphans = list(worker.tasks.values())
            if worker in self._workers:
                self._workers.remove(worker)
        worker.ready.set()
        try:
            code: int | None = worker.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        for inbox in orphans:
            inbox.put((Msg.LOST.value, f"erase worker process {worker.proc.pid} ended (exit {code})"))
        worker.conn.close()
        worker.sock.close()

    def _pick(self) -> _Worker:
        """The least busy live worker (a dead one is replaced here)."""
        with self._lock:
            if self._closed:
                raise EraseFailure("the controller is stopping: erase not started")
            while len(self._workers) < self.processes:
                self._workers.append(self._spawn())
            return min(self._workers, key=lambda w: len(w.tasks))

    def _hand_over(self, task_id: int, inbox: queue.SimpleQueue[tuple[str, Any]], message: tuple[Any, ...]) -> _Worker:
        """Give the erase to a live worker. A worker that died before its reader thread noticed
        refuses the send; it never received the task, so another worker (or a fresh one) takes it."""
        for _ in range(self.processes + 2):
            worker = self._pick()
            with self._lock:
                if not worker.alive:
                    continue
                worker.tasks[task_id] = inbox
            try:
                worker.send(message)
                with self._lock:
                    worker.sent.add(task_id)
                return worker
            except (OSError, EOFError):
                with self._lock:
                    worker.tasks.pop(task_id, None)
                    worker.alive = False
                    if worker in self._workers:
                        self._workers.remove(worker)
        raise EraseFailure("no erase worker process could take the erase: erase not started")

    # ------------------------------------------------------------------ the erase

    def __call__(
        self,
        path: str,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
        **options: Any,
    ) -> EraseResult:
        task_id = next(self._ids)
        inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        cancel_sent = cancel is not None and cancel.is_set()
        worker = self._hand_over(task_id, inbox, (Msg.ERASE.value, task_id, path, options, cancel_sent))
        try:
            while True:
                if cancel is not None and cancel.is_set() and not cancel_sent:
                    worker.send((Msg.CANCEL.value, task_id))
                    cancel_sent = True
                try:
                    kind, payload = inbox.get(timeout=CANCEL_POLL_SECONDS)
                except queue.Empty:
                    continue
                if kind == Msg.PROGRESS:
                    if progress is not None:
                        progress(payload)
                elif kind == Msg.DONE:
                    return payload  # type: ignore[no-any-return]
                elif kind == Msg.ERROR:
                    raise payload
                else:  # LOST: the worker died mid-erase; the medium's state is unknown
                    raise EraseFailure(f"{payload}: erase outcome unknown")
        except (OSError, EOFError) as exc:  # the socket broke while sending
            raise EraseFailure(f"erase worker unreachable ({exc}): erase outcome unknown") from exc
        finally:
            with self._lock:
                worker.tasks.pop(task_id, None)
                worker.sent.discard(task_id)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already gone
        pass


# ---------------------------------------------------------------------- the worker process


def _portable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else an ImagingError naming it."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return ImagingError(f"{type(exc).__name__}: {exc}")


def serve(conn: Connection) -> None:
    """Run erases for the agent at the other end of ``conn`` until it goes away."""
    send_lock = threading.Lock()
    cancels: dict[int, threading.Event] = {}

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(message)

    def run(task_id: int, path: str, options: dict[str, Any], cancel: threading.Event) -> None:
        message: tuple[Any, ...]
        try:
            result = erase(path, progress=lambda p: send((Msg.PROGRESS.value, task_id, p)), cancel=cancel, **options)
            message = (Msg.DONE.value, task_id, result)
        except BaseException as exc:  # refusals (nothing written) and bugs travel back to the agent
            message = (Msg.ERROR.value, task_id, _portable(exc))
        finally:
            cancels.pop(task_id, None)
        try:
            send(message)
        except OSError:
            os._exit(0)

    os.nice(WORKER_NICENESS)
    send((Msg.READY.value, os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            # The agent closed the socket or was killed: stop every erase now, mid-write if need
            # be. Its successor fails these rounds and opens new ones; nothing here may go on.
            os._exit(0)
        if message[0] == Msg.ERASE:
            _, task_id, path, options, cancelled = message
            cancels[task_id] = threading.Event()
            if cancelled:
                cancels[task_id].set()
            threading.Thread(
                target=run, args=(task_id, path, options, cancels[task_id]), name=f"erase-{task_id}", daemon=True
            ).start()
        elif message[0] == Msg.CANCEL:
            event = cancels.get(message[1])
            if event is not None:
                event.set()


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
