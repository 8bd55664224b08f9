"""The simulated line: devices arriving in and leaving bench slots, with real disks to erase.

Each simulated device carries one disk: a file under ``FACTORY_HOME/sim/<bench>/<slot>/``.
Returned devices are booked in at the returns desk and their disk is filled with a known data
pattern first; new stock is booked in from the supplier with an empty (sparse) disk; unknown
devices are not booked at all. A device enters its slot by an atomic rename and is announced
with the same ``DeviceAttached`` event udev produces (an ID_PATH the port map resolves), through
the controller's one entry point; it leaves by being deleted and announced with
``DeviceDetached``. After a crash, :meth:`SimulatedLine.present` enumerates what is in the slots,
as udev enumeration does for real docks.

The "technician" takes a device out a moment after its job finished, or pulls one mid-job when
``pull_rate`` says so.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import col, select

from factory.intake.service import MediaSpec, receive_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import read_scope, session_scope
from factory.line.bench_config import LineConfig, sim_id_path
from factory.line.identify import Identity
from factory.line.models import FINISHED_JOB_STATUSES, Job, JobStatus, Slot
from factory.line.provision_step import ProvisionOutcome, ProvisionRequest
from factory.line.simulate_tablets import USB, SimTablet, SimulatedTablets, arrival_event, new_tablet
from hardware_drivers.events import DeviceAttached, DeviceDetached, UdevEvent

log = logging.getLogger(__name__)

DEFAULT_MIX: dict[Identity, float] = {Identity.RETURNED: 0.55, Identity.NEW_STOCK: 0.3, Identity.UNKNOWN: 0.15}
DATA_PATTERN = b"SIMULATED OFFICER DATA: case notes, photos, mail. "
SIM_VENDOR = "SimDisk"
SIM_MODEL = "SIM-SSD"


class NoOpProvisioner:
    """The simulated line's provision step: applies nothing, under a name that says so on the
    board and in the custody evidence. The controller refuses it on a real line
    (``simulation_only``), which fails closed without provisioning settings instead."""

    name = "provision (simulated: nothing applied)"
    simulation_only = True

    def __call__(self, request: ProvisionRequest) -> ProvisionOutcome:
        if request.cancel.is_set():
            return ProvisionOutcome(False, "cancelled before provisioning")
        return ProvisionOutcome(True, f"no-op: profile {request.profile} not applied", noop=True)


@dataclass(frozen=True)
class SimSlot:
    code: str
    bench: str
    position: int

    @property
    def id_path(self) -> str:
        return sim_id_path(self.bench, self.position)


@dataclass(frozen=True)
class SimDevice:
    identity: Identity
    device_serial: str | None  # None: unknown to the inventory
    disk_serial: str
    path: Path


class SimulatedLine:
    def __init__(
        self,
        context: AppContext,
        config: LineConfig,
        submit: Callable[[UdevEvent], None],
        *,
        disk_bytes: int = 16 * 2**20,
        mix: dict[Identity, float] | None = None,
        pull_rate: float = 0.0,
        dwell: tuple[float, float] = (0.5, 2.0),
        gap: tuple[float, float] = (0.3, 3.0),
        seed: int | None = None,
        max_devices: int | None = None,
        redistribution_rate: float = 0.1,
        auto: bool = True,
        engine: Engine | None = None,
        tablets: SimulatedTablets | None = None,
    ) -> None:
        self.context = context
        self.engine = engine or context.engine
        self.config = config
        self.submit = submit
        self.disk_bytes = disk_bytes
        self.mix = mix or DEFAULT_MIX
        self.pull_rate = pull_rate
        self.dwell, self.gap = dwell, gap
        self.rng = random.Random(seed)
        self.max_devices = max_devices
        self.redistribution_rate = redistribution_rate
        self.auto = auto
        self.root = context.settings.home / "sim"
        self.slots = [SimSlot(s.code, b.name, s.position) for b in config.benches for s in b.slots]
        self.arrivals = 0
        self.pulls = 0
        self._next_arrival: dict[str, float] = {}
        self._leave_at: dict[str, float] = {}
        self._pull_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._staging = self.root / ".staging"
        self.tablets = tablets  # set: tablets arrive as tablets (iPad, Android, Windows) on the bench hubs
        if tablets is not None:
            tablets.on_restart = self._restart_tablet
        self._data: bytes | None = None

    # ------------------------------------------------------------------ what is plugged in

    def slot_dir(self, slot: SimSlot) -> Path:
        return self.root / slot.code

    def disk_in(self, slot: SimSlot) -> Path | None:
        """What is in the slot: a disk image, or a tablet's marker (``*.tablet``)."""
        # One directory listing, not two globs: every tick looks into every slot, in the agent's process.
        try:
            with os.scandir(self.slot_dir(slot)) as entries:
                found = sorted(e.name for e in entries if e.name.endswith((".img", ".tablet")))
        except FileNotFoundError:
            return None
        return self.slot_dir(slot) / found[0] if found else None

    def event_for(self, slot: SimSlot, path: Path, attached: bool = True) -> UdevEvent:
        if path.suffix == ".tablet":
            return arrival_event(SimTablet(**json.loads(path.read_text())), slot.id_path, attached)
        cls = DeviceAttached if attached else DeviceDetached
        size = path.stat().st_size if attached and path.exists() else None
        return cls(
            subsystem="block",
            sys_path=f"/sys/devices/sim/{slot.bench}/port-{slot.position}/block/{path.stem}",
            device_node=str(path),
            devtype="disk",
            serial=path.stem,
            vendor=SIM_VENDOR,
            model=SIM_MODEL,
            id_path=slot.id_path,
            bench_port=None,
            size_bytes=size,
        )

    def present(self) -> list[UdevEvent]:
        """``DeviceAttached`` for every disk in a slot now (udev's enumeration, simulated)."""
        events = []
        for slot in self.slots:
            disk = self.disk_in(slot)
            if disk is not None:
                events.append(self.event_for(slot, disk))
        return events

    # ------------------------------------------------------------------ arrivals and departures

    def arrive(
        self,
        code: str,
        identity: Identity | None = None,
        *,
        role: str | None = None,
        kind: str | None = None,
        platform: str | None = None,
    ) -> SimDevice:
        slot = self._slot(code)
        if self.disk_in(slot) is not None:
            raise RuntimeError(f"simulated slot {code} is occupied")
        identity = identity or self._pick_identity()
        if self.tablets is not None:  # (drawn here only then: seeded runs without tablets keep their sequence)
            kind = kind or self.rng.choice(["laptop", "laptop", "tablet"])
            if kind in ("tablet", "vehicle-tablet"):
                return self._arrive_tablet(slot, identity, role, kind, platform)
        token = self.rng.getrandbits(48)
        disk_serial = f"SD{token:012X}"
        device_serial = None if identity is Identity.UNKNOWN else f"SIM-{token:012X}"
        self._staging.mkdir(parents=True, exist_ok=True)
        staged = self._staging / f"{disk_serial}.img"
        with open(staged, "wb") as f:
            if identity is Identity.NEW_STOCK:
                f.truncate(self.disk_bytes)  # sparse: a factory-fresh disk
            else:
                f.write(self._user_data())
        if device_serial is not None:
            if role is None and identity is Identity.RETURNED and self.rng.random() < self.redistribution_rate:
                role = "redistribution"
            with session_scope(self.engine) as s:
                receive_device(
                    s,
                    serial=device_serial,
                    kind=kind or self.rng.choice(["laptop", "laptop", "tablet"]),
                    make="Simulated",
                    model="SimBook 14" if identity is Identity.RETURNED else "SimBook 15",
                    role=role,
                    actor="sim:goods-in",
                    from_custodian=f"officer:{self.rng.randint(10000, 99999)}"
                    if identity is Identity.RETURNED
                    else "supplier:sim-supplies",
                    media=[MediaSpec("sata-ssd", disk_serial, self.disk_bytes, SIM_MODEL)],
                    new_stock=identity is Identity.NEW_STOCK,
                )
        target = self.slot_dir(slot) / staged.name
        target.parent.mkdir(parents=True, exist_ok=True)
        staged.rename(target)  # the plug-in moment: atomic
        self.arrivals += 1
        self.submit(self.event_for(slot, target))
        return SimDevice(identity, device_serial, disk_serial, target)

    def _arrive_tablet(
        self, slot: SimSlot, identity: Identity, role: str | None, kind: str, platform: str | None
    ) -> SimDevice:
        """An iPad, Android or Windows tablet plugged into the slot's hub port (one in twenty unencrypted)."""
        assert self.tablets is not None
        platform = platform or self.rng.choice(["ipados", "android", "windows"])
        tablet = new_tablet(platform, self.rng.getrandbits(32), encrypted=self.rng.random() >= 0.05)
        _, _, _, maker, model, medium = USB[platform]
        if identity is not Identity.UNKNOWN:
            with session_scope(self.engine) as s:
                receive_device(
                    s,
                    serial=tablet.serial,
                    kind=kind,
                    make=maker,
                    model=model,
                    role=role,
                    actor="sim:goods-in",
                    from_custodian=f"officer:{self.rng.randint(10000, 99999)}"
                    if identity is Identity.RETURNED
                    else "supplier:sim-supplies",
                    media=[MediaSpec(medium, tablet.ref, 64 * 10**9, f"{model} built-in storage")],
                    new_stock=identity is Identity.NEW_STOCK,
                )
        self.tablets.add(tablet)
        self._staging.mkdir(parents=True, exist_ok=True)
        staged = self._staging / f"{tablet.usb_serial}.tablet"
        staged.write_text(json.dumps({"platform": platform, "usb_serial": tablet.usb_serial, "serial": tablet.serial}))
        marker = self.slot_dir(slot) / staged.name
        marker.parent.mkdir(parents=True, exist_ok=True)
        staged.rename(marker)  # the plug-in moment: atomic
        self.arrivals += 1
        self.submit(arrival_event(tablet, slot.id_path))
        device_serial = None if identity is Identity.UNKNOWN else tablet.serial
        return SimDevice(identity, device_serial, tablet.ref, marker)

    def _restart_tablet(self, tablet: SimTablet) -> None:
        """A tablet's reset restarts it: it leaves its hub port and comes back (udev: remove, add)."""
        for slot in self.slots:
            if (self.slot_dir(slot) / f"{tablet.usb_serial}.tablet").exists():
                self.submit(arrival_event(tablet, slot.id_path, attached=False))
                self.submit(arrival_event(tablet, slot.id_path))

    def _user_data(self) -> bytes:
        """The disk contents of a returned device, built once: building 16 MiB per arrival holds
        the GIL for milliseconds, which would be charged to the controller sharing the process."""
        if self._data is None or len(self._data) != self.disk_bytes:
            whole = DATA_PATTERN * (self.disk_bytes // len(DATA_PATTERN) + 1)
            self._data = whole[: self.disk_bytes]
        return self._data

    def depart(self, code: str) -> bool:
        slot = self._slot(code)
        disk = self.disk_in(slot)
        if disk is None:
            return False
        event = self.event_for(slot, disk, attached=False)
        disk.unlink()
        self.submit(event)
        return True

    def pull(self, code: str) -> bool:
        """A device yanked out mid-job: exactly a departure, at the worst moment."""
        self.pulls += 1
        return self.depart(code)

    # ------------------------------------------------------------------ the automatic technician

    def start(self) -> None:
        shutil.rmtree(self._staging, ignore_errors=True)  # half-made arrivals of a crashed run
        now = time.monotonic()
        for slot in self.slots:
            self._next_arrival[slot.code] = now + self.rng.uniform(0.0, self.gap[1] / 2)
        if self.auto:
            self._thread = threading.Thread(target=self._loop, name="sim-line", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self._tick()
            except Exception:
                log.exception("simulated line tick failed")

    def _tick(self) -> None:
        now = time.monotonic()
        statuses = self._job_statuses()
        for slot in self.slots:
            if self._stop.is_set():
                return
            disk = self.disk_in(slot)
            if disk is None:
                if now >= self._next_arrival.get(slot.code, 0.0) and self._may_arrive():
                    self.arrive(slot.code)
                    if self.rng.random() < self.pull_rate:
                        self._pull_at[slot.code] = now + self.rng.uniform(0.05, 1.0)
                continue
            status = statuses.get(slot.code)
            pull_at = self._pull_at.get(slot.code)
            if pull_at is not None and status == JobStatus.RUNNING and now >= pull_at:
                self._pull_at.pop(slot.code, None)
                self.pull(slot.code)
                self._next_arrival[slot.code] = now + self.rng.uniform(*self.gap)
                continue
            if status in FINISHED_JOB_STATUSES:
                leave = self._leave_at.setdefault(slot.code, now + self.rng.uniform(*self.dwell))
                if now >= leave:
                    self._leave_at.pop(slot.code, None)
                    self._pull_at.pop(slot.code, None)
                    self.depart(slot.code)
                    self._next_arrival[slot.code] = now + self.rng.uniform(*self.gap)

    def _may_arrive(self) -> bool:
        return self.max_devices is None or self.arrivals < self.max_devices

    def _job_statuses(self) -> dict[str, str]:
        """The status of the latest job for each slot's current occupant."""
        codes = [s.code for s in self.slots]
        with read_scope(self.engine) as conn:  # the technician looks at the board: no write lock
            rows = conn.execute(
                select(Slot.code, Job.status)
                .join(Job, col(Job.attachment_id) == col(Slot.attachment_id))
                .where(col(Slot.code).in_(codes))
                .order_by(col(Job.id))
            ).all()
        return {code: status for code, status in rows}

    def _pick_identity(self) -> Identity:
        roll, total = self.rng.random() * sum(self.mix.values()), 0.0
        for identity, weight in self.mix.items():
            total += weight
            if roll < total:
                return identity
        return Identity.RETURNED

    def _slot(self, code: str) -> SimSlot:
        for slot in self.slots:
            if slot.code == code:
                return slot
        raise KeyError(f"no simulated slot {code}")
