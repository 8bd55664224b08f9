"""Reading a bench switch's forwarding tables (BRIDGE-MIB, Q-BRIDGE-MIB) the way real switches fill them.

Mixed into :class:`~hardware_drivers.snmp.SwitchClient`; see ``tests/fixtures/snmp/VARIANTS.md`` for
the real-world variants each rule below comes from:

* dot1qTpFdbTable is indexed by the *filtering database* id, which equals the VLAN id on most
  switches but not all (HPE/H3C, Juniper EX): dot1qVlanFdbId maps it back to the VLAN when present.
* Rows whose status says the address is not a learnt station (invalid(2): aged out but not yet
  flushed; self(4): one of the switch's own addresses, on the port that owns it) are dropped, as are
  rows on port 0 (the switch knows the address but not the port).
* Cisco IOS keeps one BRIDGE-MIB per VLAN, reached with the community ``community@vlan`` (SNMPv3:
  the context ``vlan-<id>``); the plain community (default context) shows only the default VLAN.
  CISCO-VTP-MIB's vtpVlanState lists the VLANs to read.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from pyasn1.type import univ
from pysnmp.entity import engine

from hardware_drivers.events import MalformedReply, SnmpAgentError, SnmpTimeout

log = logging.getLogger(__name__)

Oid = tuple[int, ...]

DOT1D_BASE_PORT_IF_INDEX: Oid = (1, 3, 6, 1, 2, 1, 17, 1, 4, 1, 2)
DOT1D_TP_FDB_ENTRY: Oid = (1, 3, 6, 1, 2, 1, 17, 4, 3, 1)
DOT1Q_TP_FDB_ENTRY: Oid = (1, 3, 6, 1, 2, 1, 17, 7, 1, 2, 2, 1)
DOT1Q_VLAN_FDB_ID: Oid = (1, 3, 6, 1, 2, 1, 17, 7, 1, 4, 2, 1, 3)
VTP_VLAN_STATE: Oid = (1, 3, 6, 1, 4, 1, 9, 9, 46, 1, 3, 1, 1, 2)
_FDB_PORT, _FDB_STATUS = 2, 3  # columns of both FDB entries
_FDB_NOT_A_STATION = {2, 4}  # invalid(2), self(4)
_VTP_OPERATIONAL = 1
_CISCO_RESERVED_VLANS = range(1002, 1006)  # fddi/token-ring defaults: no bridge table, may not answer
# A switch that lists VLANs but does not answer ``community@vlan`` (indexing off) or refuses the
# ``vlan-<id>`` context (SNMPv3 group without ``context vlan- match prefix``) would cost every poll
# a timeout or an error per VLAN: it is read as before (the default VLAN's table) and asked per VLAN
# again only after this long.
VLAN_READS_RETRY_SECONDS = 300.0

FdbRow = tuple[str, int, int | None]  # (mac, bridge port, VLAN or None)


def mac_from_octets(octets: tuple[int, ...] | bytes) -> str:
    return ":".join(f"{b:02x}" for b in octets)


class FdbReader(ABC):
    """The forwarding-table half of a switch poll; the host class (``SwitchClient``) supplies the
    SNMP plumbing below, which it needs for its other tables too."""

    name: str
    _vlan_reads_off_until: float = 0.0

    @abstractmethod
    async def _walk(
        self, snmp_engine: engine.SnmpEngine, root: Oid, target: str = "switch"
    ) -> list[tuple[Oid, Any]]: ...

    @abstractmethod
    def _vlan_target(self, snmp_engine: engine.SnmpEngine, vlan: int) -> str: ...

    @abstractmethod
    def _integer(self, value: Any, oid: Oid) -> int: ...

    @abstractmethod
    def _malformed(self, oid: Oid, reason: str) -> MalformedReply: ...

    async def _learnt(self, snmp_engine: engine.SnmpEngine, entry: Oid, target: str) -> dict[Oid, int]:
        """Learnt stations in a dot1d/dot1qTpFdbEntry walk: {row index: bridge port}."""
        index_len, what = (6, "a 6-octet MAC") if entry == DOT1D_TP_FDB_ENTRY else (7, "FDB id + 6-octet MAC")
        ports: dict[Oid, int] = {}
        statuses: dict[Oid, int] = {}
        for idx, value in await self._walk(snmp_engine, entry, target):
            column, row = idx[0], idx[1:]
            if column not in (_FDB_PORT, _FDB_STATUS):
                continue  # dot1dTpFdbAddress repeats the index
            if len(row) != index_len or not all(0 <= b <= 255 for b in row[-6:]):
                raise self._malformed(entry + idx, f"index is not {what}")
            (ports if column == _FDB_PORT else statuses)[row] = self._integer(value, entry + idx)
        return {row: port for row, port in ports.items() if port and statuses.get(row) not in _FDB_NOT_A_STATION}

    async def _fdb_vlans(self, snmp_engine: engine.SnmpEngine) -> dict[int, int]:
        """dot1qVlanFdbId: {FDB id: VLAN id} for FDBs that hold exactly one VLAN."""
        vlans: dict[int, set[int]] = {}
        for idx, value in await self._walk(snmp_engine, DOT1Q_VLAN_FDB_ID, "switch"):
            if len(idx) != 2 or not isinstance(value, univ.Integer):  # timeMark.vlanIndex = Unsigned32
                raise self._malformed(DOT1Q_VLAN_FDB_ID + idx, "expected timeMark.vlanIndex = Unsigned32")
            vlans.setdefault(int(value), set()).add(idx[1])
        return {fdb: next(iter(ids)) for fdb, ids in vlans.items() if len(ids) == 1}

    async def _cisco_vlans(self, snmp_engine: engine.SnmpEngine) -> list[int]:
        """Operational VLANs from CISCO-VTP-MIB; empty on switches without it."""
        vlans = []
        for idx, value in await self._walk(snmp_engine, VTP_VLAN_STATE, "switch"):
            if len(idx) != 2:  # managementDomainIndex.vlanIndex
                raise self._malformed(VTP_VLAN_STATE + idx, "index is not domain.vlan")
            if self._integer(value, VTP_VLAN_STATE + idx) == _VTP_OPERATIONAL and idx[1] not in _CISCO_RESERVED_VLANS:
                vlans.append(idx[1])
        return sorted(set(vlans))

    async def _fdb(
        self, snmp_engine: engine.SnmpEngine, port_if_index: Mapping[int, int]
    ) -> list[tuple[FdbRow, Mapping[int, int]]]:
        """Every learnt station with the bridge-port map that applies to it (per VLAN on Cisco)."""
        found: dict[tuple[str, int | None], tuple[FdbRow, Mapping[int, int]]] = {}
        qbridge = await self._learnt(snmp_engine, DOT1Q_TP_FDB_ENTRY, "switch")
        fdb_vlans = await self._fdb_vlans(snmp_engine) if qbridge else {}
        for row, port in qbridge.items():
            mac, vlan = mac_from_octets(row[1:]), fdb_vlans.get(row[0], row[0])
            found[(mac, vlan)] = ((mac, port, vlan), port_if_index)
        for vlan in await self._cisco_vlans(snmp_engine) if time.monotonic() >= self._vlan_reads_off_until else ():
            target = self._vlan_target(snmp_engine, vlan)
            try:
                vlan_ports = await self._vlan_port_map(snmp_engine, target)
                learnt = await self._learnt(snmp_engine, DOT1D_TP_FDB_ENTRY, target)
            except (SnmpTimeout, SnmpAgentError) as exc:
                self._vlan_reads_off_until = time.monotonic() + VLAN_READS_RETRY_SECONDS
                log.warning("switch %s: VLAN %s's table not read (%s); its default VLAN's table "
                            "only for %.0f s", self.name, vlan, exc.reason, VLAN_READS_RETRY_SECONDS)  # fmt: skip
                break
            for row, port in learnt.items():
                mac = mac_from_octets(row)
                found.setdefault((mac, vlan), ((mac, port, vlan), vlan_ports or port_if_index))
        in_vlan_table = {mac for mac, _ in found}
        for row, port in (await self._learnt(snmp_engine, DOT1D_TP_FDB_ENTRY, "switch")).items():
            mac = mac_from_octets(row)
            if mac not in in_vlan_table:
                found[(mac, None)] = ((mac, port, None), port_if_index)
        return list(found.values())

    async def _vlan_port_map(self, snmp_engine: engine.SnmpEngine, target: str) -> dict[int, int]:
        ports = {}
        for idx, value in await self._walk(snmp_engine, DOT1D_BASE_PORT_IF_INDEX, target):
            if len(idx) != 1:
                raise self._malformed(DOT1D_BASE_PORT_IF_INDEX + idx, "expected a single-integer index")
            ports[idx[0]] = self._integer(value, DOT1D_BASE_PORT_IF_INDEX + idx)
        return ports
