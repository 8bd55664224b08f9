"""Switch-port slots on SQLite and PostgreSQL: the site file's switches, MAC occupancy through the
controller, switch failures as board notices, and the agent polling snmpsim end to end."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness.domain import receive
from harness.line_sites import ONE_SWITCH, switch_site_file
from harness.requirements import require_tool
from harness.snmpsim import (
    SnmpSim,
)
from harness.switch_ports import gone, host_key, jobs_in, seen, slot, with_mac
from harness.waiting import wait_until
from sqlmodel import col, select

from factory.intake.service import register_endpoint
from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import InvalidInput
from factory.kernel.models.custody_entry import CustodyEntry
from factory.line.agent import LineAgentProcess
from factory.line.bench_config import LineConfig, load_line_config
from factory.line.controller import Controller
from factory.line.network_slots import SwitchFailed, SwitchRecovered
from factory.line.provision_step import NO_PROVISIONING, NO_PROVISIONING_NOTICE
from hardware_drivers.events import LinkDown, MacSeen, MalformedReply, SnmpTimeout
from hardware_drivers.switch_poller import SwitchTarget, TrapListen
from hardware_drivers.switch_security import UsmUser

LAPTOP = "00:1b:63:aa:00:01"  # on sw-bench-1 Gi1/0/1 in the fixture
STRANGER = "00:1b:63:aa:00:02"  # on sw-bench-1 Gi1/0/2: recorded on no device
SLOT1, SLOT2, SLOT3 = "bench-1/slot-1", "bench-1/slot-2", "bench-1/slot-3"


# ---------------------------------------------------------------------------- the site file


def test_site_file_lists_switches_and_the_trap_listener(tmp_path: Path) -> None:
    path = switch_site_file(
        tmp_path,
        ONE_SWITCH + 'community = "bench"\ninterval = 5\nport = 1161\n'
        '[[switches]]\nname = "sw-spare"\nhost = "sw-spare.example"\ntimeout = 1\nretries = 0\n',
        traps='[traps]\nhost = "127.0.0.1"\nport = 1162\ncommunities = ["bench"]\n',
    )
    network = load_line_config(path).network
    assert network.switches == (
        SwitchTarget("sw-bench-1", "127.0.0.1", 1161, "bench", 5.0, 2.0, 1),
        SwitchTarget("sw-spare", "sw-spare.example", 161, "public", 10.0, 1.0, 0),
    )
    assert network.traps == TrapListen("127.0.0.1", 1162, ("bench",))
    assert load_line_config(switch_site_file(tmp_path, ONE_SWITCH)).network.traps is None


@pytest.mark.parametrize(
    ("switches", "traps", "message"),
    [
        ("", "", "name switch(es) sw-bench-1 with no [[switches]] entry"),
        (ONE_SWITCH + ONE_SWITCH, "", "sw-bench-1 defined twice"),
        (ONE_SWITCH + "colour = 'blue'\n", "", "unknown key(s) colour"),
        (ONE_SWITCH + "interval = 0\n", "", "interval and timeout must be > 0"),
        (ONE_SWITCH + "interval = 'often'\n", "", "could not convert string to float"),
        ('[[switches]]\nname = "sw-bench-1"\n', "", "switches[0].host must be a non-empty string"),
        (ONE_SWITCH, "[traps]\nport = 70000\n", "traps.port 70000 is out of range"),
        (ONE_SWITCH, "[traps]\nlisten = '0.0.0.0:162'\n", "[traps] takes only"),
    ],
)
def test_site_file_refuses_bad_switch_settings(tmp_path: Path, switches: str, traps: str, message: str) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        load_line_config(switch_site_file(tmp_path, switches, traps=traps))
    assert message in str(excinfo.value)


def _v3_site(tmp_path: Path, v3: str, *, switch: str = ONE_SWITCH) -> Path:
    """A site file whose switch is read over SNMPv3; auth.key and priv.key are written beside it."""
    (tmp_path / "auth.key").write_text("auth-pass-phrase\n")  # a trailing newline is not part of the key
    (tmp_path / "priv.key").write_text("priv-pass-phrase")
    return switch_site_file(tmp_path, switch + "[switches.v3]\n" + v3.replace("DIR", str(tmp_path)))


V3_OK = (
    'user = "factory-ro"\nauth_protocol = "SHA-256"\nauth_key_file = "DIR/auth.key"\n'
    'priv_protocol = "AES"\npriv_key_file = "DIR/priv.key"\n'
)


def test_site_file_reads_a_v3_switch_with_keys_from_files(tmp_path: Path) -> None:
    path = _v3_site(tmp_path, V3_OK + 'engine_id = "0x80000009030242ac110002"\n', switch=ONE_SWITCH)
    (switch,) = load_line_config(path).network.switches
    assert switch.usm == UsmUser(
        "factory-ro", "SHA-256", "auth-pass-phrase", "AES", "priv-pass-phrase", bytes.fromhex("80000009030242ac110002")
    )
    assert "pass-phrase" not in repr(switch)


@pytest.mark.parametrize(
    ("v3", "message"),
    [
        (V3_OK.replace('"SHA-256"', '"MD5"'), "v3: auth_protocol 'MD5' is refused (MD5 is broken)"),
        (V3_OK.replace('"AES"', '"DES"'), "v3: priv_protocol 'DES' is refused (DES is withdrawn)"),
        (V3_OK.replace('"SHA-256"', '"SHA3"'), "v3: auth_protocol 'SHA3' is not one of SHA, SHA1, SHA224"),
        (V3_OK.replace("auth.key", "short.key"),
         "v3.auth_key_file: the key in DIR/short.key is 5 characters; USM needs at least 8"),
        (V3_OK.replace("priv.key", "missing.key"), "v3.priv_key_file: DIR/missing.key does not exist"),
        (V3_OK.replace("DIR/priv.key", "DIR"), "v3.priv_key_file: cannot read DIR: Is a directory"),
        ('user = "factory-ro"\nauth_protocol = "SHA"\nauth_key_file = "DIR/auth.key"\n',
         "v3.priv_protocol is required: only authPriv is accepted (noAuthNoPriv and authNoPriv are refused)"),
        (V3_OK + 'auth_key = "in-the-site-file"\n', "v3: unknown key(s) auth_key (authPriv only; keys from files)"),
        (V3_OK + 'engine_id = "not-hex"\n', "v3: engine_id 'not-hex' is not hexadecimal"),
    ],
)  # fmt: skip
def test_site_file_refuses_bad_v3_settings_naming_switch_and_field(tmp_path: Path, v3: str, message: str) -> None:
    (tmp_path / "short.key").write_text("short")
    with pytest.raises(InvalidInput) as excinfo:
        load_line_config(_v3_site(tmp_path, v3))
    text = str(excinfo.value)
    assert "switches[0] (sw-bench-1)" in text and message.replace("DIR", str(tmp_path)) in text
    assert "\n" not in text and "pass-phrase" not in text  # one line, and never a key


def test_site_file_refuses_community_with_v3_and_one_user_with_two_key_sets(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"switches\[0\] \(sw-bench-1\): takes either community \(v2c\) or v3"):
        load_line_config(_v3_site(tmp_path, V3_OK, switch=ONE_SWITCH + 'community = "bench"\n'))
    (tmp_path / "other.key").write_text("other-pass-phrase")
    second = '[[switches]]\nname = "sw-2"\nhost = "127.0.0.2"\n[switches.v3]\n' + V3_OK.replace("priv.key", "other.key")
    with pytest.raises(
        InvalidInput, match="v3 user 'factory-ro' has different protocols or keys on sw-bench-1 and sw-2"
    ):
        load_line_config(_v3_site(tmp_path, V3_OK + second.replace("DIR", str(tmp_path))))


# ---------------------------------------------------------------------------- MAC occupancy


def later_notices(controller: Controller) -> list[str]:
    """The notices after the one every agent without provisioning settings starts with."""
    first, *rest = [n.message for n in controller.stats.notices]
    assert first == NO_PROVISIONING_NOTICE
    return rest


def test_known_mac_occupies_its_slot_and_gets_a_job(ctx: AppContext, controller: Controller) -> None:
    with_mac(ctx, "NS-1", LAPTOP)
    controller.submit(seen(LAPTOP, 1))
    assert controller.wait_idle(30)
    held = slot(ctx, SLOT1)
    assert (held.attached_serial, held.attached_mac, held.error) == ("NS-1", LAPTOP, None)
    (job,) = jobs_in(ctx, SLOT1)
    # A real line without provisioning settings holds new stock where it is, with the reason.
    assert (job.device_serial, job.identification, job.pipeline, job.status, job.reason) == (
        "NS-1",
        "new_stock",
        "provision",
        "held",
        NO_PROVISIONING,
    )
    controller.submit(seen(LAPTOP, 1))  # seen again on the next poll or another VLAN: same occupant
    assert controller.wait_idle(30)
    assert slot(ctx, SLOT1).attachment_id == held.attachment_id and len(jobs_in(ctx, SLOT1)) == 1

    controller.submit(gone(LAPTOP, 1))
    assert controller.wait_idle(30)
    freed = slot(ctx, SLOT1)
    assert (freed.attachment_id, freed.attached_serial, freed.attached_mac) == (None, None, None)


def test_second_mac_on_an_occupied_port_is_a_clear_conflict(ctx: AppContext, controller: Controller) -> None:
    with_mac(ctx, "NS-1", LAPTOP)
    with_mac(ctx, "NS-2", "00:1b:63:aa:00:09")
    controller.submit(seen(LAPTOP, 1))
    controller.submit(seen("00:1b:63:aa:00:09", 1))
    assert controller.wait_idle(30)
    conflict = slot(ctx, SLOT1)
    assert conflict.attached_serial == "NS-1"
    assert conflict.error is not None
    assert "second device (MAC 00:1b:63:aa:00:09) on occupied slot bench-1/slot-1 (holds NS-1)" in conflict.error
    assert len(jobs_in(ctx, SLOT1)) == 1  # none for the intruder

    controller.submit(gone("00:1b:63:aa:00:09", 1))  # the intruder is unplugged: the occupant stays
    assert controller.wait_idle(30)
    after = slot(ctx, SLOT1)
    assert (after.attachment_id, after.attached_serial, after.error) == (conflict.attachment_id, "NS-1", None)


def test_unknown_mac_is_shown_for_a_technician_without_a_job(ctx: AppContext, controller: Controller) -> None:
    controller.submit(seen(STRANGER, 2))
    assert controller.wait_idle(30)
    unknown = slot(ctx, SLOT2)
    assert (unknown.attachment_id is not None, unknown.attached_serial, unknown.attached_mac) == (True, None, STRANGER)
    assert unknown.error is not None and unknown.error.startswith(
        f"unknown device MAC {STRANGER} (not recorded on any device)"
    )
    assert jobs_in(ctx, SLOT2) == []

    # A second laptop joins it, then leaves again: the unknown-device note comes back.
    controller.submit(seen(LAPTOP, 2))
    assert controller.wait_idle(30)
    assert f"(holds MAC {STRANGER})" in (slot(ctx, SLOT2).error or "")
    controller.submit(gone(LAPTOP, 2))
    assert controller.wait_idle(30)
    assert slot(ctx, SLOT2).error == unknown.error

    controller.submit(LinkDown("sw-bench-1", 2, "Gi1/0/2"))  # the cable is pulled
    assert controller.wait_idle(30)
    freed = slot(ctx, SLOT2)
    assert (freed.attachment_id, freed.attached_mac, freed.error) == (None, None, None)


def test_a_mac_recorded_on_two_devices_is_not_guessed(ctx: AppContext, controller: Controller) -> None:
    with_mac(ctx, "NS-1", LAPTOP)
    with_mac(ctx, "NS-2", LAPTOP)  # e.g. one USB Ethernet adapter used with two laptops
    controller.submit(seen(LAPTOP, 1))
    assert controller.wait_idle(30)
    held = slot(ctx, SLOT1)
    assert held.attached_serial is None
    assert f"unknown device MAC {LAPTOP} (recorded on 2 devices: NS-1, NS-2)" in (held.error or "")
    assert jobs_in(ctx, SLOT1) == []


def test_macs_on_unwired_ports_are_ignored(ctx: AppContext, controller: Controller) -> None:
    controller.submit(MacSeen("sw-bench-1", "3c:ec:ef:10:20:30", 49, 49, "Te1/1/1", 99))  # the uplink
    controller.submit(MacSeen("sw-bench-1", STRANGER, 7, None, None, None))  # no interface for the port
    assert controller.wait_idle(30)
    assert later_notices(controller) == []
    assert all(slot(ctx, code).attachment_id is None for code in (SLOT1, SLOT2, SLOT3))


def test_switch_failures_are_one_notice_until_it_answers_again(ctx: AppContext, controller: Controller) -> None:
    timeout = SnmpTimeout("sw-bench-1", "no answer from 127.0.0.1:161 within 2 s x 2 tries walking 1.3.6.1.2.1.2.2.1.8")
    for _ in range(3):  # the poller retries; the board hears it once
        controller.submit(SwitchFailed("sw-bench-1", timeout))
    controller.submit(SwitchFailed("sw-bench-1", MalformedReply("sw-bench-1", "expected INTEGER at 1.3.6")))
    controller.submit(SwitchRecovered("sw-bench-1"))
    controller.submit(SwitchRecovered("sw-bench-1"))  # nothing was failing any more: nothing to say
    assert controller.wait_idle(30)
    assert later_notices(controller) == [
        f"switch sw-bench-1 is not answering: {timeout.reason}; its slots are not updated until it answers (retrying)",
        "switch sw-bench-1 sent a malformed reply: expected INTEGER at 1.3.6; "
        "its slots are not updated until it answers (retrying)",
        "switch sw-bench-1 answers again",
    ]


# ---------------------------------------------------------------------------- the agent, end to end


def test_agent_polls_the_switches_and_survives_one_that_times_out(
    ctx: AppContext, sim: SnmpSim, tmp_path: Path
) -> None:
    tool = require_tool("snmptrap")
    with_mac(ctx, "NS-1", LAPTOP)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))  # bound and never read: a switch that does not answer
    # sw-bench-1 polls once at start and then only when a trap arrives (the interval is never reached).
    switches = (
        f'[[switches]]\nname = "sw-bench-1"\nhost = "127.0.0.1"\nport = {sim.port}\n'
        'community = "sw-bench-1"\ninterval = 3600\n'
        f'[[switches]]\nname = "sw-gone"\nhost = "127.0.0.1"\nport = {silent.getsockname()[1]}\n'
        "interval = 0.2\ntimeout = 0.2\nretries = 0\n"
    )
    ports = (
        '{switch = "sw-bench-1", if_name = "Gi1/0/1", slot = "bench-1/slot-1"},\n'
        '  {switch = "sw-bench-1", if_name = "Gi1/0/2", slot = "bench-1/slot-2"},\n'
        '  {switch = "sw-gone", if_name = "Gi9/0/1", slot = "bench-1/slot-3"},'
    )
    config: LineConfig = load_line_config(
        switch_site_file(tmp_path, switches, traps='[traps]\nhost = "127.0.0.1"\nport = 0\n', ports=ports)
    )
    agent = LineAgentProcess(ctx, config)  # real mode: udev and the switches
    agent.start()
    try:
        assert agent.switches is not None and agent.switches.trap_port
        controller = agent.controller
        wait_until(
            lambda: any("sw-gone is not answering" in n.message for n in controller.stats.notices), 30, message="notice"
        )
        wait_until(lambda: [j.status for j in jobs_in(ctx, SLOT1)] == ["held"], 30, message="NS-1's job")
        wait_until(lambda: slot(ctx, SLOT2).attached_mac == STRANGER, 30, message="the unknown laptop")
        assert slot(ctx, SLOT1).attached_serial == "NS-1"
        assert (slot(ctx, SLOT2).error or "").startswith(f"unknown device MAC {STRANGER}")

        # NS-1 is unplugged: the switch sends linkDown and forgets its MAC.
        sim.update(
            "sw-bench-1",
            set_={"1.3.6.1.2.1.2.2.1.8.1": ("2", "2")},
            delete=["1.3.6.1.2.1.17.4.3.1.2.0.27.99.170.0.1", "1.3.6.1.2.1.17.7.1.2.2.1.2.20.0.27.99.170.0.1"],
        )
        subprocess.run(
            [tool, "-v2c", "-c", "sw-bench-1", f"127.0.0.1:{agent.switches.trap_port}", "",
             "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.1", "i", "1"],
            check=True,
            timeout=10,
        )  # fmt: skip
        wait_until(lambda: slot(ctx, SLOT1).attachment_id is None, 30, message="slot 1 freed")
        assert slot(ctx, SLOT2).attached_mac == STRANGER  # the other port is untouched
        sw_gone = [n for n in controller.stats.notices if "sw-gone" in n.message]
        assert len(sw_gone) == 1  # retried all along, reported once
        assert not controller.lost.is_set() and all(t.is_alive() for t in controller._threads)
    finally:
        agent.stop(drain_seconds=5)
        silent.close()
    assert agent.switches._thread is not None and not agent.switches._thread.is_alive()


# ---------------------------------------------------------------------------- erase over SSH: refusals


def custody(ctx: AppContext, serial: str) -> list[str]:
    with session_scope(ctx.engine) as s:
        device = get_device(s, serial)
        rows = s.exec(select(CustodyEntry).where(CustodyEntry.device_id == device.id).order_by(col(CustodyEntry.seq)))
        return [e.event for e in rows.all()]


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: connecting is refused


@pytest.mark.parametrize("with_key", [True, False])
def test_a_laptop_that_cannot_be_reached_fails_its_job_before_the_erase_round(
    ctx: AppContext, tmp_path: Path, with_key: bool
) -> None:
    key = tmp_path / "service-env-key"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    service_env = f'[service_env]\nssh_private_key = "{key}"\n' if with_key else ""
    config = load_line_config(switch_site_file(tmp_path, ONE_SWITCH, traps=service_env))
    receive(ctx, "RET-1", media=("RET-1-D",))  # a used laptop: returned -> sanitise -> provision
    port = refused_port()
    with session_scope(ctx.engine) as s:
        register_endpoint(
            s, "RET-1", address="127.0.0.1", port=port, username="root", host_key=host_key(), actor="t", mac=LAPTOP
        )
    ctl = Controller(ctx, config)
    ctl.start()
    try:
        ctl.submit(seen(LAPTOP, 1))
        assert ctl.wait_idle(60)
    finally:
        ctl.stop(drain_seconds=5)
    (job,) = jobs_in(ctx, SLOT1)
    assert (job.pipeline, job.status) == ("sanitise-provision", "failed")
    if with_key:
        assert job.reason is not None and job.reason.startswith(
            f"service environment not reachable (ssh root@127.0.0.1:{port}, host key SHA256:"
        )
        assert job.reason.endswith("nothing was erased")
    else:
        assert (
            job.reason
            == "no SSH client key for the service environment: set [service_env] ssh_private_key in the site file"
        )
    assert custody(ctx, "RET-1") == ["receive"]  # no erase round was opened
    with session_scope(ctx.engine) as s:
        assert get_device(s, "RET-1").state == "received"


def test_site_file_service_key_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(InvalidInput, match=r"service_env\.ssh_private_key .*nope does not exist"):
        load_line_config(
            switch_site_file(tmp_path, ONE_SWITCH, traps=f'[service_env]\nssh_private_key = "{missing}"\n')
        )
