"""SNMPv3 (USM authPriv) polling against snmpsim configured with a v3 user: the same snapshot as v2c,
Cisco's per-VLAN bridge tables read through ``vlan-<id>`` contexts, wrong credentials refused as typed
errors, and the switch's engine ID learnt by a poll so that its v3 TRAPs are accepted."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import pytest
from harness.requirements import require, require_tool
from harness.snmpsim import SWITCH_FILES, SnmpSim, V3Agent, responder_path, snmpsim_v3
from harness.waiting import wait_until

from hardware_drivers.events import LinkDown, SnmpAgentError
from hardware_drivers.snmp import SwitchClient, SwitchSnapshot
from hardware_drivers.switch_poller import SwitchPoller, SwitchTarget, TrapListen
from hardware_drivers.switch_security import UsmUser

FIXTURES = {f.stem: f for f in SWITCH_FILES}
ENGINE_ID = "80000009030242ac110002"  # Cisco's format: enterprise 9, format 3 (a MAC address)
AGENT = V3Agent(ENGINE_ID, "factory-ro", "SHA256", "auth-pass-phrase", "AES", "priv-pass-phrase")
USER = UsmUser("factory-ro", "SHA256", "auth-pass-phrase", "AES128", "priv-pass-phrase")


@pytest.fixture(scope="module")
def v3_cisco(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpSim]:
    """sw-cisco over SNMPv3: its VLAN 1 and VLAN 20 bridge tables in the contexts vlan-1 and vlan-20."""
    require(responder_path() is not None, "needs snmpsim (pip install snmpsim pysmi)")
    contexts = {"vlan-1": FIXTURES["sw-cisco@1"], "vlan-20": FIXTURES["sw-cisco@20"]}
    with snmpsim_v3(AGENT, FIXTURES["sw-cisco"], contexts, tmp_path_factory.mktemp("snmpsim-v3")) as server:
        yield server


def poll(client: SwitchClient) -> SwitchSnapshot:
    async def once() -> SwitchSnapshot:
        async with client:
            return await client.poll()

    return asyncio.run(once())


def v3_client(sim: SnmpSim, usm: UsmUser = USER) -> SwitchClient:
    return SwitchClient("sw-cisco", sim.host, sim.port, timeout=1.0, retries=1, usm=usm)


def test_v3_poll_reads_every_vlan_through_contexts_like_community_at_vlan(v3_cisco: SnmpSim, sim: SnmpSim) -> None:
    client = v3_client(v3_cisco)
    over_v3 = poll(client)
    over_v2c = poll(SwitchClient("sw-cisco", sim.host, sim.port, "sw-cisco", timeout=1.0))

    # VLAN 20's laptop is only in the vlan-20 context's table: found, on its port, with its VLAN.
    assert {(m.mac, m.if_name, m.vlan) for m in over_v3.macs} == {
        ("00:1b:63:cc:00:01", "Gi1/0/1", 1),
        ("00:1b:63:cc:00:03", "Gi1/0/3", 20),
        ("3c:ec:ef:10:20:30", "Te1/1/1", 20),
    }
    assert over_v3 == over_v2c  # same switch data, same snapshot, whichever SNMP version reads it
    assert client.engine_id == bytes.fromhex(ENGINE_ID)  # learnt from the switch's authenticated answers


@pytest.mark.parametrize(
    ("usm", "reason"),
    [
        (UsmUser("factory-ro", "SHA256", "wrong-pass-phrase", "AES", "priv-pass-phrase"), "authentication failed"),
        (UsmUser("factory-ro", "SHA256", "auth-pass-phrase", "AES", "wrong-pass-phrase"), "decryption failed"),
        (UsmUser("factory-ro", "SHA", "auth-pass-phrase", "AES", "priv-pass-phrase"), "authentication failed"),
    ],
    ids=["auth-key", "priv-key", "auth-protocol"],
)
def test_wrong_v3_credentials_are_a_typed_refusal_naming_the_cause(
    v3_cisco: SnmpSim, usm: UsmUser, reason: str
) -> None:
    client = v3_client(v3_cisco, usm)
    with pytest.raises(SnmpAgentError) as excinfo:
        poll(client)
    assert reason in excinfo.value.reason
    assert client.engine_id is None  # nothing learnt from a poll that failed


def _v3_trap(port: int, engine_id: str, *varbinds: str) -> None:
    tool = require_tool("snmptrap")
    auth = ["-u", "factory-ro", "-l", "authPriv", "-a", "SHA-256", "-A", "auth-pass-phrase"]
    priv = ["-x", "AES", "-X", "priv-pass-phrase", "-e", f"0x{engine_id}"]
    subprocess.run([tool, "-v3", *auth, *priv, f"127.0.0.1:{port}", "", *varbinds], check=True, timeout=10)


def test_poller_accepts_v3_traps_from_the_engine_its_first_poll_learnt(
    v3_cisco: SnmpSim, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[object] = []
    errors: list[object] = []
    switch = SwitchTarget("sw-cisco", v3_cisco.host, v3_cisco.port, interval=3600, timeout=2.0, usm=USER)
    poller = SwitchPoller([switch], events.append, lambda *e: errors.append(e), traps=TrapListen("127.0.0.1", 0))
    link_down = ("1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.10103", "i", "10103")
    poller.start()
    try:
        assert poller.trap_port
        wait_until(lambda: poller.snapshot("sw-cisco") is not None, 20, message="the first v3 poll")
        _v3_trap(poller.trap_port, "8000000903aabbccddeeff", *link_down)  # an engine nobody polled
        _v3_trap(poller.trap_port, ENGINE_ID, *link_down)
        wait_until(lambda: any(isinstance(e, LinkDown) for e in events), 10, message="the TRAP from the polled engine")
    finally:
        poller.stop()
    assert [e for e in events if isinstance(e, LinkDown)] == [LinkDown("sw-cisco", 10103, "Gi1/0/3")]
    assert errors == []
    assert any(
        "dropped trap from sw-cisco (user 'factory-ro', engine 8000000903aabbccddeeff): unknown SNMPv3 user" in m
        for m in caplog.messages
    )


def test_usm_keys_never_appear_in_a_repr() -> None:
    """Targets and users end up in log lines and tracebacks: their keys must not."""
    shown = repr(SwitchTarget("sw", "127.0.0.1", usm=USER))
    assert "factory-ro" in shown and "auth-pass-phrase" not in shown and "priv-pass-phrase" not in shown
