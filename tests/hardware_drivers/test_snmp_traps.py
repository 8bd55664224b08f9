"""TrapReceiver against traps sent by net-snmp's real ``snmptrap`` command."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence

import pytest
from harness.requirements import require_tool
from harness.waiting import wait_until_async

from hardware_drivers.events import LinkDown, LinkEvent, LinkUp
from hardware_drivers.snmp_traps import TrapReceiver

LINK_UP = "1.3.6.1.6.3.1.1.5.4"
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
COLD_START = "1.3.6.1.6.3.1.1.5.1"
IF_INDEX = "1.3.6.1.2.1.2.2.1.1"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"


async def send_trap(port: int, varbinds: Sequence[str], community: str = "public") -> None:
    tool = require_tool("snmptrap")
    proc = await asyncio.create_subprocess_exec(
        tool, "-v2c", "-c", community, f"127.0.0.1:{port}", "", *varbinds, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def wait_for(events: list[LinkEvent], count: int, timeout: float = 5.0) -> None:
    await wait_until_async(lambda: len(events) >= count, timeout, message=f"{count} link event(s)")


def names_from_last_poll(switch: str, if_index: int) -> str | None:
    return {("sw-bench-1", 3): "Gi1/0/3"}.get((switch, if_index))


def test_link_up_and_down_become_typed_events() -> None:
    async def scenario() -> list[LinkEvent]:
        events: list[LinkEvent] = []
        async with TrapReceiver(
            events.append,
            host="127.0.0.1",
            port=0,
            switches={"127.0.0.1": "sw-bench-1"},
            if_name_lookup=names_from_last_poll,
        ) as receiver:
            await send_trap(receiver.port, [LINK_UP, f"{IF_INDEX}.3", "i", "3"])
            await wait_for(events, 1)
            await send_trap(receiver.port, [LINK_DOWN, f"{IF_INDEX}.4", "i", "4", f"{IF_NAME}.4", "s", "Gi1/0/4"])
            await wait_for(events, 2)
        return events

    assert asyncio.run(scenario()) == [
        LinkUp(switch="sw-bench-1", if_index=3, if_name="Gi1/0/3"),  # name from the lookup
        LinkDown(switch="sw-bench-1", if_index=4, if_name="Gi1/0/4"),  # name from the trap
    ]


def test_unusable_traps_are_dropped_and_the_receiver_keeps_going(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hardware_drivers.snmp_traps")

    async def scenario() -> list[LinkEvent]:
        events: list[LinkEvent] = []
        async with TrapReceiver(events.append, host="127.0.0.1", port=0, communities=("bench",)) as receiver:
            port = receiver.port
            await send_trap(port, [LINK_UP, f"{IF_INDEX}.3", "i", "3"], community="public")  # wrong community
            await send_trap(port, [COLD_START], community="bench")  # not a link trap
            await send_trap(port, [LINK_DOWN, f"{IF_INDEX}.4", "s", "four"], community="bench")  # garbage ifIndex
            await send_trap(port, [LINK_DOWN, f"{IF_INDEX}.5", "i", "6"], community="bench")  # index mismatch
            await send_trap(port, [LINK_DOWN], community="bench")  # no ifIndex at all
            await send_trap(port, [LINK_DOWN, f"{IF_INDEX}.7", "i", "7"], community="bench")
            await wait_for(events, 1)
            await asyncio.sleep(0.2)  # deliberate: give a late trap time to (wrongly) arrive
        return events

    # Unknown senders are reported by address; only the last trap was usable.
    assert asyncio.run(scenario()) == [LinkDown(switch="127.0.0.1", if_index=7, if_name=None)]
    dropped = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert dropped == [
        "dropped trap from 127.0.0.1: unknown community",  # counted by pysnmp, logged by the receiver
        "dropped link trap from 127.0.0.1: ifIndex varbind is OctetString, not INTEGER",
        "dropped link trap from 127.0.0.1: ifIndex varbind value 6 disagrees with its index 5",
        "dropped link trap from 127.0.0.1: no ifIndex varbind",
    ]


def test_callback_failure_does_not_stop_the_receiver() -> None:
    async def scenario() -> list[LinkEvent]:
        events: list[LinkEvent] = []

        def flaky(event: LinkEvent) -> None:
            events.append(event)
            if len(events) == 1:
                raise RuntimeError("consumer bug")

        async with TrapReceiver(flaky, host="127.0.0.1", port=0) as receiver:
            await send_trap(receiver.port, [LINK_UP, f"{IF_INDEX}.1", "i", "1"])
            await send_trap(receiver.port, [LINK_UP, f"{IF_INDEX}.2", "i", "2"])
            await wait_for(events, 2)
        return events

    assert [e.if_index for e in asyncio.run(scenario())] == [1, 2]


def test_stop_releases_the_port_and_a_busy_port_fails_at_start() -> None:
    async def scenario() -> int:
        receiver = TrapReceiver(lambda _e: None, host="127.0.0.1", port=0)
        await receiver.start()
        port = receiver.port
        clash = TrapReceiver(lambda _e: None, host="127.0.0.1", port=port)
        with pytest.raises(OSError):
            await clash.start()
        await receiver.stop()
        await receiver.stop()  # idempotent
        with pytest.raises(RuntimeError):
            _ = receiver.port
        return port

    port = asyncio.run(scenario())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))  # free again
