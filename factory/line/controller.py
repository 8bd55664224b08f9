"""The bench controller: one per bench host, fed by udev/SNMP (or the simulated line).

``submit(event)`` is the single entry point for hardware events; the UdevWatcher callback and
the simulated line both call it. Threads do the rest:

* events (a few lanes; one slot's events always on the same lane, in order): slot occupancy,
  job creation and, capacity permitting, the claim, in one short transaction per event;
* dispatcher: claims queued jobs the events did not (retries, freed capacity) within the bench
  and site limits; each claimed job runs on a thread of its own;
* heartbeat: renews the agent's and its jobs' leases, writes erase progress for other processes'
  boards, and relays technicians' cancel/abort.

Erases run in worker processes (``erase_workers.py``) unless ``erase_processes`` is 0.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from factory.kernel.clock import utc_now
from factory.kernel.context import AppContext
from factory.kernel.db.engine import make_engine, read_scope, session_scope
from factory.line import jobs
from factory.line.bench_config import LineConfig
from factory.line.bus import LineBus
from factory.line.erase_workers import EraseWorkers
from factory.line.job_runner import EraseFn, JobRunner, RunnerContext
from factory.line.models import Job, JobStatus, LineAgent, Slot
from factory.line.network_slots import NETWORK_EVENTS, NetworkEvent, NetworkSlots
from factory.line.provision_step import NoOpProvisioner, Provisioner
from factory.line.reconcile import ReconcileReport, interrupt_orphans, sync_slots
from factory.line.remote_media import RemoteEraseSettings
from factory.line.slots import Attachment, AttachResult, attach, detach, lock_slot, register_benches
from hardware_drivers.events import DeviceAttached, DeviceDetached, UdevEvent
from imaging.engine import Progress, erase

log = logging.getLogger(__name__)

HardwareEvent = UdevEvent | NetworkEvent
EVENT_LANES = 4


BOARD_NOTICES = 20  # how many of an agent's latest notices the board shows


@dataclass
class Notice:
    """Something the board should show that is not a job: an unmapped port, a bad event."""

    at: str
    message: str


@dataclass
class _Stats:
    events: int = 0
    unmapped: int = 0
    notices: list[Notice] = field(default_factory=list)


class Controller:
    def __init__(
        self,
        context: AppContext,
        config: LineConfig,
        *,
        bus: LineBus | None = None,
        erase_fn: EraseFn | None = None,
        provisioner: Provisioner | None = None,
        present: Callable[[], Iterable[UdevEvent]] | None = None,
        observers: list[Callable[[int, Progress], None]] | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.context = context
        # Every running job holds a connection at times: size the pool for the agent's slots.
        self.engine = engine or make_engine(
            context.settings.database_url, pool_size=min(64, config.slot_count + 4), max_overflow=8
        )
        self.config = config
        self.bus = bus or LineBus()
        self.run_id = uuid.uuid4().hex
        self.provisioner: Provisioner = provisioner or NoOpProvisioner()
        self._present = present or (lambda: ())
        # Events for one slot stay in order on one lane; different slots' events are handled in
        # parallel (on PostgreSQL a slow attach must not hold up the rest of the bench).
        self._lanes: list[queue.Queue[tuple[float, HardwareEvent] | None]] = [queue.Queue() for _ in range(EVENT_LANES)]
        self._inflight = 0  # submitted but not yet handled
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._runners: dict[int, JobRunner] = {}
        self._runner_threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._bench_ids: list[int] = []
        self._queued_query = select(Job.id).where(Job.status == JobStatus.QUEUED).limit(1)  # narrowed in start()
        self._site = context.settings.site_name
        self.stats = _Stats()
        self._notices_changed = False
        self._notice_lock = threading.Lock()
        self.reconcile_report: ReconcileReport | None = None
        self.lost = threading.Event()  # set if another process took over our agent name
        # Switch-port slots (MAC occupancy, link state, switch failures): factory/line/network_slots.py
        self.network = NetworkSlots(
            self.engine,
            config.port_map,
            self.bus,
            bench_ids=lambda: self._bench_ids,
            provision_name=self.provisioner.name,
            notice=self._notice,
            release=lambda code: self._detached(code, None),
            wake=self._wake.set,
        )
        # Default: erase in worker processes (config.erase_processes), off this process's GIL.
        use_workers = erase_fn is None and config.erase_processes > 0
        self.erase_workers = EraseWorkers(config.erase_processes) if use_workers else None
        self._runner_ctx = RunnerContext(
            engine=self.engine,
            settings=context.settings,
            agent=config.agent,
            run_id=self.run_id,
            verifier=context.site_keys.verifier(),
            erase=erase_fn or self.erase_workers or erase,
            provisioner=self.provisioner,
            bus=self.bus,
            level=config.erase_level,
            verify_mode=config.verify_mode,
            observers=list(observers or []),
            remote=RemoteEraseSettings(config.network.ssh_private_key),  # switch-port slots: erase over SSH
        )

    @property
    def actor(self) -> str:
        return f"agent:{self.config.agent}"

    @property
    def running_jobs(self) -> list[int]:
        with self._lock:
            return list(self._runners)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ReconcileReport:
        """Take the benches, reconcile them with what is present, then start working."""
        if self.erase_workers is not None:
            self.erase_workers.launch()  # they import the engine while we reconcile
        try:
            return self._start()
        except BaseException:
            if self.erase_workers is not None:
                self.erase_workers.close()
            raise

    def _start(self) -> ReconcileReport:
        now = time.time()
        with session_scope(self.engine) as s:
            me = s.get(LineAgent, self.config.agent)
            if me is None:
                me = LineAgent(name=self.config.agent, run_id=self.run_id, started_at=utc_now(), lease_expires_at=0.0)
            me.run_id, me.host, me.pid, me.started_at = self.run_id, socket.gethostname(), os.getpid(), utc_now()
            me.lease_expires_at = now + self.config.lease_seconds
            s.add(me)
            benches = register_benches(s, self.config, site=self._site, run_id=self.run_id, now=now)
            self._bench_ids = [b.id or 0 for b in benches]
        self._queued_query = (
            select(Job.id).where(Job.status == JobStatus.QUEUED, col(Job.bench_id).in_(self._bench_ids)).limit(1)
        )
        present = {}
        for event in self._present():
            code = self.config.port_map.slot_for_device(event)
            if code is not None and isinstance(event, DeviceAttached):
                present[code] = Attachment(event.serial, event.device_node, event.size_bytes, time.time())
        report = ReconcileReport()
        with session_scope(self.engine) as s:
            report.interrupted = interrupt_orphans(s, bench_ids=self._bench_ids, run_id=self.run_id, actor=self.actor)
        with session_scope(self.engine) as s:
            sync_slots(
                s,
                bench_ids=self._bench_ids,
                present=present,
                provision_name=self.provisioner.name,
                max_attempts=self.config.max_attempts,
                report=report,
            )
        self.reconcile_report = report
        log.info("agent %s reconciled: %s", self.config.agent, report.summary())
        self.bus.publish("agent", agent=self.config.agent, reconcile=report.summary())
        if self.erase_workers is not None:
            self.erase_workers.start()
        loops: list[tuple[str, Callable[[], None]]] = [
            (f"events-{n}", lambda lane=lane: self._event_loop(lane)) for n, lane in enumerate(self._lanes)
        ]
        for name, target in (*loops, ("dispatch", self._dispatch_loop), ("heartbeat", self._heartbeat_loop)):
            thread = threading.Thread(target=target, name=f"line-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._wake.set()
        return report

    def stop(self, drain_seconds: float = 10.0) -> None:
        """Stop claiming, let running jobs finish for up to ``drain_seconds``, interrupt the rest."""
        self._stopping.set()
        for lane in self._lanes:
            lane.put(None)
        self._wake.set()
        deadline = time.monotonic() + drain_seconds
        while self.running_jobs and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            runners = list(self._runners.values())
            threads = list(self._runner_threads.values())
        for runner in runners:
            runner.request_stop("stopping", "interrupted: controller stopped")
        for thread in threads:
            thread.join(timeout=10)
        for thread in self._threads:
            thread.join(timeout=5)
        if self.erase_workers is not None:
            self.erase_workers.close()
        try:
            with session_scope(self.engine) as s:
                me = s.get(LineAgent, self.config.agent)
                if me is not None and me.run_id == self.run_id:
                    me.lease_expires_at = time.time()  # hand the benches over at once
                    s.add(me)
        except Exception as exc:  # the database may be the reason we are stopping
            log.warning("could not release agent lease: %s", exc)
        if self.engine is not self.context.engine:
            self.engine.dispose()

    # ------------------------------------------------------------------ events

    def submit(self, event: HardwareEvent) -> None:
        """The one entry point for hardware events (udev watcher, SNMP, simulated line)."""
        with self._lock:
            self._inflight += 1
        self._lanes[self._lane_of(event)].put((time.time(), event))

    def _lane_of(self, event: HardwareEvent) -> int:
        """Dock events go by slot; switch events keep one order among themselves on lane 0."""
        if isinstance(event, DeviceAttached | DeviceDetached):
            code = self.config.port_map.slot_for_device(event)
            if code is not None:
                return zlib.crc32(code.encode()) % len(self._lanes)
        return 0

    def _event_loop(self, lane: queue.Queue[tuple[float, HardwareEvent] | None]) -> None:
        while True:
            item = lane.get()
            if item is None:
                return
            detected, event = item
            with self._lock:
                self.stats.events += 1
            try:
                self.handle(event, detected)
            except Exception as exc:  # one bad event must not blind the bench
                log.exception("event %s failed", event)
                self._notice(f"event from {getattr(event, 'id_path', None) or event} failed: {exc}")
            finally:
                with self._lock:
                    self._inflight -= 1

    def handle(self, event: HardwareEvent, detected: float) -> None:
        if isinstance(event, DeviceAttached | DeviceDetached):
            code = self.config.port_map.slot_for_device(event)
            if code is None:
                self.stats.unmapped += 1
                self._notice(f"{event.serial or 'device'} on unmapped port {event.id_path or event.bench_port}")
                return
            if isinstance(event, DeviceAttached):
                self._attached(code, Attachment(event.serial, event.device_node, event.size_bytes, detected))
            else:
                self._detached(code, event.serial)
        elif isinstance(event, NETWORK_EVENTS):
            self.network.handle(event, detected)

    def _attached(self, code: str, seen: Attachment) -> None:
        claimed: list[int] = []
        with session_scope(self.engine) as s:
            slot = lock_slot(s, code)
            if slot.bench_id not in self._bench_ids:
                return
            result = attach(s, slot, seen)
            if result is AttachResult.ATTACHED:
                jobs.create_job(s, slot, provision_name=self.provisioner.name, detected_epoch=seen.detected_at)
                claimed = self._claim_here(s)
        for job_id in claimed:
            self._launch(job_id)
        self.bus.publish("slot", slot=code, result=result.value)
        if not claimed:
            self._wake.set()

    def _claim_here(self, s: Session) -> list[int]:
        """Claim the new job in the transaction that created it, saving the dispatcher's round
        trip; if that fails, the attachment still commits and the dispatcher claims it later."""
        if self._stopping.is_set() or self.lost.is_set():
            return []
        try:
            with s.begin_nested():
                return self._claim(s)
        except Exception as exc:
            log.warning("claim at attach failed, left to the dispatcher: %s", exc)
            return []

    def _detached(self, code: str, serial: str | None) -> None:
        runner: JobRunner | None = None
        with session_scope(self.engine) as s:
            slot = lock_slot(s, code)
            if slot.bench_id not in self._bench_ids:
                return
            job = jobs.active_job_for_slot(s, slot.id or 0)
            if not detach(s, slot, serial):
                self.bus.publish("slot", slot=code, result="conflict cleared")
                return
            if job is not None:
                with self._lock:
                    runner = self._runners.get(job.id or 0)
                if runner is None and job.status == JobStatus.QUEUED:
                    jobs.finish(s, job, JobStatus.CANCELLED, "device removed before the job started")
                elif runner is None:  # running under a dead owner: settle it here
                    reason = "device removed from slot while its controller was gone"
                    jobs.fail_device_if_ours(s, job, reason=reason, actor=self.actor, slot_code=code)
                    jobs.finish(s, job, JobStatus.FAILED, reason, "re-insert it to restart from the beginning")
        if runner is not None:
            runner.request_stop("removed", "device removed from slot")
        self.bus.publish("slot", slot=code, result="detached")
        self._wake.set()

    def _notice(self, message: str) -> None:
        with self._notice_lock:  # its own lock: notices may come from code holding self._lock
            self.stats.notices.append(Notice(utc_now(), message))
            del self.stats.notices[:-50]
            self._notices_changed = True  # the next heartbeat stores them for boards in other processes
        self.bus.publish("notice", message=message)

    # ------------------------------------------------------------------ dispatch

    def _capacity(self) -> int:
        per_agent = sum(b.max_jobs for b in self.config.benches)
        return min(per_agent, self.config.site_max_jobs) - len(self.running_jobs)

    def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(timeout=0.25)
            self._wake.clear()
            if self._stopping.is_set() or self.lost.is_set():
                return
            if self._capacity() <= 0 or not self._anything_queued():
                continue
            try:
                with session_scope(self.engine) as s:
                    claimed = self._claim(s)
            except Exception as exc:
                log.warning("claim failed, retrying: %s", exc)
                time.sleep(0.2)
                continue
            for job_id in claimed:
                self._launch(job_id)

    def _claim(self, s: Session) -> list[int]:
        return jobs.claim_jobs(
            s,
            agent=self.config.agent,
            run_id=self.run_id,
            bench_ids=self._bench_ids,
            site=self._site,
            site_limit=self.config.site_max_jobs,
            limit=self._capacity(),
            lease_seconds=self.config.lease_seconds,
        )

    def _anything_queued(self) -> bool:
        """A read (no write lock): most wake-ups (a job ended, a slot emptied) have nothing to claim."""
        try:
            with read_scope(self.engine) as conn:
                return conn.execute(self._queued_query).first() is not None
        except Exception as exc:
            log.warning("queue check failed: %s", exc)
            return True  # let the claim try, and report its own error

    def _launch(self, job_id: int) -> None:
        runner = JobRunner(self._runner_ctx, job_id)
        thread = threading.Thread(target=self._run_job, args=(runner,), name=f"job-{job_id}", daemon=True)
        with self._lock:
            self._runners[job_id] = runner
            self._runner_threads[job_id] = thread
        thread.start()

    def _run_job(self, runner: JobRunner) -> None:
        try:
            runner.run()
        finally:
            with self._lock:
                self._runners.pop(runner.job_id, None)
                self._runner_threads.pop(runner.job_id, None)
            self._wake.set()

    # ------------------------------------------------------------------ heartbeat

    def _heartbeat_loop(self) -> None:
        while not self._stopping.wait(self.config.heartbeat_seconds):
            progress = {r.job_id: live for r in self._runner_snapshot() if (live := r.progress_to_write()) is not None}
            with self._notice_lock:
                notices = [asdict(n) for n in self.stats.notices[-BOARD_NOTICES:]] if self._notices_changed else None
                self._notices_changed = False
            try:
                with session_scope(self.engine) as s:
                    requests = jobs.renew_leases(
                        s,
                        agent=self.config.agent,
                        run_id=self.run_id,
                        lease_seconds=self.config.lease_seconds,
                        progress=progress,
                        notices=notices,
                    )
            except jobs.LostOwnership as exc:
                log.error("%s: stopping work", exc)
                self.lost.set()
                for runner in self._runner_snapshot():
                    runner.request_stop("stopping", str(exc))
                return
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)
                if notices is not None:
                    with self._notice_lock:
                        self._notices_changed = True  # try again next beat
                continue
            with self._lock:
                for job_id, (kind, by) in requests.items():
                    runner = self._runners.get(job_id)
                    if runner is not None:
                        verb = "cancelled" if kind == "cancel" else "aborted"
                        runner.request_stop(kind, f"{verb} by {by}")

    def _runner_snapshot(self) -> list[JobRunner]:
        with self._lock:
            return list(self._runners.values())

    # ------------------------------------------------------------------ helpers for tests and tools

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """True once no event is pending and no job is queued or running on our benches."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                quiet = self._inflight == 0 and not self._runners
            if quiet:
                with read_scope(self.engine) as conn:
                    busy = conn.execute(
                        select(Job.id).where(
                            Job.bench_id.in_(self._bench_ids),  # type: ignore[attr-defined]
                            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),  # type: ignore[attr-defined]
                        )
                    ).first()
                if busy is None and not self.running_jobs:
                    return True
            time.sleep(0.05)
        return False

    def slot(self, code: str) -> Slot | None:
        with session_scope(self.engine) as s:
            return s.exec(select(Slot).where(Slot.code == code)).first()
