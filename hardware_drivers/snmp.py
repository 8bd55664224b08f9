"""SNMP poller for bench switches (v2c community, or SNMPv3 USM authPriv): link state, MAC
forwarding tables and LLDP neighbours.

Uses pysnmp 7's asyncio engine with numeric OIDs only. It drives the engine's command
generator directly rather than through ``pysnmp.hlapi``: hlapi resolves every request through
a MIB view, and building that view's MIB compiler costs about 1.5 s per engine, for MIBs
we never load (the switches' MIBs are not available offline anyway).

Every failure surfaces as a :class:`~hardware_drivers.events.DriverError` subclass:
no pysnmp or pyasn1 exception escapes :meth:`SwitchClient.poll`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.error import PySnmpError
from pysnmp.proto import errind, rfc1902, rfc1905

from hardware_drivers.events import (
    DriverError,
    MacSeen,
    MalformedReply,
    SnmpAgentError,
    SnmpTimeout,
    SwitchUnreachable,
)
from hardware_drivers.switch_fdb import DOT1D_BASE_PORT_IF_INDEX, FdbReader, mac_from_octets
from hardware_drivers.switch_security import UsmUser, add_poll_credentials, usm_refusal
from hardware_drivers.switch_snapshot import IF_OPER_UP as IF_OPER_UP  # re-exported: what a poll returns
from hardware_drivers.switch_snapshot import Interface, LldpNeighbour, SwitchSnapshot, unit_parents
from hardware_drivers.switch_snapshot import find_mac as find_mac
from hardware_drivers.switch_snapshot import normalise_mac as normalise_mac

Oid = tuple[int, ...]

_IF_OPER_STATES = range(1, 8)  # up(1) .. lowerLayerDown(7)

IF_OPER_STATUS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 8)
IF_DESCR: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
IF_NAME: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)
LLDP_LOC_PORT_ID: Oid = (1, 0, 8802, 1, 1, 2, 1, 3, 7, 1, 3)
LLDP_REM_ENTRY: Oid = (1, 0, 8802, 1, 1, 2, 1, 4, 1, 1)
# lldpRemEntry columns
_LLDP_CHASSIS_SUBTYPE, _LLDP_CHASSIS_ID, _LLDP_PORT_SUBTYPE, _LLDP_PORT_ID, _LLDP_SYS_NAME = 4, 5, 6, 7, 9
_LLDP_CHASSIS_MAC, _LLDP_PORT_MAC = 4, 3  # macAddress subtypes (chassis / port id)
_LLDP_TEXT_SUBTYPES = {  # subtypes whose id is a name, not an address
    "chassis": {1, 2, 3, 6, 7},  # chassisComponent, interfaceAlias, portComponent, interfaceName, local
    "port": {1, 2, 5, 7},  # interfaceAlias, portComponent, interfaceName, local
}


@dataclass(frozen=True, slots=True)
class _Target:
    domain: Oid
    address: tuple[Any, ...]
    family: int


class SwitchClient(FdbReader):
    """Polls one switch. Reuse it: the SNMP engine is built once per event loop (~0.2 s).

    Call :meth:`close` (or use ``async with``) before the event loop ends; a client left open
    still works in a later loop, but its old socket is then released only by the garbage
    collector.

    ``timeout`` is per request, in seconds; a walk that gets no answer raises
    :class:`SnmpTimeout` after ``timeout * (retries + 1)``.

    With ``usm`` the switch is read over SNMPv3 at authPriv and ``community`` is not used; Cisco's
    per-VLAN bridge tables are then read in the context ``vlan-<id>`` instead of ``community@vlan``.
    :attr:`engine_id` is the switch's snmpEngineID once a v3 poll has succeeded.
    """

    def __init__(
        self,
        name: str,
        host: str,
        port: int = 161,
        community: str = "public",
        timeout: float = 2.0,
        retries: int = 1,
        max_repetitions: int = 25,
        usm: UsmUser | None = None,
    ) -> None:
        if timeout <= 0 or retries < 0 or max_repetitions < 1:
            raise ValueError("timeout must be > 0, retries >= 0, max_repetitions >= 1")
        self.name = name
        self.host = host
        self.port = port
        self.community = community
        self.timeout = timeout
        self.retries = retries
        self.max_repetitions = max_repetitions
        self.usm = usm
        self.engine_id: bytes | None = None
        self._seen_engine_id: bytes | None = None
        self._contexts: dict[str, str] = {}  # target -> SNMPv3 context name (Cisco per-VLAN)
        self._engine: engine.SnmpEngine | None = None
        self._engine_loop: asyncio.AbstractEventLoop | None = None
        self._target: _Target | None = None
        self._vlan_targets: set[str] = set()
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SwitchClient({self.name!r}, {self.host}:{self.port})"

    async def poll(self) -> SwitchSnapshot:
        """Read link state, forwarding tables and LLDP neighbours in one pass."""
        async with self._lock:
            try:
                snmp_engine = await self._engine_for_loop()
                snapshot = await self._poll(snmp_engine)
                self.engine_id = self._seen_engine_id if self.usm is not None else None
                return snapshot
            except DriverError:
                raise
            except (PySnmpError, PyAsn1Error) as exc:
                raise MalformedReply(self.name, f"SNMP layer rejected the exchange: {exc}") from exc

    async def close(self) -> None:
        """Release the engine's socket; the client can poll again afterwards."""
        self._close_engine()

    async def __aenter__(self) -> SwitchClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- polling ----------------------------------------------------------------------------

    async def _poll(self, snmp_engine: engine.SnmpEngine) -> SwitchSnapshot:
        oper = await self._int_table(snmp_engine, IF_OPER_STATUS)
        for if_index, status in oper.items():
            if status not in _IF_OPER_STATES:
                raise self._malformed((*IF_OPER_STATUS, if_index), f"ifOperStatus {status} out of range 1..7")
        names = await self._text_table(snmp_engine, IF_NAME)
        if not oper.keys() <= names.keys():  # no ifXTable (or a partial one): ifDescr names the port
            names = {**await self._text_table(snmp_engine, IF_DESCR), **names}
        interfaces = {i: Interface(i, names.get(i), status) for i, status in sorted(oper.items())}
        port_if_index = await self._int_table(snmp_engine, DOT1D_BASE_PORT_IF_INDEX)
        # No dot1dBasePortTable: bridge ports stay unmapped (seen on no interface, matching no slot)
        # rather than guessed to be ifIndexes, which holds on some switches and not others: a laptop
        # put on the wrong bench port is worse than one not found.
        physical = unit_parents(interfaces)  # Junos: bridge ports are ge-0/0/1.0, links are ge-0/0/1

        macs = []
        for (mac, bridge_port, vlan), ports in await self._fdb(snmp_engine, port_if_index):
            if_index = ports.get(bridge_port)
            if_index = physical.get(if_index, if_index) if if_index is not None else None
            iface = interfaces.get(if_index) if if_index is not None else None
            macs.append(MacSeen(self.name, mac, bridge_port, if_index, iface.if_name if iface else None, vlan))

        neighbours = await self._lldp(snmp_engine)
        ordered = tuple(sorted(macs, key=lambda m: (m.mac, m.vlan or 0)))
        return SwitchSnapshot(self.name, interfaces, ordered, neighbours)

    async def _lldp(self, snmp_engine: engine.SnmpEngine) -> tuple[LldpNeighbour, ...]:
        local_ids = await self._text_table(snmp_engine, LLDP_LOC_PORT_ID)
        rows: dict[Oid, dict[int, Any]] = {}
        for idx, value in await self._walk(snmp_engine, LLDP_REM_ENTRY):
            if len(idx) != 4:  # column + (timeMark, localPortNum, index)
                raise self._malformed(LLDP_REM_ENTRY + idx, "index is not timeMark.localPort.index")
            rows.setdefault(idx[1:], {})[idx[0]] = value
        neighbours = []
        for (time_mark, local_port, row_index), cols in sorted(rows.items(), key=lambda r: r[0][1:]):
            where = (*LLDP_REM_ENTRY, _LLDP_CHASSIS_ID, time_mark, local_port, row_index)
            if _LLDP_CHASSIS_ID not in cols or _LLDP_PORT_ID not in cols:
                raise self._malformed(where, "LLDP row lacks chassis id or port id")
            sys_name = self._text(cols[_LLDP_SYS_NAME], where) if _LLDP_SYS_NAME in cols else ""
            neighbours.append(
                LldpNeighbour(
                    local_port_num=local_port,
                    local_port_id=local_ids.get(local_port),
                    chassis_id=self._lldp_id(cols, _LLDP_CHASSIS_SUBTYPE, _LLDP_CHASSIS_ID, "chassis", where),
                    port_id=self._lldp_id(cols, _LLDP_PORT_SUBTYPE, _LLDP_PORT_ID, "port", where),
                    sys_name=sys_name or None,
                )
            )
        return tuple(neighbours)

    def _lldp_id(self, cols: Mapping[int, Any], subtype_col: int, id_col: int, kind: str, where: Oid) -> str:
        raw = self._octets(cols[id_col], where)
        subtype = self._integer(cols[subtype_col], where) if subtype_col in cols else None
        mac_subtype = _LLDP_CHASSIS_MAC if kind == "chassis" else _LLDP_PORT_MAC
        if subtype == mac_subtype and len(raw) == 6:
            return mac_from_octets(raw)
        if subtype in _LLDP_TEXT_SUBTYPES[kind] and raw.isascii():
            return raw.decode("ascii")
        return raw.hex()

    # -- table walks ------------------------------------------------------------------------

    async def _int_table(self, snmp_engine: engine.SnmpEngine, table: Oid) -> dict[int, int]:
        """A single-index INTEGER column, e.g. ifOperStatus: {index: value}."""
        return {
            self._single_index(idx, table): self._integer(value, table + idx)
            for idx, value in await self._walk(snmp_engine, table)
        }

    async def _text_table(self, snmp_engine: engine.SnmpEngine, table: Oid) -> dict[int, str]:
        """A single-index OCTET STRING column, e.g. ifName: {index: text}."""
        return {
            self._single_index(idx, table): self._text(value, table + idx)
            for idx, value in await self._walk(snmp_engine, table)
        }

    async def _walk(self, snmp_engine: engine.SnmpEngine, root: Oid, target: str = "switch") -> list[tuple[Oid, Any]]:
        """All (index, value) pairs under ``root``, by GETBULK; empty if the table is absent.

        ``target`` is the configured target to ask: "switch", or a per-VLAN one from :meth:`_vlan_target`.
        """
        rows: list[tuple[Oid, Any]] = []
        cursor = root
        while True:
            var_binds = await self._bulk(snmp_engine, cursor, root, target)
            for name, value in var_binds:
                oid = tuple(int(x) for x in name)
                if isinstance(value, rfc1905.EndOfMibView) or oid[: len(root)] != root:
                    return rows
                if isinstance(value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance):
                    raise self._malformed(oid, "noSuchObject/noSuchInstance in a walk")
                if oid <= cursor:
                    raise self._malformed(oid, f"OID does not increase after {_dotted(cursor)}")
                rows.append((oid[len(root) :], value))
                cursor = oid

    async def _bulk(self, snmp_engine: engine.SnmpEngine, cursor: Oid, root: Oid, target: str) -> Sequence[Any]:
        future: asyncio.Future[tuple[Any, int, Sequence[Any]]] = asyncio.get_running_loop().create_future()

        def on_response(
            _engine: engine.SnmpEngine,
            _handle: int,
            error_indication: Any,
            error_status: Any,
            _error_index: Any,
            var_binds: Sequence[Any],
            _ctx: Any,
        ) -> None:
            if not future.done():
                future.set_result((error_indication, int(error_status or 0), var_binds))

        cmdgen.BulkCommandGeneratorSingleRun().send_varbinds(
            snmp_engine,
            target,
            None,
            self._contexts.get(target, ""),
            0,
            self.max_repetitions,
            [(rfc1902.ObjectName(cursor), univ.Null(""))],
            on_response,
        )
        error_indication, error_status, var_binds = await future
        if error_indication:
            if isinstance(error_indication, errind.RequestTimedOut):
                raise SnmpTimeout(
                    self.name,
                    f"no answer from {self.host}:{self.port} within {self.timeout:g} s "
                    f"x {self.retries + 1} tries walking {_dotted(root)}",
                )
            if refusal := usm_refusal(error_indication):
                raise SnmpAgentError(self.name, f"{refusal} walking {_dotted(root)}")
            raise MalformedReply(self.name, f"{error_indication} walking {_dotted(root)}")
        if error_status:
            status = rfc1905.errorStatus.getNamedValues().getName(error_status) or str(error_status)
            raise SnmpAgentError(self.name, f"agent returned {status} walking {_dotted(root)}")
        if not var_binds:
            raise self._malformed(cursor, "empty GETBULK response")
        return var_binds

    # -- value checks: a wrong type is a malformed reply, not a crash -------------------------

    def _malformed(self, oid: Oid, reason: str) -> MalformedReply:
        return MalformedReply(self.name, f"{reason} at {_dotted(oid)}")

    def _single_index(self, idx: Oid, table: Oid) -> int:
        if len(idx) != 1:
            raise self._malformed(table + idx, "expected a single-integer index")
        return idx[0]

    def _integer(self, value: Any, oid: Oid) -> int:
        # Integer32 shares INTEGER's tag; Counter/Gauge/TimeTicks do not and are rejected.
        if not isinstance(value, univ.Integer) or value.tagSet != univ.Integer.tagSet:
            raise self._malformed(oid, f"expected INTEGER, got {_type_name(value)}")
        return int(value)

    def _octets(self, value: Any, oid: Oid) -> bytes:
        if not isinstance(value, univ.OctetString) or value.tagSet != univ.OctetString.tagSet:
            raise self._malformed(oid, f"expected OCTET STRING, got {_type_name(value)}")
        return bytes(value)

    def _text(self, value: Any, oid: Oid) -> str:
        return self._octets(value, oid).decode("utf-8", errors="replace")

    # -- engine lifecycle -------------------------------------------------------------------

    async def _engine_for_loop(self) -> engine.SnmpEngine:
        loop = asyncio.get_running_loop()
        if self._engine is not None and self._engine_loop is loop:
            return self._engine
        self._close_engine()
        target = await self._resolve()
        snmp_engine = engine.SnmpEngine()
        add_poll_credentials(snmp_engine, "switch-params", self.community, self.usm, "switch-area")
        if self.usm is not None:  # the engine id the switch answered with: its traps are sent under it
            snmp_engine.observer.register_observer(self._note_engine_id, "rfc3414.processIncomingMsg")
        transport = udp6.Udp6AsyncioTransport() if target.family == socket.AF_INET6 else udp.UdpAsyncioTransport()
        config.add_transport(snmp_engine, target.domain, transport.open_client_mode())
        self._target, self._vlan_targets, self._contexts = target, set(), {}
        self._add_target(snmp_engine, "switch", "switch-params")
        self._engine, self._engine_loop = snmp_engine, loop
        return snmp_engine

    def _add_target(self, snmp_engine: engine.SnmpEngine, name: str, params: str) -> None:
        assert self._target is not None
        config.add_target_address(
            snmp_engine,
            name,
            self._target.domain,
            self._target.address,
            params,
            timeout=self.timeout * 100,  # pysnmp counts in hundredths of a second
            retryCount=self.retries,
        )

    def _vlan_target(self, snmp_engine: engine.SnmpEngine, vlan: int) -> str:
        """The target for one VLAN's BRIDGE-MIB on Cisco IOS: community string indexing, ``community@vlan``;
        under SNMPv3 the same target as the switch, read in the context ``vlan-<id>``."""
        if self.usm is not None:
            name = f"switch-context-vlan-{vlan}"
            self._contexts[name] = f"vlan-{vlan}"
            if name not in self._vlan_targets:
                self._add_target(snmp_engine, name, "switch-params")
                self._vlan_targets.add(name)
            return name
        name = f"switch-vlan-{vlan}"
        if name not in self._vlan_targets:
            config.add_v1_system(snmp_engine, f"{name}-area", f"{self.community}@{vlan}")
            config.add_target_parameters(snmp_engine, f"{name}-params", f"{name}-area", "noAuthNoPriv", 1)
            self._add_target(snmp_engine, name, f"{name}-params")
            self._vlan_targets.add(name)
        return name

    async def _resolve(self) -> _Target:
        """Resolve the host and check there is a route, without sending a packet."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise SwitchUnreachable(self.name, f"cannot resolve {self.host!r}: {exc}") from exc
        family, _, _, _, address = infos[0]
        # connect() on a UDP socket only consults the routing table: no traffic, instant answer.
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(address)
            except OSError as exc:
                raise SwitchUnreachable(self.name, f"no route to {address[0]}: {exc.strerror}") from exc
        if family == socket.AF_INET6:
            return _Target(udp6.DOMAIN_NAME, address, family)
        return _Target(udp.DOMAIN_NAME, (address[0], address[1]), family)

    def _close_engine(self) -> None:
        snmp_engine, self._engine, self._engine_loop = self._engine, None, None
        if snmp_engine is None:
            return
        try:
            snmp_engine.close_dispatcher()
        except RuntimeError:
            pass  # its event loop is already closed, and the socket with it

    def _note_engine_id(self, _engine: engine.SnmpEngine, _point: str, variables: Mapping[str, Any], _ctx: Any) -> None:
        self._seen_engine_id = bytes(variables["securityEngineId"])


def _dotted(oid: Oid) -> str:
    return ".".join(map(str, oid))


def _type_name(value: Any) -> str:
    return type(value).__name__
