"""Why pysnmp dropped an incoming trap, for the log.

pysnmp drops a notification it cannot authenticate (unknown community, unknown v3 user or engine,
wrong key) silently: it only counts it in the standard MIB counters (SNMPv2-MIB, SNMP-MPD-MIB,
SNMP-USER-BASED-SM-MIB, RFC 3418/3412/3414). The receiver's transport hands every datagram to pysnmp
through :class:`DropAudit`, which compares those counters before and after and logs one line per
drop, with the sender's address and, for SNMPv3, the user and engine ID the message claimed (never
a community string: a wrong one may be somebody's right one).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pyasn1.codec.ber import decoder
from pyasn1.error import PyAsn1Error
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import engine
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

log = logging.getLogger("hardware_drivers.snmp_traps")

# (MIB, counter, why the message was dropped, whether it is a real drop rather than a step of
# SNMPv3 discovery: an INFORM's sender first asks for the receiver's engine ID and time, RFC 3414 section 4).
_COUNTERS: tuple[tuple[str, str, str, bool], ...] = (
    ("__SNMPv2-MIB", "snmpInBadCommunityNames", "unknown community", True),
    ("__SNMPv2-MIB", "snmpInASNParseErrs", "not a parsable SNMP message", True),
    ("__SNMP-MPD-MIB", "snmpUnknownSecurityModels", "unsupported SNMP version or security model", True),
    ("__SNMP-MPD-MIB", "snmpInvalidMsgs", "invalid SNMPv3 message", True),
    (
        "__SNMP-USER-BASED-SM-MIB",
        "usmStatsUnknownUserNames",
        "unknown SNMPv3 user for that engine ID (a TRAP needs the switch's engine_id)",
        True,
    ),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests", "SNMPv3 authentication failed (auth protocol or key)", True),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors", "SNMPv3 decryption failed (priv protocol or key)", True),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnsupportedSecLevels", "security level the user does not have", True),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownEngineIDs", "engine ID discovery", False),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsNotInTimeWindows", "outside the time window (or time sync)", False),
)

Receive = Callable[[Any, Any, bytes], None]


class DropAudit:
    def __init__(self, snmp_engine: engine.SnmpEngine, sender_name: Callable[[str], str]) -> None:
        self._engine = snmp_engine
        self._sender_name = sender_name

    def wrap(self, receive: Receive) -> Receive:
        def audited(transport: Any, address: Any, datagram: bytes) -> None:
            before = self._counts()
            receive(transport, address, datagram)
            for (_, _, reason, is_drop), old, new in zip(_COUNTERS, before, self._counts(), strict=True):
                if new > old:
                    self._report(str(address[0]), reason, is_drop, datagram)

        return audited

    def _counts(self) -> list[int]:
        builder = self._engine.get_mib_builder()
        return [int(builder.import_symbols(mib, name)[0].syntax) for mib, name, _, _ in _COUNTERS]

    def _report(self, address: str, reason: str, is_drop: bool, datagram: bytes) -> None:
        sender = self._sender_name(address)
        if not is_drop:
            log.debug("trap from %s: %s", sender, reason)
            return
        log.warning("dropped trap from %s%s: %s", sender, usm_identity(datagram), reason)


def usm_identity(datagram: bytes) -> str:
    """`` (user 'u', engine 80..)`` for an SNMPv3 message, empty for anything else."""
    try:
        message, _ = decoder.decode(datagram, asn1Spec=SNMPv3Message())
        params, _ = decoder.decode(bytes(message["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters())
        user = bytes(params["msgUserName"]).decode("utf-8", errors="replace")
        return f" (user {user!r}, engine {bytes(params['msgAuthoritativeEngineId']).hex() or 'none'})"
    except (PyAsn1Error, ValueError, TypeError):
        return ""


class AuditedUdp(udp.UdpAsyncioTransport):
    """UDP/IPv4 transport whose datagrams go through a :class:`DropAudit`."""

    audit: DropAudit | None = None

    def register_callback(self, cbFun: Receive) -> None:
        super().register_callback(self.audit.wrap(cbFun) if self.audit else cbFun)


class AuditedUdp6(udp6.Udp6AsyncioTransport):
    """UDP/IPv6 transport whose datagrams go through a :class:`DropAudit`."""

    audit: DropAudit | None = None

    def register_callback(self, cbFun: Receive) -> None:
        super().register_callback(self.audit.wrap(cbFun) if self.audit else cbFun)
