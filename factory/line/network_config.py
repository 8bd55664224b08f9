"""The site file's bench switches, trap listener and service-environment key::

[[switches]]
name = "sw-bench-1"        # as the port map's switch_ports call it
host = "192.0.2.10"
port = 161                 # optional, default 161
community = "bench-ro"     # optional, default "public"
interval = 10              # seconds between polls; optional, default 10
timeout = 2                # per request; optional, default 2
retries = 1                # optional, default 1

[traps]                    # optional: receive linkUp/linkDown as they happen
host = "0.0.0.0"
port = 162
communities = ["bench-ro"] # optional, default: the switches' communities

[service_env]              # laptops in switch-port slots are erased over SSH with this key
ssh_private_key = "/etc/factory/service-env-key"

[[netboot]]                # bench networks the agent serves DHCP/TFTP on (dnsmasq, chain-loading iPXE)
name = "bench-net-1"
interface = "enp3s0"       # the agent's NIC on that bench network
range_start = "10.20.0.100"
range_end = "10.20.0.199"
netmask = "255.255.255.0"  # optional
controller_url = "http://10.20.0.1:8000"   # factory serve, as the laptops reach it
lease_seconds = 600        # optional
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from factory.kernel.errors import InvalidInput
from hardware_drivers.netboot import BenchNetwork
from hardware_drivers.switch_poller import SwitchTarget, TrapListen

_T = TypeVar("_T")
_SWITCH_KEYS = {"name", "host", "port", "community", "interval", "timeout", "retries"}
_TRAP_KEYS = {"host", "port", "communities"}
_NETBOOT_KEYS = {"name", "interface", "range_start", "range_end", "netmask", "controller_url", "lease_seconds"}


@dataclass(frozen=True)
class NetworkSettings:
    switches: tuple[SwitchTarget, ...] = ()
    traps: TrapListen | None = None
    max_backoff: float = 60.0  # longest pause between polls of a switch that keeps failing
    ssh_private_key: Path | None = None  # client key for laptops' service environment (switch-port slots)
    netboot: tuple[BenchNetwork, ...] = ()  # bench networks this agent runs dnsmasq on
    deploy_images: Mapping[str, Path] = field(default_factory=dict)  # [deploy]: profile -> golden image


def parse_network(data: Mapping[str, Any], *, mapped_switches: frozenset[str], where: str) -> NetworkSettings:
    """Read ``[[switches]]`` and ``[traps]``; every switch the port map names must be polled."""
    switches = _each_table(data.get("switches", []), "switches", _SWITCH_KEYS, where, _switch)
    names = [s.name for s in switches]
    if duplicates := _twice(names):
        raise InvalidInput(f"{where}: switch(es) {', '.join(duplicates)} defined twice")
    unpolled = sorted(mapped_switches - set(names))
    if unpolled:
        raise InvalidInput(
            f"{where}: port_map switch_ports name switch(es) {', '.join(unpolled)} with no [[switches]] entry"
        )
    return NetworkSettings(
        tuple(switches),
        _traps(data.get("traps"), where),
        ssh_private_key=_service_key(data.get("service_env"), where),
        netboot=_netboot(data.get("netboot", []), where),
        deploy_images=_deploy_images(data.get("deploy", {}), where),
    )


def _each_table(
    raw: object, array: str, keys: set[str], where: str, build: Callable[[Mapping[str, Any], str], _T]
) -> list[_T]:
    """``[[array]]``: each table built by ``build(table, label)``, after its keys are checked; a
    bad value is refused with the table's label (``where: array[n]``)."""
    if not isinstance(raw, list) or not all(isinstance(t, Mapping) for t in raw):
        raise InvalidInput(f"{where}: '{array}' must be a list of tables ([[{array}]])")
    built = []
    for n, table in enumerate(raw):
        label = f"{where}: {array}[{n}]"
        if unknown := set(table) - keys:
            raise InvalidInput(f"{label}: unknown key(s) {', '.join(sorted(unknown))}")
        try:
            built.append(build(table, label))
        except (TypeError, ValueError) as exc:  # int()/float() of a bad value, NetbootConfigError
            raise InvalidInput(f"{label}: {exc}") from exc
    return built


def _switch(table: Mapping[str, Any], label: str) -> SwitchTarget:
    return SwitchTarget(
        name=_text(table.get("name"), f"{label}.name"),
        host=_text(table.get("host"), f"{label}.host"),
        port=int(table.get("port", 161)),
        community=_text(table.get("community", "public"), f"{label}.community"),
        interval=float(table.get("interval", 10.0)),
        timeout=float(table.get("timeout", 2.0)),
        retries=int(table.get("retries", 1)),
    )


def _bench_network(table: Mapping[str, Any], label: str) -> BenchNetwork:
    return BenchNetwork(
        name=_text(table.get("name"), f"{label}.name"),
        interface=_text(table.get("interface"), f"{label}.interface"),
        range_start=_text(table.get("range_start"), f"{label}.range_start"),
        range_end=_text(table.get("range_end"), f"{label}.range_end"),
        controller_url=_text(table.get("controller_url"), f"{label}.controller_url"),
        netmask=_text(table.get("netmask", "255.255.255.0"), f"{label}.netmask"),
        lease_seconds=int(table.get("lease_seconds", 600)),
    )


def _twice(values: Sequence[str]) -> list[str]:
    """The values that appear more than once, sorted."""
    return sorted({v for v in values if values.count(v) > 1})


def _deploy_images(raw: object, where: str) -> dict[str, Path]:
    """``[deploy]``: golden images by profile ("default" for the rest), each with its manifest beside it."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}: [deploy] must be a table of profile = image path")
    images = {}
    for profile, value in raw.items():
        image = Path(_text(value, f"{where}: deploy.{profile}"))
        manifest = Path(f"{image}.manifest.json")
        if not image.is_file() or not manifest.is_file():
            raise InvalidInput(f"{where}: deploy.{profile}: {image} or its manifest {manifest.name} does not exist")
        images[str(profile)] = image
    return images


def _netboot(raw: object, where: str) -> tuple[BenchNetwork, ...]:
    """``[[netboot]]``: one dnsmasq per bench network; names and interfaces unique."""
    networks = _each_table(raw, "netboot", _NETBOOT_KEYS, where, _bench_network)
    for attr in ("name", "interface"):
        if dup := _twice([getattr(net, attr) for net in networks]):
            raise InvalidInput(f"{where}: netboot {attr}(s) {', '.join(dup)} defined twice")
    return tuple(networks)


def _service_key(raw: object, where: str) -> Path | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) != {"ssh_private_key"}:
        raise InvalidInput(f"{where}: [service_env] takes exactly ssh_private_key")
    key = Path(_text(raw["ssh_private_key"], f"{where}: service_env.ssh_private_key"))
    if not key.is_file():
        raise InvalidInput(f"{where}: service_env.ssh_private_key {key} does not exist")
    return key


def _traps(raw: object, where: str) -> TrapListen | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) - _TRAP_KEYS:
        raise InvalidInput(f"{where}: [traps] takes only {', '.join(sorted(_TRAP_KEYS))}")
    communities = raw.get("communities", [])
    if not isinstance(communities, list) or not all(isinstance(c, str) and c for c in communities):
        raise InvalidInput(f"{where}: traps.communities must be a list of non-empty strings")
    try:
        port = int(raw.get("port", 162))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{where}: traps.port: {exc}") from exc
    if not 0 <= port < 65536:
        raise InvalidInput(f"{where}: traps.port {port} is out of range")
    return TrapListen(_text(raw.get("host", "0.0.0.0"), f"{where}: traps.host"), port, tuple(communities))


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{where} must be a non-empty string, got {value!r}")
    return value.strip()
