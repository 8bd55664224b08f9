"""The site file's bench switches, trap listener and service-environment key::

[[switches]]
name = "sw-bench-1"        # as the port map's switch_ports call it
host = "192.0.2.10"
port = 161                 # optional, default 161
community = "bench-ro"     # SNMP v2c; optional, default "public"; or, instead, SNMPv3:
# [switches.v3]            # USM at authPriv only (noAuthNoPriv/authNoPriv refused)
# user = "factory-ro"
# auth_protocol = "SHA256" # SHA, SHA224, SHA256, SHA384, SHA512 (MD5 refused)
# auth_key_file = "/etc/factory/snmp/auth.key"   # pass phrase, at least 8 characters
# priv_protocol = "AES"    # AES (=AES128), AES192, AES256, AES192C, AES256C (DES refused)
# priv_key_file = "/etc/factory/snmp/priv.key"
# engine_id = "800000090300..."  # optional: the switch's snmpEngineID, for v3 TRAPs before its first poll
interval = 10              # seconds between polls; optional, default 10
timeout = 2                # per request; optional, default 2
retries = 1                # optional, default 1

[traps]                    # optional: receive linkUp/linkDown as they happen
host = "0.0.0.0"
port = 162
communities = ["bench-ro"] # optional, default: the v2c switches' communities (v3 switches' users are accepted)

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
from hardware_drivers.switch_security import (
    AUTH_PROTOCOLS,
    MIN_KEY_LENGTH,
    PRIV_PROTOCOLS,
    UsmUser,
    parse_engine_id,
    protocol_key,
)

_T = TypeVar("_T")
_SWITCH_KEYS = {"name", "host", "port", "community", "interval", "timeout", "retries", "v3"}
_V3_KEYS = {"user", "auth_protocol", "auth_key_file", "priv_protocol", "priv_key_file", "engine_id"}
_TRAP_KEYS = {"host", "port", "communities"}
_NETBOOT_KEYS = {
    "name", "interface", "range_start", "range_end", "netmask", "controller_url", "lease_seconds", "uefi_boot",
}  # fmt: skip


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
    _one_key_set_per_user(switches, where)
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
    name = _text(table.get("name"), f"{label}.name")
    if "v3" in table and "community" in table:
        raise InvalidInput(f"{label} ({name}): takes either community (v2c) or v3, not both")
    return SwitchTarget(
        name=name,
        host=_text(table.get("host"), f"{label}.host"),
        port=int(table.get("port", 161)),
        community=_text(table.get("community", "public"), f"{label}.community"),
        interval=float(table.get("interval", 10.0)),
        timeout=float(table.get("timeout", 2.0)),
        retries=int(table.get("retries", 1)),
        usm=_usm(table["v3"], f"{label} ({name}).v3") if "v3" in table else None,
    )


def _usm(raw: object, label: str) -> UsmUser:
    """A switch's ``v3`` table: USM authPriv, keys read from files (never written in the site file)."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(
            f"{label} must be a table (user, auth_protocol, auth_key_file, priv_protocol, priv_key_file)"
        )
    if unknown := set(raw) - _V3_KEYS:
        raise InvalidInput(f"{label}: unknown key(s) {', '.join(sorted(unknown))} (authPriv only; keys from files)")
    for required in ("auth_protocol", "priv_protocol"):
        if required not in raw:
            raise InvalidInput(
                f"{label}.{required} is required: only authPriv is accepted (noAuthNoPriv and authNoPriv are refused)"
            )
    engine_id = raw.get("engine_id")
    try:
        return UsmUser(
            user=_text(raw.get("user"), f"{label}.user"),
            auth_protocol=_text(raw["auth_protocol"], f"{label}.auth_protocol"),
            auth_key=_key_file(raw.get("auth_key_file"), f"{label}.auth_key_file"),
            priv_protocol=_text(raw["priv_protocol"], f"{label}.priv_protocol"),
            priv_key=_key_file(raw.get("priv_key_file"), f"{label}.priv_key_file"),
            engine_id=parse_engine_id(_text(engine_id, f"{label}.engine_id")) if engine_id is not None else None,
        )
    except ValueError as exc:
        raise InvalidInput(f"{label}: {exc}") from None


def _key_file(raw: object, label: str) -> str:
    """A USM pass phrase from its file (trailing newline dropped), as the LDAP service password is read."""
    path = Path(_text(raw, label))
    try:
        key = path.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        raise InvalidInput(f"{label}: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{label}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(key) < MIN_KEY_LENGTH:
        raise InvalidInput(f"{label}: the key in {path} is {len(key)} characters; USM needs at least {MIN_KEY_LENGTH}")
    return key


def _one_key_set_per_user(switches: Sequence[SwitchTarget], where: str) -> None:
    """One v3 user name, one set of protocols and keys: an INFORM names only its user, so the
    receiver cannot pick between two switches' keys for the same name."""
    seen: dict[str, SwitchTarget] = {}
    for switch in switches:
        if switch.usm is None:
            continue
        first = seen.setdefault(switch.usm.user, switch)
        assert first.usm is not None
        if _credentials(first.usm) != _credentials(switch.usm):
            raise InvalidInput(
                f"{where}: v3 user {switch.usm.user!r} has different protocols or keys on "
                f"{first.name} and {switch.name}; give each set of keys its own user name"
            )


def _credentials(usm: UsmUser) -> tuple[object, ...]:
    auth, priv = AUTH_PROTOCOLS[protocol_key(usm.auth_protocol)], PRIV_PROTOCOLS[protocol_key(usm.priv_protocol)]
    return (auth, usm.auth_key, priv, usm.priv_key)


def _bench_network(table: Mapping[str, Any], label: str) -> BenchNetwork:
    return BenchNetwork(
        name=_text(table.get("name"), f"{label}.name"),
        interface=_text(table.get("interface"), f"{label}.interface"),
        range_start=_text(table.get("range_start"), f"{label}.range_start"),
        range_end=_text(table.get("range_end"), f"{label}.range_end"),
        controller_url=_text(table.get("controller_url"), f"{label}.controller_url"),
        netmask=_text(table.get("netmask", "255.255.255.0"), f"{label}.netmask"),
        lease_seconds=int(table.get("lease_seconds", 600)),
        uefi_boot=_text(table.get("uefi_boot", "shim"), f"{label}.uefi_boot"),
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
