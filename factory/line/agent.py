"""One agent per bench host: the controller plus its event sources (udev and the bench switches,
or the simulated line).

``factory line run`` and ``factory serve --simulate`` both build a :class:`LineAgent`; several
agents may share one PostgreSQL database, each driving its own benches.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from factory.kernel.context import AppContext
from factory.line.bench_config import LineConfig
from factory.line.bus import LineBus
from factory.line.controller import Controller, HardwareEvent
from factory.line.netboot_deploy import with_image_deploy
from factory.line.network_slots import SwitchFailed, SwitchRecovered
from factory.line.provision_step import Provisioner
from factory.line.reconcile import ReconcileReport
from factory.line.simulate import NoOpProvisioner, SimulatedLine
from factory.line.simulate_tablets import SimulatedTablets
from factory.tablets.service import TabletBench
from hardware_drivers.events import UdevEvent
from hardware_drivers.switch_poller import SwitchPoller

log = logging.getLogger(__name__)

# How long a thread may hold the GIL while another waits (CPython's default is 5 ms). The agent is
# dozens of job threads each doing short database round trips: a thread whose query returned waits
# for the GIL behind threads building ORM statements, up to this interval per round trip, and on
# PostgreSQL it waits so while holding its log's lock. 0.5 ms: the line benchmark (48 slots,
# alternated, PostgreSQL) finished 328-429 devices/min against 243-271 at 5 ms, with less time
# outside the erase call; the extra switches cost less than the waiting they save.
AGENT_SWITCH_INTERVAL = 0.0005


@dataclass(frozen=True)
class SimulationOptions:
    disk_bytes: int = 16 * 2**20
    pull_rate: float = 0.0
    seed: int | None = None
    max_devices: int | None = None
    dwell: tuple[float, float] = (0.5, 2.0)
    gap: tuple[float, float] = (0.3, 3.0)
    tablets: bool = True  # False: laptops only (tests that are about something else)


class LineAgentProcess:
    """Start, run and stop one agent; ``simulation=None`` watches real udev events."""

    def __init__(
        self,
        context: AppContext,
        config: LineConfig,
        *,
        simulation: SimulationOptions | None = None,
        bus: LineBus | None = None,
        provisioner: Provisioner | None = None,
        tablets: TabletBench | None = None,
    ) -> None:
        self.context = context
        self.config = config
        self.bus = bus or LineBus()
        self.sim: SimulatedLine | None = None
        self._watcher: object | None = None
        self.switches: SwitchPoller | None = None  # real mode with [[switches]] in the site file
        self._switch_interval = sys.getswitchinterval()
        if provisioner is None and simulation is not None:
            provisioner = NoOpProvisioner()  # the simulated line's stand-in; a real line fails closed without one
        sim_tablets = SimulatedTablets() if simulation is not None and simulation.tablets and tablets is None else None
        if sim_tablets is not None:
            tablets = sim_tablets.bench()  # the simulated line's stand-in; a real line holds tablet jobs without one
        # Network-booted laptops get the profile's golden image before provisioning ([deploy]).
        net = config.network
        provisioner = with_image_deploy(context.engine, net.deploy_images, net.ssh_private_key, provisioner)
        self.controller = Controller(
            context, config, bus=self.bus, provisioner=provisioner, present=self._present, tablets=tablets
        )
        if simulation is not None:
            self.sim = SimulatedLine(
                context,
                config,
                self.controller.submit,
                disk_bytes=simulation.disk_bytes,
                pull_rate=simulation.pull_rate,
                seed=simulation.seed,
                max_devices=simulation.max_devices,
                dwell=simulation.dwell,
                gap=simulation.gap,
                engine=self.controller.engine,
                tablets=sim_tablets,
            )

    def _present(self) -> list[UdevEvent]:
        """What is plugged in now: the simulated slots, or udev's enumeration."""
        return self.sim.present() if self.sim is not None else _udev_present()

    def start(self) -> ReconcileReport:
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, AGENT_SWITCH_INTERVAL))
        if self.sim is None:
            # Listen before reconciling so nothing plugged in meanwhile is missed; the controller
            # queues events until its threads run, and a re-seen device is recognised as "same".
            # The switches first: a trap port that cannot be bound fails the start before anything runs.
            self.switches = _start_switches(self.config, self.controller.submit)
            try:
                self._watcher = _start_udev(self.controller.submit)
                report = self.controller.start()
            except BaseException:
                self._stop_sources()
                raise
        else:
            report = self.controller.start()
            self.sim.start()
        return report

    def stop(self, drain_seconds: float = 10.0) -> None:
        if self.sim is not None:
            self.sim.stop()
        self._stop_sources()
        self.controller.stop(drain_seconds)
        sys.setswitchinterval(self._switch_interval)  # the process's own again (tests run agents in-process)

    def _stop_sources(self) -> None:
        if self.switches is not None:
            self.switches.stop()
        if self._watcher is not None:
            self._watcher.stop()  # type: ignore[attr-defined]

    def healthy(self, within: float) -> bool:
        """Still ours and the heartbeat has come round in the last ``within`` seconds (a failed beat
        counts: a database outage is not a hang, and a restart would not cure it)."""
        return not self.controller.lost.is_set() and time.monotonic() - self.controller.beat_at < within

    def run_until_signal(self, duration: float | None = None) -> None:
        """Block until SIGINT/SIGTERM, ``duration`` seconds, or loss of our agent name."""
        done = threading.Event()

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            done.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
        deadline = time.monotonic() + duration if duration else None
        while not done.wait(0.2):
            if self.controller.lost.is_set():
                break
            if deadline is not None and time.monotonic() >= deadline:
                break


def _start_switches(config: LineConfig, submit: Callable[[HardwareEvent], None]) -> SwitchPoller | None:
    """Poll the site's switches (and receive their traps): changes and failures go to the controller."""
    network = config.network
    if not network.switches:
        return None
    poller = SwitchPoller(
        network.switches,
        submit,
        lambda switch, error: submit(SwitchFailed(switch, error)),
        on_recovered=lambda switch: submit(SwitchRecovered(switch)),
        traps=network.traps,
        max_backoff=network.max_backoff,
    )
    poller.start()
    return poller


def _udev_present() -> list[UdevEvent]:
    import pyudev

    from hardware_drivers.udev import enumerate_present

    return enumerate_present(pyudev.Context())


def _start_udev(callback: object) -> object:
    import pyudev

    from hardware_drivers.udev import UdevWatcher

    watcher = UdevWatcher(pyudev.Context(), callback)  # type: ignore[arg-type]
    watcher.start()
    return watcher
