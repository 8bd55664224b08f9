"""TrapReceiver against the link traps real switches send (tests/fixtures/snmp/SNMPV3_VARIANTS.md),
sent by net-snmp's own ``snmptrap``/``snmpinform``: v1 generic traps, vendors' varbinds, SNMPv3 TRAPs
and INFORMs at authPriv, and everything it must drop (and log) without stopping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest
from harness.requirements import require_tool
from harness.waiting import wait_until_async

from hardware_drivers.events import LinkDown, LinkEvent, LinkUp
from hardware_drivers.snmp_traps import TrapReceiver
from hardware_drivers.switch_security import UsmUser

IF_INDEX, IF_DESCR, IF_TYPE = "1.3.6.1.2.1.2.2.1.1", "1.3.6.1.2.1.2.2.1.2", "1.3.6.1.2.1.2.2.1.3"
IF_ADMIN, IF_OPER, IF_NAME = "1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8", "1.3.6.1.2.1.31.1.1.1.1"
LOC_IF_REASON = "1.3.6.1.4.1.9.2.2.1.1.20"  # OLD-CISCO-INTERFACES-MIB
LINK_DOWN, LINK_UP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"
SWITCH_ENGINE = "80000009030242ac110002"
USER = UsmUser("factory-trap", "SHA256", "auth-pass-phrase", "AES", "priv-pass-phrase", bytes.fromhex(SWITCH_ENGINE))
V3 = ["-u", "factory-trap", "-l", "authPriv", "-a", "SHA-256", "-A", "auth-pass-phrase", "-x", "AES"]
V3_PRIV_KEY = ["-X", "priv-pass-phrase"]


async def net_snmp(tool: str, port: int, *args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        require_tool(tool), *args[:-1], f"127.0.0.1:{port}", *args[-1].split("\0"), stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


def pdu(*parts: str) -> str:
    """The arguments after the receiver's address, kept apart from the options by ``net_snmp``."""
    return "\0".join(parts)


async def received(sends: Sequence[tuple[str, ...]], expected: int, **options: object) -> list[LinkEvent]:
    """Start a receiver, run each ``(tool, *args)``, wait for ``expected`` events, then a little
    longer, so a trap that should have been dropped has had the time to (wrongly) arrive."""
    events: list[LinkEvent] = []
    async with TrapReceiver(events.append, host="127.0.0.1", port=0, switches={"127.0.0.1": "sw"}, **options) as rx:  # type: ignore[arg-type]
        for tool, *args in sends:
            await net_snmp(tool, rx.port, *args)
        await wait_until_async(lambda: len(events) >= expected, 10, message=f"{expected} event(s)")
        await asyncio.sleep(0.2)  # deliberate: see the docstring
    return events


def test_v1_generic_link_traps_are_translated_whatever_the_vendor() -> None:
    """RFC 3584 section 3.1: generic-trap 2/3 becomes snmpTraps.3/4, whatever the enterprise."""
    cisco = pdu("1.3.6.1.4.1.9.1.1208", "127.0.0.1", "2", "0", "", f"{IF_INDEX}.10103", "i", "10103",
                f"{IF_DESCR}.10103", "s", "GigabitEthernet1/0/3", f"{IF_TYPE}.10103", "i", "6",
                f"{LOC_IF_REASON}.10103", "s", "administratively down")  # fmt: skip
    procurve = pdu("1.3.6.1.4.1.11.2.3.7.11.181", "127.0.0.1", "3", "0", "", f"{IF_INDEX}.5", "i", "5",
                   f"{IF_ADMIN}.5", "i", "1", f"{IF_OPER}.5", "i", "1")  # fmt: skip
    sends = [("snmptrap", "-v1", "-c", "bench", cisco), ("snmptrap", "-v1", "-c", "bench", procurve)]
    assert asyncio.run(received(sends, 2, communities=("bench",))) == [
        LinkDown("sw", 10103, None),  # ifDescr is not taken for a name: the poll's ifName is the port map's
        LinkUp("sw", 5, None),
    ]


def test_v2c_vendor_varbinds_juniper_names_its_port() -> None:
    junos = pdu("", LINK_DOWN, f"{IF_INDEX}.527", "i", "527", f"{IF_ADMIN}.527", "i", "1",
                f"{IF_OPER}.527", "i", "2", f"{IF_NAME}.527", "s", "ge-0/0/3")  # fmt: skip
    aruba = pdu("", LINK_UP, f"{IF_INDEX}.7", "i", "7", f"{IF_ADMIN}.7", "i", "1", f"{IF_OPER}.7", "i", "1")
    sends = [("snmptrap", "-v2c", "-c", "bench", junos), ("snmpinform", "-v2c", "-c", "bench", aruba)]
    assert asyncio.run(received(sends, 2, communities=("bench",))) == [
        LinkDown("sw", 527, "ge-0/0/3"),
        LinkUp("sw", 7, None),
    ]


def test_v3_trap_with_the_switch_engine_and_v3_inform_with_ours_are_accepted() -> None:
    down, up = pdu("", LINK_DOWN, f"{IF_INDEX}.3", "i", "3"), pdu("", LINK_UP, f"{IF_INDEX}.4", "i", "4")
    sends = [
        ("snmptrap", "-v3", *V3, *V3_PRIV_KEY, "-e", f"0x{SWITCH_ENGINE}", down),  # TRAP: sender authoritative
        ("snmpinform", "-v3", *V3, *V3_PRIV_KEY, up),  # INFORM: discovers our engine ID first
    ]
    assert asyncio.run(received(sends, 2, communities=(), users=[USER])) == [
        LinkDown("sw", 3, None),
        LinkUp("sw", 4, None),
    ]


def test_unauthenticated_traps_are_dropped_logged_and_the_receiver_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hardware_drivers.snmp_traps")
    trap = pdu("", LINK_DOWN, f"{IF_INDEX}.9", "i", "9")
    engine = ["-e", f"0x{SWITCH_ENGINE}"]
    sends = [
        ("snmptrap", "-v2c", "-c", "bench-ro", trap),  # v2c, when every switch is v3
        ("snmptrap", "-v3", *V3[:-1], "AES", "-X", "wrong-pass-phrase", *engine, trap),
        ("snmptrap", "-v3", *V3[:7], "wrong-pass-phrase", *V3[8:], *V3_PRIV_KEY, *engine, trap),
        ("snmptrap", "-v3", "-u", "intruder", *V3[2:], *V3_PRIV_KEY, *engine, trap),
        ("snmptrap", "-v3", *V3, *V3_PRIV_KEY, "-e", "0x8000000903aabbccddeeff", trap),  # engine not configured
        ("snmptrap", "-v3", *V3[:3], "authNoPriv", *V3[4:8], *engine, trap),  # a known user below authPriv
        ("snmptrap", "-v3", *V3, *V3_PRIV_KEY, *engine, pdu("", LINK_UP, f"{IF_INDEX}.2", "i", "2")),
    ]
    assert asyncio.run(received(sends, 1, communities=(), users=[USER])) == [LinkUp("sw", 2, None)]
    unknown_user = "unknown SNMPv3 user for that engine ID (a TRAP needs the switch's engine_id)"
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "dropped trap from sw: unknown community",
        f"dropped trap from sw (user 'factory-trap', engine {SWITCH_ENGINE}): "
        "SNMPv3 decryption failed (priv protocol or key)",
        f"dropped trap from sw (user 'factory-trap', engine {SWITCH_ENGINE}): "
        "SNMPv3 authentication failed (auth protocol or key)",
        f"dropped trap from sw (user 'intruder', engine {SWITCH_ENGINE}): {unknown_user}",
        f"dropped trap from sw (user 'factory-trap', engine 8000000903aabbccddeeff): {unknown_user}",
        "dropped trap from sw (user 'factory-trap'): SNMPv3 below authPriv",
    ]


def test_a_receiver_needs_a_community_or_a_user() -> None:
    with pytest.raises(ValueError, match="at least one community or SNMPv3 user"):
        TrapReceiver(lambda _e: None, communities=(), users=())


@pytest.mark.parametrize(
    ("ours", "net_snmp_name", "accepted"),
    [
        ("AES192", "AES-192", True),
        ("AES256", "AES-256", True),  # Blumenthal key extension
        ("AES192C", "AES-192-C", True),
        ("AES256C", "AES-256-C", True),  # Cisco's (Reeder) key extension
        ("AES256", "AES-256-C", False),  # the two differ once SHA-1's 20-octet key must be extended
    ],
)
def test_aes_names_mean_what_net_snmp_means(
    ours: str, net_snmp_name: str, accepted: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hardware_drivers.snmp_traps")
    user = UsmUser("factory-trap", "SHA", "auth-pass-phrase", ours, "priv-pass-phrase", bytes.fromhex(SWITCH_ENGINE))
    options = ["-u", "factory-trap", "-l", "authPriv", "-a", "SHA", "-A", "auth-pass-phrase", "-x", net_snmp_name]
    trap = pdu("", LINK_DOWN, f"{IF_INDEX}.3", "i", "3")
    sends = [("snmptrap", "-v3", *options, *V3_PRIV_KEY, "-e", f"0x{SWITCH_ENGINE}", trap)]
    events = asyncio.run(received(sends, 1 if accepted else 0, communities=(), users=[user]))
    assert events == ([LinkDown("sw", 3, None)] if accepted else [])
    assert any("decryption failed" in m for m in caplog.messages) is not accepted
