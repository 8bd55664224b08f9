"""The bench controller: one per bench host, fed by udev/SNMP (or the simulated line).

``submit(event)`` is the single entry point for hardware events (udev watcher, simulated line). Threads do the rest:

* events (a few lanes; one slot's events always on one lane, in order): slot occupancy, job
  creation and, capacity permitting, the claim, in one short transaction per event;
* dispatcher: claims queued jobs the events did not (retries, freed capacity) within the limits;
  each claimed job runs on a thread of its own;
* heartbeat: renews leases, writes erase progress for other processes' boards, relays cancel/abort.

Erases run in worker processes (``erase_workers.py``) unless ``erase_processes`` is 0.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from functools import partial

from sqlalchemy import Engine
from sqlmodel import Session, select

from factory.kernel.context import AppContext
from factory.kernel.db.engine import make_engine, read_scope, session_scope
from factory.kernel.db.retry import until_reachable
from factory.line import jobs
from factory.line.bench_config import LineConfig
from factory.line.bus import LineBus
from factory.line.dispatcher import JobDispatcher
from factory.line.erase_workers import EraseWorkers
from factory.line.errors import LostOwnership, SimulationOnly
from factory.line.job_log import JobLogBuffer, logged_scope
from factory.line.job_runner import EraseFn, JobRunner, RunnerContext
from factory.line.leases import register_agent, release_agent, renew_leases
from factory.line.models import Job, JobStatus, Slot, StopKind
from factory.line.netboot_service import BenchNetworks
from factory.line.network_slots import NETWORK_EVENTS, NetworkEvent, NetworkSlots
from factory.line.notices import BOARD_NOTICES, LineStats, Notice
from factory.line.provision_step import NO_PROVISIONING_NOTICE, Provisioner, simulation_only, step_name
from factory.line.reconcile import ReconcileReport, reconcile_benches
from factory.line.remote_media import RemoteEraseSettings
from factory.line.scheduled_heads import ScheduledHeads
from factory.line.slots import Attachment, detach, lock_slot
from factory.line.tablet_slots import TabletBench, attached_node, checked_bench, tablet_serial
from hardware_drivers.events import DeviceAttached, DeviceDetached, UdevEvent
from imaging.engine import Progress, erase

log = logging.getLogger(__name__)

HardwareEvent = UdevEvent | NetworkEvent
EVENT_LANES = 4
Observer = Callable[[int, Progress], None]

__all__ = ["BOARD_NOTICES", "Controller", "HardwareEvent", "Notice"]


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
        observers: list[Observer] | None = None,
        engine: Engine | None = None,
        tablets: TabletBench | None = None,
    ) -> None:
        if simulation_only(provisioner) and not config.simulated:
            raise SimulationOnly(f"'{step_name(provisioner)}' runs only on a simulated line: pass --provisioning FILE")
        self.tablets = checked_bench(tablets, config.simulated)  # None: tablet steps hold their job
        self.context = context
        # Every running job holds a connection at times: size the pool for the agent's slots.
        self.engine = engine or make_engine(
            context.settings.database_url, pool_size=min(64, config.slot_count + 4), max_overflow=8
        )
        self.config = config
        self.bus = bus or LineBus()
        self.run_id = uuid.uuid4().hex
        # None: no provisioning settings; provision steps hold their job and the device stays put.
        self.provisioner = provisioner
        self.provision_name = step_name(provisioner)
        self._present = present or (lambda: ())
        # One slot's events stay in order on one lane; slots in parallel (a slow attach must not hold up the bench).
        self._lanes: list[queue.Queue[tuple[float, HardwareEvent] | None]] = [queue.Queue() for _ in range(EVENT_LANES)]
        self._inflight = 0  # submitted but not yet handled
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.stats = LineStats()
        self.reconcile_report: ReconcileReport | None = None
        self.lost = threading.Event()  # set if another process took over our agent name
        self.beat_at = time.monotonic()  # when the last heartbeat attempt ended (the watchdog's sign of life)
        self.heads = ScheduledHeads(self.engine, context.settings)  # signed tree heads on the site's schedule
        self.network = self._network_slots()
        # Bench networks ([[netboot]]): one dnsmasq each, running while this agent runs.
        self.bench_networks = BenchNetworks(config.network.netboot, context.settings.work_dir, submit=self.submit)
        # Default: erase in worker processes (config.erase_processes), off this process's GIL.
        use_workers = erase_fn is None and config.erase_processes > 0
        self.erase_workers = EraseWorkers(config.erase_processes) if use_workers else None
        runner_ctx = self._runner_context(erase_fn or self.erase_workers or erase, observers or [])
        self.dispatcher = JobDispatcher(
            config,
            runner_ctx,
            site=context.settings.site_name,
            wake=self._wake,
            stopping=self._stopping,
            lost=self.lost,
        )

    def _network_slots(self) -> NetworkSlots:  # switch-port slots: MAC occupancy, link state, switch failures
        return NetworkSlots(
            self.engine,
            self.config.port_map,
            self.bus,
            bench_ids=lambda: self.dispatcher.bench_ids,
            provision_name=self.provision_name,
            notice=self._notice,
            release=lambda code, why=None: self._detached(code, None, why),
            wake=self._wake.set,
            network_boot=bool(self.config.network.netboot),
        )

    def _runner_context(self, erase_fn: EraseFn, observers: list[Observer]) -> RunnerContext:
        return RunnerContext(
            engine=self.engine,
            settings=self.context.settings,
            agent=self.config.agent,
            run_id=self.run_id,
            verifier=self.context.site_keys.verifier(),
            erase=erase_fn,
            provisioner=self.provisioner,
            bus=self.bus,
            tablets=self.tablets,
            level=self.config.erase_level,
            verify_mode=self.config.verify_mode,
            observers=list(observers),
            remote=RemoteEraseSettings(self.config.network.ssh_private_key),  # switch-port slots: erase over SSH
            stopping=self._stopping,
            lease_seconds=self.config.lease_seconds,
        )

    @property
    def actor(self) -> str:
        return f"agent:{self.config.agent}"

    @property
    def running_jobs(self) -> list[int]:
        return self.dispatcher.running_jobs

    def runner(self, job_id: int) -> JobRunner | None:
        """The runner of one of our running jobs (tests and tools look at it)."""
        return self.dispatcher.runner(job_id)

    def _runner_snapshot(self) -> list[JobRunner]:
        return self.dispatcher.runners()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ReconcileReport:
        """Take the benches, reconcile them with what is present, then start working."""
        if self.erase_workers is not None:
            self.erase_workers.launch()  # they import the engine while we reconcile
        try:
            self.bench_networks.start()  # laptops on a bench network boot only while dnsmasq serves it
            return self._start()
        except BaseException:
            self.bench_networks.stop()
            if self.erase_workers is not None:
                self.erase_workers.close()
            raise

    def _start(self) -> ReconcileReport:
        with session_scope(self.engine) as s:
            bench_ids = register_agent(s, self.config, site=self.dispatcher.site, run_id=self.run_id)
        self.dispatcher.take(bench_ids)
        report = reconcile_benches(
            self.engine,
            self.config,
            bench_ids=bench_ids,
            present=self._present(),
            run_id=self.run_id,
            actor=self.actor,
            provision_name=self.provision_name,
        )
        self.reconcile_report = report
        log.info("agent %s reconciled: %s", self.config.agent, report.summary())
        if self.provisioner is None:
            self._notice(NO_PROVISIONING_NOTICE)
        self.bus.publish("agent", agent=self.config.agent, reconcile=report.summary())
        if self.erase_workers is not None:
            self.erase_workers.start()
        loops: list[tuple[str, Callable[[], None]]] = [
            (f"events-{n}", lambda lane=lane: self._event_loop(lane)) for n, lane in enumerate(self._lanes)
        ]
        for name, target in (*loops, ("dispatch", self.dispatcher.loop), ("heartbeat", self._heartbeat_loop)):
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
        self._interrupt_runners()
        for thread in self._threads:
            thread.join(timeout=5)
        # A claim under way when stopping began (an event lane or the dispatcher between its stop check
        # and the launch) may have started a runner after the first pass; with the loops joined none can.
        self._interrupt_runners()
        if self.erase_workers is not None:
            self.erase_workers.close()
        try:
            with session_scope(self.engine) as s:
                release_agent(s, self.config.agent, self.run_id)
        except Exception as exc:  # the database may be the reason we are stopping
            log.warning("could not release agent lease: %s", exc)
        self.bench_networks.stop()
        if self.engine is not self.context.engine:
            self.engine.dispose()

    def _interrupt_runners(self) -> None:
        self.dispatcher.stop_all(StopKind.STOPPING, "interrupted: controller stopped")
        self.dispatcher.join(timeout=10)

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
                # Retried while the database is unreachable (failover): dropped, a device plugged in
                # meanwhile would sit in its slot with no job. A retry of a committed attach is "same".
                until_reachable(partial(self.handle, event, detected), stopping=self._stopping, what=f"event {event}")
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
                self._attached(code, Attachment(tablet_serial(event), attached_node(event), event.size_bytes, detected))
            else:
                self._detached(code, tablet_serial(event))
        elif isinstance(event, NETWORK_EVENTS):
            self.network.handle(event, detected)

    def _attached(self, code: str, seen: Attachment) -> None:
        claimed: list[int] = []
        held: int | None = None  # a job that ended as it was created (held: nothing to run)
        with logged_scope(self.engine) as (s, logs):
            slot = lock_slot(s, code)
            if slot.bench_id not in self.dispatcher.bench_ids:
                return
            result, job, plan = jobs.attach_and_queue(s, slot, seen, provision_name=self.provision_name, logs=logs)
            if job is not None:
                held = job.id if job.status == JobStatus.HELD else None
                claimed = self.dispatcher.claim_here(s, logs)
        for job_id in claimed:  # the new job's runner is handed its plan; another claimed here reads its own
            self.dispatcher.launch(job_id, plan if job is not None and job_id == job.id else None)
        self.bus.publish("slot", slot=code, result=result.value)
        if held is not None:
            self.bus.publish("job", job=held)  # committed: as a runner announces its job's end
        if not claimed:
            self._wake.set()

    def _detached(self, code: str, serial: str | None, why: str | None = None) -> None:
        runner: JobRunner | None = None
        with logged_scope(self.engine) as (s, logs):
            slot = lock_slot(s, code)
            if slot.bench_id not in self.dispatcher.bench_ids:
                return
            job = jobs.active_job_for_slot(s, slot.id or 0)
            if not detach(s, slot, serial):
                self.bus.publish("slot", slot=code, result="conflict cleared")
                return
            if job is not None:
                runner = self.dispatcher.runner(job.id or 0)
                if runner is None:
                    self._settle_unrun(s, logs, job, code)
        if runner is not None:
            runner.request_stop(StopKind.REMOVED, why or "device removed from slot")
        self.bus.publish("slot", slot=code, result="detached")
        self._wake.set()

    def _settle_unrun(self, s: Session, logs: JobLogBuffer, job: Job, code: str) -> None:
        """The device left its slot while no runner of ours ran its job: settle the job here."""
        if job.status == JobStatus.QUEUED:
            jobs.finish(s, job, JobStatus.CANCELLED, "device removed before the job started", logs=logs)
            return
        reason = "device removed from slot while its controller was gone"  # running under a dead owner
        jobs.fail_device_if_ours(s, job, reason=reason, actor=self.actor, slot_code=code, logs=logs)
        jobs.finish(s, job, JobStatus.FAILED, reason, "re-insert it to restart from the beginning", logs=logs)

    def _notice(self, message: str) -> None:
        self.stats.notice(message, self.bus)

    # ------------------------------------------------------------------ heartbeat

    def _heartbeat_loop(self) -> None:
        while not self._stopping.wait(self.config.heartbeat_seconds):
            beating = self._beat()
            self.beat_at = time.monotonic()
            self.heads.tick()
            if not beating:
                return

    def _beat(self) -> bool:
        """Renew leases, store progress and notices, relay technicians' requests; False once our name is taken."""
        runners = self.dispatcher.runners()
        progress = {r.job_id: live for r in runners if (live := r.progress_to_write()) is not None}
        notices = self.stats.take_changed()
        try:
            with session_scope(self.engine) as s:
                requests = renew_leases(
                    s, agent=self.config.agent, run_id=self.run_id, lease_seconds=self.config.lease_seconds,
                    progress=progress, notices=notices,
                )  # fmt: skip
        except LostOwnership as exc:
            log.error("%s: stopping work", exc)
            self.lost.set()
            self.dispatcher.stop_all(StopKind.STOPPING, str(exc))
            return False
        except Exception as exc:
            log.warning("heartbeat failed: %s", exc)
            if notices is not None:
                self.stats.unsent()
            return True
        for job_id, (stop, by) in requests.items():
            runner = self.dispatcher.runner(job_id)
            if runner is not None:
                runner.request_stop(stop, f"{stop.done} by {by}")
        return True

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """True once no event is pending and no job is queued or running on our benches."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                quiet = self._inflight == 0
            if quiet and not self.running_jobs:
                with read_scope(self.engine) as conn:
                    busy = conn.execute(
                        select(Job.id).where(
                            Job.bench_id.in_(self.dispatcher.bench_ids),  # type: ignore[attr-defined]
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
