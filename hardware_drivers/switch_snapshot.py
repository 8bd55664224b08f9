"""What one SNMP poll of a bench switch saw: interfaces and link state, the MAC forwarding
table and LLDP neighbours, plus the MAC spelling every driver and the line share."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from hardware_drivers.events import MacSeen

IF_OPER_UP = 1
_MAC_RE = re.compile(r"[0-9a-f]{12}")
_UNIT_RE = re.compile(r"(?P<parent>.+)\.(?P<unit>\d+)")  # Junos logical unit: ge-0/0/1.0


def normalise_mac(text: str) -> str:
    """``aa:bb:cc:dd:ee:ff`` from colon, dash, Cisco-dot or bare hex notation."""
    digits = re.sub(r"[:\-.\s]", "", text.strip().lower())
    if not _MAC_RE.fullmatch(digits):
        raise ValueError(f"not a MAC address: {text!r}")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


@dataclass(frozen=True, slots=True)
class Interface:
    if_index: int
    if_name: str | None
    oper_status: int

    @property
    def is_up(self) -> bool:
        return self.oper_status == IF_OPER_UP


@dataclass(frozen=True, slots=True)
class LldpNeighbour:
    """One row of the LLDP remote table: who is cabled to ``local_port_num``.

    ``chassis_id``/``port_id`` are ``aa:bb:..`` when the neighbour sent a MAC, text when it
    sent a name, and hex otherwise. ``local_port_id`` comes from lldpLocPortTable (usually
    the local interface name).
    """

    local_port_num: int
    local_port_id: str | None
    chassis_id: str
    port_id: str
    sys_name: str | None


@dataclass(frozen=True, slots=True)
class SwitchSnapshot:
    switch: str
    interfaces: Mapping[int, Interface]
    macs: tuple[MacSeen, ...]
    neighbours: tuple[LldpNeighbour, ...]
    _by_name: Mapping[str, Interface] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {i.if_name: i for i in self.interfaces.values() if i.if_name is not None}
        object.__setattr__(self, "_by_name", by_name)

    def interface(self, if_name: str) -> Interface | None:
        return self._by_name.get(if_name)

    def macs_on(self, if_name: str) -> tuple[MacSeen, ...]:
        return tuple(m for m in self.macs if m.if_name == if_name)


def unit_parents(interfaces: Mapping[int, Interface]) -> dict[int, int]:
    """{ifIndex of a logical unit: ifIndex of its port}, for names like ``ge-0/0/1.0`` whose port exists.

    Junos (pre-ELS) EX switches map bridge ports to the unit, while link state, traps and the port
    map name the physical port; a MAC learnt on the unit is on the port.
    """
    by_name = {i.if_name: i.if_index for i in interfaces.values() if i.if_name is not None}
    parents = {}
    for iface in interfaces.values():
        match = _UNIT_RE.fullmatch(iface.if_name or "")
        if match and match["parent"] in by_name:
            parents[iface.if_index] = by_name[match["parent"]]
    return parents


def find_mac(snapshot: SwitchSnapshot, mac: str) -> tuple[MacSeen, ...]:
    """Every sighting of ``mac`` (any notation) in the snapshot; empty if unseen.

    More than one entry means the MAC is learnt in several VLANs (or is moving).
    """
    wanted = normalise_mac(mac)
    return tuple(m for m in snapshot.macs if m.mac == wanted)
