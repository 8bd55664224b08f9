"""SNMP trap receiver: linkUp/linkDown from bench switches become LinkUp/LinkDown events.

Runs on the caller's asyncio loop. The UDP socket is bound in :meth:`TrapReceiver.start`
itself, so a port clash fails there (not later inside pysnmp) and port 0 picks a free port.
Traps that are not linkUp/linkDown are ignored; a link trap without a usable ifIndex is
logged and dropped, never raised into the event loop.

Accepted: v1 traps (pysnmp translates generic-trap linkDown(2)/linkUp(3) to the SNMPv2 trap OIDs,
RFC 3584 section 3.1), v2c traps and informs by community, and SNMPv3 TRAPs and INFORMs at authPriv
from the configured USM users. A v3 INFORM is authenticated with keys localised to this receiver's
own engine ID, which the sender discovers; a v3 TRAP with keys localised to the *sender's* engine ID
(RFC 3414 section 1.5.1), which the receiver must know beforehand: from the site file's
``engine_id``, or learnt from the switch's answers to a v3 poll (:meth:`TrapReceiver.add_sender_engine`).
A notification that fails authentication is dropped and logged (``switch_trap_audit``), as is a v3
one below authPriv.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pyasn1.type import univ
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv

from hardware_drivers.events import LinkDown, LinkEvent, LinkUp
from hardware_drivers.switch_security import USM_AUTH_PRIV_LEVEL, USM_SECURITY_MODEL, UsmUser
from hardware_drivers.switch_trap_audit import AuditedUdp, AuditedUdp6, DropAudit

log = logging.getLogger(__name__)

SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
LINK_DOWN = (1, 3, 6, 1, 6, 3, 1, 1, 5, 3)
LINK_UP = (1, 3, 6, 1, 6, 3, 1, 1, 5, 4)
IF_INDEX = (1, 3, 6, 1, 2, 1, 2, 2, 1, 1)
IF_NAME = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)
_EVENT_BY_TRAP: Mapping[tuple[int, ...], type[LinkEvent]] = {LINK_UP: LinkUp, LINK_DOWN: LinkDown}

IfNameLookup = Callable[[str, int], str | None]


class TrapReceiver:
    """Receive link traps (v1/v2c by community, v3 by USM user) and hand typed events to ``on_event``
    (on the loop thread).

    ``switches`` maps a sender's IP address to the switch name used elsewhere (port map,
    poller); traps from other senders are reported under their IP address. When a trap
    carries no ifName varbind, ``if_name_lookup(switch, if_index)`` (for example backed by
    the last poll's snapshot) supplies it.
    """

    def __init__(
        self,
        on_event: Callable[[LinkEvent], None],
        host: str = "0.0.0.0",
        port: int = 162,
        communities: Sequence[str] = ("public",),
        switches: Mapping[str, str] | None = None,
        if_name_lookup: IfNameLookup | None = None,
        users: Sequence[UsmUser] = (),
    ) -> None:
        if not communities and not users:
            raise ValueError("at least one community or SNMPv3 user is required")
        self._on_event = on_event
        self._host = host
        self._requested_port = port
        self._communities = tuple(communities)
        self._users = tuple(users)
        self._sender_engines: set[tuple[str, bytes]] = set()  # (user, engine id) registered for TRAPs
        self._switches = dict(switches or {})
        self._if_name_lookup = if_name_lookup
        self._engine: engine.SnmpEngine | None = None
        self._receiver: ntfrcv.NotificationReceiver | None = None
        self._port: int | None = None
        self._sock: socket.socket | None = None

    @property
    def port(self) -> int:
        """The UDP port actually bound (useful with ``port=0``)."""
        if self._port is None:
            raise RuntimeError("TrapReceiver is not running")
        return self._port

    async def start(self) -> None:
        """Bind the socket and start receiving; raises ``OSError`` if the port is unavailable."""
        if self._engine is not None:
            raise RuntimeError("TrapReceiver already started")
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        ipv6 = family == socket.AF_INET6
        snmp_engine = engine.SnmpEngine()
        for n, community in enumerate(self._communities):
            config.add_v1_system(snmp_engine, f"trap-area-{n}", community)
        for user in self._users:
            user.add_to(snmp_engine)  # INFORMs: localised to our own engine ID
            if user.engine_id is not None:
                self._register_sender(snmp_engine, user, user.engine_id)
        receiver = ntfrcv.NotificationReceiver(snmp_engine, self._on_notification)
        transport = AuditedUdp6() if ipv6 else AuditedUdp()
        transport.audit = DropAudit(snmp_engine, lambda address: self._switches.get(address, address))
        config.add_transport(snmp_engine, udp6.DOMAIN_NAME if ipv6 else udp.DOMAIN_NAME, transport)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self._host, self._requested_port))
            sock.setblocking(False)
            # Attach the pysnmp protocol to our socket ourselves (open_server_mode would do it in
            # a background task): start() returns only once traps are being read.
            await loop.create_datagram_endpoint(lambda: transport, sock=sock)
        except BaseException:
            snmp_engine.close_dispatcher()
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        self._engine, self._receiver, self._sock = snmp_engine, receiver, sock
        log.info("SNMP trap receiver listening on %s:%d", self._host, self._port)

    def add_sender_engine(self, user: UsmUser, engine_id: bytes) -> bool:
        """Accept ``user``'s TRAPs from the engine ``engine_id``; False if that was known already."""
        if self._engine is None:
            raise RuntimeError("TrapReceiver is not running")
        return self._register_sender(self._engine, user, engine_id)

    def _register_sender(self, snmp_engine: engine.SnmpEngine, user: UsmUser, engine_id: bytes) -> bool:
        if (user.user, engine_id) in self._sender_engines:
            return False
        user.add_to(snmp_engine, engine_id)
        self._sender_engines.add((user.user, engine_id))
        log.info("SNMPv3 TRAPs from user %r with engine ID %s accepted", user.user, engine_id.hex())
        return True

    async def stop(self) -> None:
        """Stop receiving and close the socket; idempotent."""
        snmp_engine, self._engine = self._engine, None
        if snmp_engine is None:
            return
        if self._receiver is not None:
            self._receiver.close(snmp_engine)
            self._receiver = None
        snmp_engine.close_dispatcher()  # unregisters the socket from the loop
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._port = None
        self._sender_engines.clear()

    async def __aenter__(self) -> TrapReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _on_notification(
        self,
        snmp_engine: engine.SnmpEngine,
        state_reference: Any,
        _context_engine_id: Any,
        _context_name: Any,
        var_binds: Sequence[tuple[Any, Any]],
        _cb_ctx: Any,
    ) -> None:
        try:
            _, address = snmp_engine.message_dispatcher.get_transport_info(state_reference)
            sender = str(address[0])
        except Exception:
            sender = "unknown"
        switch = self._switches.get(sender, sender)
        if refusal := _below_auth_priv(snmp_engine):
            log.warning("dropped trap from %s %s", switch, refusal)
            return
        try:
            event = self._event_from(switch, var_binds)
        except ValueError as exc:
            log.warning("dropped link trap from %s: %s", switch, exc)
            return
        if event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            log.exception("link event callback failed for %s", event)

    def _event_from(self, switch: str, var_binds: Sequence[tuple[Any, Any]]) -> LinkEvent | None:
        values = {tuple(int(x) for x in name): value for name, value in var_binds}
        trap_oid = values.get(SNMP_TRAP_OID)
        if trap_oid is None:
            raise ValueError("no snmpTrapOID.0 varbind")
        event_type = _EVENT_BY_TRAP.get(tuple(int(x) for x in trap_oid))
        if event_type is None:
            return None
        if_index = _find_if_index(values)
        if_name = _find_if_name(values, if_index)
        if if_name is None and self._if_name_lookup is not None:
            if_name = self._if_name_lookup(switch, if_index)
        return event_type(switch=switch, if_index=if_index, if_name=if_name)


def _below_auth_priv(snmp_engine: engine.SnmpEngine) -> str | None:
    """Why an SNMPv3 notification is refused for its security level (USM itself accepts a message
    below the level its user is configured for, and pysnmp's receiver applies no access control)."""
    try:
        request = snmp_engine.observer.get_execution_context("rfc3412.receiveMessage:request")
    except KeyError:  # pysnmp gave no message context: the level cannot be checked, so refuse
        return "(no message context to check its security level)"
    if request["securityModel"] == USM_SECURITY_MODEL and request["securityLevel"] != USM_AUTH_PRIV_LEVEL:
        return f"(user {str(request['securityName'])!r}): SNMPv3 below authPriv"
    return None


def _find_if_index(values: Mapping[tuple[int, ...], Any]) -> int:
    for oid, value in values.items():
        if oid[: len(IF_INDEX)] == IF_INDEX and len(oid) == len(IF_INDEX) + 1:
            if not isinstance(value, univ.Integer) or value.tagSet != univ.Integer.tagSet:
                raise ValueError(f"ifIndex varbind is {type(value).__name__}, not INTEGER")
            if int(value) != oid[-1]:
                raise ValueError(f"ifIndex varbind value {int(value)} disagrees with its index {oid[-1]}")
            return int(value)
    raise ValueError("no ifIndex varbind")


def _find_if_name(values: Mapping[tuple[int, ...], Any], if_index: int) -> str | None:
    value = values.get((*IF_NAME, if_index))
    if isinstance(value, univ.OctetString) and value.tagSet == univ.OctetString.tagSet:
        return bytes(value).decode("utf-8", errors="replace") or None
    return None
