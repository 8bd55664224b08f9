"""What one agent drives: its benches and slots, limits, leases and the port map.

A site file (TOML) describes real benches; :func:`simulated_config` builds the same structure
for ``--simulate BENCHESxSLOTS``, wired through a port map exactly as real docks are.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory.kernel.errors import InvalidInput
from factory.kernel.models.device import DeviceKind
from factory.line.network_config import NetworkSettings, parse_network
from hardware_drivers.port_map import PortMap, PortMapError
from imaging.result import Level, VerifyMode

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_LAYOUT = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
MAX_SIM_BENCHES = 64
MAX_SIM_SLOTS = 64


@dataclass(frozen=True)
class SlotSpec:
    code: str  # "bench-1/slot-3"
    position: int
    port_kind: str = "usb"
    default_kind: str = DeviceKind.LAPTOP.value


@dataclass(frozen=True)
class BenchSpec:
    name: str
    slots: tuple[SlotSpec, ...]
    max_jobs: int


def default_erase_processes() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class LineConfig:
    agent: str
    benches: tuple[BenchSpec, ...]
    port_map: PortMap
    site_max_jobs: int = 64
    lease_seconds: float = 6.0
    heartbeat_seconds: float = 1.0
    max_attempts: int = 3  # automatic restarts of an interrupted job before a technician must act
    erase_level: Level = Level.CLEAR
    verify_mode: VerifyMode = VerifyMode.SAMPLE
    # Processes that run the erases (0: threads of the agent itself, sharing its GIL).
    erase_processes: int = field(default_factory=default_erase_processes)
    network: NetworkSettings = field(default_factory=NetworkSettings)  # bench switches to poll, traps
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Built by simulated_config (--simulate): only such a line may run simulation stand-ins.
    simulated: bool = False
    technician: str | None = None  # the signed-in person who started the line (required for a real one)

    @property
    def slot_count(self) -> int:
        return sum(len(b.slots) for b in self.benches)


def default_agent_name() -> str:
    return socket.gethostname().split(".")[0][:48] or "agent"


def parse_layout(text: str) -> tuple[int, int]:
    """``"2x4"`` -> (2 benches, 4 slots each)."""
    match = _LAYOUT.match(text or "")
    if not match:
        raise InvalidInput(f"layout '{text}' must look like BENCHESxSLOTS, e.g. 2x4")
    benches, slots = int(match.group(1)), int(match.group(2))
    if not (1 <= benches <= MAX_SIM_BENCHES and 1 <= slots <= MAX_SIM_SLOTS):
        raise InvalidInput(f"layout '{text}': 1-{MAX_SIM_BENCHES} benches of 1-{MAX_SIM_SLOTS} slots")
    return benches, slots


def sim_id_path(bench: str, slot: int) -> str:
    """The ID_PATH a simulated dock port reports (as udev's path_id would for a real one)."""
    return f"sim-{bench}-port-{slot}"


def simulated_config(
    layout: str,
    *,
    agent: str | None = None,
    first_bench: int = 1,
    max_jobs_per_bench: int | None = None,
    site_max_jobs: int = 64,
    lease_seconds: float = 6.0,
) -> LineConfig:
    n_benches, n_slots = parse_layout(layout)
    if first_bench < 1:
        raise InvalidInput("--first-bench must be 1 or more")
    benches = []
    wiring = []
    for b in range(first_bench, first_bench + n_benches):
        name = f"bench-{b}"
        slots = tuple(SlotSpec(code=f"{name}/slot-{s}", position=s) for s in range(1, n_slots + 1))
        wiring.extend({"id_path": sim_id_path(name, s.position), "slot": s.code} for s in slots)
        benches.append(BenchSpec(name=name, slots=slots, max_jobs=max_jobs_per_bench or n_slots))
    return LineConfig(
        agent=_agent_name(agent or default_agent_name()),
        benches=tuple(benches),
        port_map=PortMap.from_dict({"udev": wiring}),
        site_max_jobs=site_max_jobs,
        lease_seconds=lease_seconds,
        simulated=True,
    )


def load_line_config(path: Path, *, agent: str | None = None) -> LineConfig:
    """Read a site file::

    agent = "bench-host-1"          # optional; default: the host name
    site_max_jobs = 32
    [[bench]]
    name = "bench-1"
    max_jobs = 4
    slots = [{position = 1, port_kind = "usb", default_kind = "laptop"}, {position = 2}]
    [port_map]                      # hardware_drivers.port_map format
    udev = [{bench_port = "B1-S1", slot = "bench-1/slot-1"}]
    [[switches]]                    # bench switches to poll: factory.line.network_config
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"line config {path}: {exc}") from exc
    benches = []
    for n, raw in enumerate(data.get("bench", [])):
        name = _bench_name(raw.get("name"), f"bench[{n}]")
        slots = []
        for m, s in enumerate(raw.get("slots", [])):
            position = int(s.get("position", m + 1))
            kind = str(s.get("default_kind", DeviceKind.LAPTOP.value))
            if kind not in {k.value for k in DeviceKind}:
                raise InvalidInput(f"bench {name} slot {position}: default_kind '{kind}' is not a device kind")
            slots.append(SlotSpec(f"{name}/slot-{position}", position, str(s.get("port_kind", "usb")), kind))
        if not slots or len({s.position for s in slots}) != len(slots):
            raise InvalidInput(f"bench {name}: needs slots with distinct positions")
        benches.append(BenchSpec(name, tuple(slots), int(raw.get("max_jobs", len(slots)))))
    if not benches:
        raise InvalidInput(f"line config {path}: no [[bench]] defined")
    try:
        port_map = PortMap.from_dict(data.get("port_map", {}))
    except PortMapError as exc:
        raise InvalidInput(f"line config {path}: port map: {exc}") from exc
    return LineConfig(
        agent=_agent_name(agent or data.get("agent") or default_agent_name()),
        benches=tuple(benches),
        port_map=port_map,
        site_max_jobs=int(data.get("site_max_jobs", 64)),
        lease_seconds=float(data.get("lease_seconds", 6.0)),
        erase_level=Level(data.get("erase_level", Level.CLEAR.value)),
        verify_mode=VerifyMode(data.get("verify_mode", VerifyMode.SAMPLE.value)),
        erase_processes=int(data.get("erase_processes", default_erase_processes())),
        network=parse_network(data, mapped_switches=port_map.switches, where=f"line config {path}"),
    )


def _agent_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput(f"agent name '{name}' must be 1-64 chars of letters, digits, '.', '_' or '-'")
    return name


def _bench_name(value: object, where: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(f"{where}: bench name must be 1-64 chars of letters, digits, '.', '_' or '-'")
    return value
