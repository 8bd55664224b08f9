"""SwitchClient against our own recordings of real switches' quirks (tests/fixtures/snmp/VARIANTS.md)."""

from __future__ import annotations

import asyncio

from harness.snmpsim import SnmpSim

from hardware_drivers.snmp import SwitchClient, SwitchSnapshot, find_mac

UPLINK_MAC = "3c:ec:ef:10:20:30"


def poll(sim: SnmpSim, community: str) -> SwitchSnapshot:
    async def once() -> SwitchSnapshot:
        async with SwitchClient(community, sim.host, sim.port, community, timeout=1.0, retries=1) as switch:
            return await switch.poll()

    return asyncio.run(once())


def where(snap: SwitchSnapshot, mac: str) -> list[tuple[str | None, int | None]]:
    return [(m.if_name, m.vlan) for m in find_mac(snap, mac)]


def test_cisco_per_vlan_bridge_tables_are_read_with_community_at_vlan(sim: SnmpSim) -> None:
    """IOS answers the plain community with VLAN 1 only; VLAN 20's laptop is behind ``community@20``."""
    snap = poll(sim, "sw-cisco")

    assert where(snap, "00:1b:63:cc:00:03") == [("Gi1/0/3", 20)]  # bridge port 3 exists only in VLAN 20's map
    assert where(snap, "00:1b:63:cc:00:01") == [("Gi1/0/1", 1)]
    assert where(snap, UPLINK_MAC) == [("Te1/1/1", 20)]
    # VLAN 30 is suspended and 1002-1003 are the reserved defaults: not asked (they would time out).
    assert {m.vlan for m in snap.macs} == {1, 20}


def test_junos_units_fdb_ids_and_non_station_rows(sim: SnmpSim) -> None:
    snap = poll(sim, "sw-junos")

    # Bridge port -> ge-0/0/1.0 (the unit) is reported on ge-0/0/1, the port links and traps name;
    # FDB id 5 is VLAN 20 according to dot1qVlanFdbId.
    (laptop,) = find_mac(snap, "00:1b:63:dd:00:01")
    assert (laptop.if_index, laptop.if_name, laptop.vlan) == (510, "ge-0/0/1", 20)
    assert where(snap, UPLINK_MAC) == [("xe-0/1/0", 20)]
    # The switch's own MAC (self(4), even on a real port; and on port 0) and an aged-out invalid(2)
    # row are not stations: nothing but the laptop is on ge-0/0/1, nothing at all on ge-0/0/2.
    assert find_mac(snap, "2c:6b:f5:00:00:01") == find_mac(snap, "2c:6b:f5:00:00:02") == ()
    assert snap.macs_on("ge-0/0/1") == (laptop,)
    assert find_mac(snap, "00:1b:63:dd:00:02") == ()


def test_switch_without_ifxtable_or_base_port_table(sim: SnmpSim) -> None:
    """No ifName: ifDescr names the ports. No dot1dBasePortTable: the MACs are seen on their bridge
    ports but on no interface (never guessed: bridge port n is not ifIndex n on every switch)."""
    snap = poll(sim, "sw-plain")

    assert snap.interface("Port 3") is not None and not snap.interface("Port 3").is_up
    (laptop,) = find_mac(snap, "00:1b:63:ee:00:02")
    assert (laptop.bridge_port, laptop.if_index, laptop.if_name, laptop.vlan) == (2, None, None, None)
    assert snap.macs_on("Port 2") == ()


def test_cisco_without_community_indexing_is_read_as_before_and_not_asked_per_vlan_again(sim: SnmpSim) -> None:
    """VLANs listed, but ``community@vlan`` unanswered (indexing off, or SNMPv3 contexts instead): the
    poll still returns the plain community's table, and the next poll does not ask the VLANs again."""
    asked: list[str] = []

    async def twice() -> tuple[SwitchSnapshot, SwitchSnapshot, list[str]]:
        async with SwitchClient("noidx", sim.host, sim.port, "sw-cisco-noidx", timeout=0.5, retries=0) as switch:
            walk = switch._walk

            async def noted(snmp_engine, root, target="switch"):  # type: ignore[no-untyped-def]
                asked.append(target)
                return await walk(snmp_engine, root, target)

            switch._walk = noted  # type: ignore[method-assign]
            first = await switch.poll()
            asked_first = list(asked)
            asked.clear()
            return first, await switch.poll(), asked_first

    first, second, asked_first = asyncio.run(twice())
    for snap in (first, second):
        assert where(snap, "00:1b:63:cc:00:01") == [("Gi1/0/1", None)]  # the default VLAN's table, as before
        assert find_mac(snap, "00:1b:63:cc:00:03") == ()  # VLAN 20's laptop: not reachable this way
    assert asked_first.count("switch-vlan-1") == 1 and "switch-vlan-20" not in asked_first  # stopped at the first
    assert not [target for target in asked if target != "switch"]  # and not asked again
