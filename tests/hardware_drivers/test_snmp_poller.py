"""SwitchClient against snmpsim: MAC-to-port mapping, live changes, and every failure typed."""

from __future__ import annotations

import asyncio
import gc
import socket
import time

import pytest
from harness.snmpsim import (
    DOT1D_TP_FDB_PORT,
    GARBLED_LINK,
    IF_OPER_STATUS,
    LAPTOP_AGED_OUT,
    LAPTOP_INDEX,
    LAPTOP_MAC,
    LAPTOP_RECABLED,
    SWITCH_FILES,
    SnmpSim,
    link,
)

from hardware_drivers.events import DriverError, MalformedReply, SnmpTimeout, SwitchUnreachable
from hardware_drivers.snmp import SwitchClient, SwitchSnapshot, find_mac, normalise_mac


def client(sim: SnmpSim, community: str, **kwargs: float) -> SwitchClient:
    return SwitchClient(community, sim.host, sim.port, community, **{"timeout": 1.0, "retries": 1, **kwargs})


def poll(switch: SwitchClient) -> SwitchSnapshot:
    """One poll in a fresh event loop, releasing the client's socket afterwards."""

    async def once() -> SwitchSnapshot:
        async with switch:
            return await switch.poll()

    return asyncio.run(once())


def test_poll_maps_macs_to_named_ports(sim: SnmpSim) -> None:
    snap = poll(client(sim, "sw-bench-1"))

    assert {i.if_name: i.is_up for i in snap.interfaces.values()} == {
        "Gi1/0/1": True,
        "Gi1/0/2": True,
        "Gi1/0/3": False,
        "Gi1/0/4": False,
        "Te1/1/1": True,
    }
    (laptop,) = find_mac(snap, "001B.63AA.0001")  # any notation finds it
    assert (laptop.switch, laptop.mac, laptop.if_index, laptop.if_name, laptop.vlan) == (
        "sw-bench-1",
        LAPTOP_MAC,
        1,
        "Gi1/0/1",
        20,
    )
    # Q-BRIDGE entries carry the VLAN and are not duplicated by the VLAN-unaware table.
    assert len(snap.macs) == 4
    assert {m.mac for m in snap.macs_on("Te1/1/1")} == {"3c:ec:ef:10:20:30", "3c:ec:ef:10:20:31"}
    assert find_mac(snap, "00:1b:63:aa:00:99") == ()
    (core,) = snap.neighbours
    assert (core.local_port_num, core.local_port_id, core.sys_name) == (49, "Te1/1/1", "sw-core")
    assert (core.chassis_id, core.port_id) == ("3c:ec:ef:10:20:30", "Te1/0/7")


def test_bridge_ports_are_translated_to_if_index(sim: SnmpSim) -> None:
    """sw-bench-2 numbers bridge ports 1..49 but interfaces 10101..10149, and has no Q-BRIDGE."""
    snap = poll(client(sim, "sw-bench-2"))

    (dock,) = find_mac(snap, "00-1B-63-BB-00-03")
    assert (dock.bridge_port, dock.if_index, dock.if_name, dock.vlan) == (3, 10103, "Gi2/0/3", None)
    assert snap.interface("Gi2/0/2") is not None and not snap.interface("Gi2/0/2").is_up
    laptop = next(n for n in snap.neighbours if n.local_port_id == "Gi2/0/1")
    # A laptop's LLDP: MAC as both chassis and port id, no system name.
    assert (laptop.chassis_id, laptop.port_id, laptop.sys_name) == ("f8:b1:56:01:02:03", "f8:b1:56:01:02:03", None)


def test_port_down_and_mac_move_are_seen_on_the_next_poll(sim: SnmpSim) -> None:
    switch = client(sim, "sw-bench-1")
    before = poll(switch)
    assert before.interface("Gi1/0/1").is_up
    assert [m.if_name for m in find_mac(before, LAPTOP_MAC)] == ["Gi1/0/1"]

    # The laptop is recabled from Gi1/0/1 to Gi1/0/3: the old port drops, the new one comes up.
    sim.update("sw-bench-1", set_=LAPTOP_RECABLED)
    after = poll(switch)  # the same client, closed and reused in a new event loop

    assert not after.interface("Gi1/0/1").is_up
    assert after.interface("Gi1/0/3").is_up
    (moved,) = find_mac(after, LAPTOP_MAC)
    assert (moved.if_index, moved.if_name, moved.vlan) == (3, "Gi1/0/3", 20)
    assert after.macs_on("Gi1/0/1") == ()

    # The MAC ages out of the tables altogether.
    sim.update("sw-bench-1", delete=LAPTOP_AGED_OUT)
    assert find_mac(poll(switch), LAPTOP_MAC) == ()


def test_client_reuses_its_engine_and_survives_a_new_event_loop(sim: SnmpSim) -> None:
    switch = client(sim, "sw-bench-2")

    async def twice() -> tuple[SwitchSnapshot, SwitchSnapshot]:
        return await switch.poll(), await switch.poll()

    first, second = asyncio.run(twice())  # the loop ends without close(): the engine goes stale
    assert first == second
    # A new loop gets a new engine; the stale one's socket is left to the garbage collector.
    with pytest.warns(ResourceWarning, match="unclosed transport"):
        assert poll(switch) == first
        gc.collect()


def test_no_agent_is_a_timeout(sim: SnmpSim) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        silent_port = s.getsockname()[1]  # bound, so nothing else answers there; never read
        switch = SwitchClient("sw-gone", "127.0.0.1", silent_port, "public", timeout=0.3, retries=1)
        started = time.monotonic()
        with pytest.raises(SnmpTimeout) as excinfo:
            poll(switch)
    assert time.monotonic() - started < 5
    assert excinfo.value.switch == "sw-gone"
    assert f"no answer from 127.0.0.1:{silent_port}" in excinfo.value.reason
    assert "\n" not in str(excinfo.value)


def test_wrong_community_is_a_timeout_too(sim: SnmpSim) -> None:
    """v2c agents stay silent on an unknown community: indistinguishable from a dead agent."""
    switch = SwitchClient("sw-bench-1", sim.host, sim.port, "not-a-switch", timeout=0.3, retries=0)
    with pytest.raises(SnmpTimeout):
        poll(switch)


def test_unresolvable_host_is_unreachable() -> None:
    # A name with a space fails in the local resolver: no DNS query leaves the machine.
    switch = SwitchClient("sw-typo", "sw bench 1", 161, "public", timeout=0.3, retries=0)
    with pytest.raises(SwitchUnreachable) as excinfo:
        poll(switch)
    assert excinfo.value.switch == "sw-typo"
    assert "cannot resolve 'sw bench 1'" in excinfo.value.reason


def test_wrong_value_type_is_a_malformed_reply(sim: SnmpSim) -> None:
    """sw-broken answers ifOperStatus.3 with an OCTET STRING instead of an INTEGER."""
    with pytest.raises(MalformedReply) as excinfo:
        poll(client(sim, "sw-broken"))
    assert excinfo.value.switch == "sw-broken"
    assert excinfo.value.reason == "expected INTEGER, got OctetString at 1.3.6.1.2.1.2.2.1.8.3"


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        ({f"{IF_OPER_STATUS}.2": ("2", "42")}, "ifOperStatus 42 out of range 1..7"),
        ({f"{DOT1D_TP_FDB_PORT}.{LAPTOP_INDEX}": ("65", "1")}, "expected INTEGER, got Counter32"),
        ({f"{DOT1D_TP_FDB_PORT}.0.27.99": ("2", "1")}, "index is not a 6-octet MAC"),
        ({f"{DOT1D_TP_FDB_PORT}.0.27.99.170.0.300": ("2", "1")}, "index is not a 6-octet MAC"),
        ({"1.3.6.1.2.1.31.1.1.1.1.2.7": ("4", "Gi1/0/2")}, "expected a single-integer index"),
        ({"1.3.6.1.2.1.31.1.1.1.1.3": ("6", "1.3.6.1")}, "expected OCTET STRING, got ObjectIdentifier"),
    ],
)
def test_garbage_in_tables_is_a_malformed_reply(sim: SnmpSim, records: dict[str, tuple[str, str]], reason: str) -> None:
    sim.update("sw-bench-1", set_=records)
    with pytest.raises(MalformedReply) as excinfo:
        poll(client(sim, "sw-bench-1"))
    assert reason in excinfo.value.reason


def test_driver_errors_share_a_base_and_client_recovers(sim: SnmpSim) -> None:
    switch = client(sim, "sw-bench-1")
    sim.update("sw-bench-1", set_=GARBLED_LINK)
    with pytest.raises(DriverError):
        poll(switch)
    sim.update("sw-bench-1", set_=link(1, up=True))
    assert poll(switch).interface("Gi1/0/1").is_up


@pytest.mark.parametrize("text", ["00:1b:63:aa:00:01", "00-1B-63-AA-00-01", "001b.63aa.0001", "001B63AA0001"])
def test_normalise_mac_accepts_common_notations(text: str) -> None:
    assert normalise_mac(text) == LAPTOP_MAC


@pytest.mark.parametrize("text", ["", "00:1b:63:aa:00", "00:1b:63:aa:00:0g", "00:1b:63:aa:00:01:02"])
def test_normalise_mac_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        normalise_mac(text)


def test_snmprec_fixtures_are_sorted() -> None:
    """snmpsim's index silently misses records that are out of numeric order."""
    for path in SWITCH_FILES:
        oids = [line.split("|", 1)[0] for line in path.read_text().splitlines()]
        assert oids == sorted(oids, key=lambda o: tuple(int(x) for x in o.split("."))), path.name
