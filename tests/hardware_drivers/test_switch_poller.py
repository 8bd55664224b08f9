"""SwitchPoller against snmpsim and net-snmp's snmptrap: changes between polls become typed
events, failing switches become typed errors while polling goes on, traps arrive at once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest
from harness.requirements import require_tool
from harness.snmpsim import GARBLED_LINK, LAPTOP_AGED_OUT, LAPTOP_MAC, LAPTOP_RECABLED, SnmpSim, link

from hardware_drivers.events import (
    DriverError,
    LinkDown,
    LinkUp,
    MacGone,
    MacSeen,
    MalformedReply,
    SnmpTimeout,
    SwitchUnreachable,
)
from hardware_drivers.snmp import Interface, SwitchSnapshot
from hardware_drivers.switch_diff import SwitchTracker
from hardware_drivers.switch_poller import SwitchPoller, SwitchTarget, TrapListen, backoff_delay

FAST = 0.2  # seconds between polls in these tests


class Recorder:
    """Collects what the poller reports, from its thread, for the test's thread to wait on."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self.errors: list[tuple[str, DriverError]] = []
        self.recovered: list[str] = []
        self._cond = threading.Condition()

    def event(self, event: object) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def error(self, switch: str, error: DriverError) -> None:
        with self._cond:
            self.errors.append((switch, error))
            self._cond.notify_all()

    def recover(self, switch: str) -> None:
        with self._cond:
            self.recovered.append(switch)
            self._cond.notify_all()

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():  # re-checked on every report, and now and then for the rest
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for {what}; events={self.events} errors={self.errors}")
                self._cond.wait(0.05)

    def of(self, *types: type) -> list[object]:
        with self._cond:
            return [e for e in self.events if isinstance(e, types)]


def target(sim: SnmpSim, name: str, **kwargs: float) -> SwitchTarget:
    return SwitchTarget(name, sim.host, sim.port, name, **{"interval": FAST, "timeout": 2.0, "retries": 1, **kwargs})


def poller(rec: Recorder, *targets: SwitchTarget, **kwargs: object) -> SwitchPoller:
    return SwitchPoller(targets, rec.event, rec.error, on_recovered=rec.recover, **kwargs)  # type: ignore[arg-type]


def test_first_poll_reports_every_mac_then_only_changes(sim: SnmpSim) -> None:
    rec = Recorder()
    p = poller(rec, target(sim, "sw-bench-1"))
    p.start()
    try:
        rec.wait(lambda: len(rec.events) >= 4, "the first poll's MACs")
        first = {(e.mac, e.if_name) for e in rec.of(MacSeen)}  # type: ignore[attr-defined]
        assert first == {
            (LAPTOP_MAC, "Gi1/0/1"),
            ("00:1b:63:aa:00:02", "Gi1/0/2"),
            ("3c:ec:ef:10:20:30", "Te1/1/1"),
            ("3c:ec:ef:10:20:31", "Te1/1/1"),
        }
        assert rec.of(LinkUp, LinkDown) == []  # the first poll only learns link states
        polled = p.snapshot("sw-bench-1")
        assert polled is not None
        rec.wait(lambda: p.snapshot("sw-bench-1") is not polled, "a second poll")
        assert len(rec.events) == 4  # nothing changed: nothing reported again

        # The laptop is recabled from Gi1/0/1 to Gi1/0/3 between two polls.
        sim.update("sw-bench-1", set_=LAPTOP_RECABLED)
        rec.wait(lambda: len(rec.events) >= 8, "the move")
        moved = rec.events[4:]
        assert set(moved) == {
            LinkDown("sw-bench-1", 1, "Gi1/0/1"),
            MacGone("sw-bench-1", LAPTOP_MAC, 1, 1, "Gi1/0/1"),
            LinkUp("sw-bench-1", 3, "Gi1/0/3"),
            MacSeen("sw-bench-1", LAPTOP_MAC, 3, 3, "Gi1/0/3", 20),
        }
        # Departures are reported before arrivals, so the old port is free first.
        assert moved.index(MacGone("sw-bench-1", LAPTOP_MAC, 1, 1, "Gi1/0/1")) < moved.index(
            MacSeen("sw-bench-1", LAPTOP_MAC, 3, 3, "Gi1/0/3", 20)
        )

        # The MAC ages out altogether.
        sim.update("sw-bench-1", delete=LAPTOP_AGED_OUT)
        rec.wait(lambda: len(rec.events) >= 9, "the MAC leaving")
        assert rec.events[8] == MacGone("sw-bench-1", LAPTOP_MAC, 3, 3, "Gi1/0/3")
    finally:
        p.stop()
    assert rec.errors == []


def test_failing_switches_are_typed_errors_and_polling_goes_on(sim: SnmpSim) -> None:
    rec = Recorder()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound and never read: nothing answers there
        p = poller(
            rec,
            target(sim, "sw-bench-2"),
            SwitchTarget("sw-gone", "127.0.0.1", silent.getsockname()[1], interval=FAST, timeout=0.2, retries=0),
            SwitchTarget("sw-typo", "sw bench 3", interval=FAST, timeout=0.2, retries=0),
            target(sim, "sw-broken"),
            max_backoff=0.4,
        )
        p.start()
        try:

            def failed(name: str, times: int) -> Callable[[], bool]:
                return lambda: sum(1 for n, _ in rec.errors if n == name) >= times

            for name in ("sw-gone", "sw-typo", "sw-broken"):
                rec.wait(failed(name, 2), f"{name} failing twice (polling goes on)")
            rec.wait(lambda: bool(rec.of(MacSeen)), "the healthy switch's MACs")
        finally:
            p.stop()
    kinds = {name: {type(e) for n, e in rec.errors if n == name} for name in ("sw-gone", "sw-typo", "sw-broken")}
    assert kinds == {"sw-gone": {SnmpTimeout}, "sw-typo": {SwitchUnreachable}, "sw-broken": {MalformedReply}}
    assert all(e.switch == name for name, e in rec.errors)
    assert {e.switch for e in rec.of(MacSeen)} == {"sw-bench-2"}  # type: ignore[attr-defined]
    assert rec.recovered == []


def test_a_switch_that_answers_again_is_reported_recovered(sim: SnmpSim) -> None:
    sim.update("sw-bench-1", set_=GARBLED_LINK)
    rec = Recorder()
    p = poller(rec, target(sim, "sw-bench-1"), max_backoff=0.4)
    p.start()
    try:
        rec.wait(lambda: len(rec.errors) >= 2, "two failed polls")
        assert rec.events == []
        sim.update("sw-bench-1", set_=link(1, up=True))
        rec.wait(lambda: rec.recovered == ["sw-bench-1"], "recovery")
        rec.wait(lambda: len(rec.of(MacSeen)) == 4, "the MACs once it answers")
    finally:
        p.stop()
    assert {type(e) for _, e in rec.errors} == {MalformedReply}


def test_a_callback_that_raises_does_not_stop_polling(sim: SnmpSim) -> None:
    seen: list[object] = []
    done = threading.Event()

    def flaky(event: object) -> None:
        seen.append(event)
        if len(seen) == 1:
            raise RuntimeError("consumer bug")
        if len(seen) == 4:
            done.set()

    p = SwitchPoller([target(sim, "sw-bench-1")], flaky, lambda _n, _e: None)
    p.start()
    try:
        assert done.wait(20), seen
    finally:
        p.stop()


def _send_trap(port: int, *varbinds: str) -> None:
    import subprocess

    tool = require_tool("snmptrap")
    subprocess.run([tool, "-v2c", "-c", "sw-bench-1", f"127.0.0.1:{port}", "", *varbinds], check=True, timeout=10)


def test_link_trap_is_reported_at_once_and_makes_the_switch_poll(sim: SnmpSim) -> None:
    rec = Recorder()
    # An interval no test waits for: anything after the first poll comes from the trap.
    p = poller(rec, target(sim, "sw-bench-1", interval=3600), traps=TrapListen("127.0.0.1", 0))
    p.start()
    try:
        assert p.trap_port
        rec.wait(lambda: len(rec.events) == 4, "the first poll")
        sim.update("sw-bench-1", set_=link(1, up=False), delete=LAPTOP_AGED_OUT)
        _send_trap(p.trap_port, "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.1", "i", "1")
        rec.wait(lambda: bool(rec.of(MacGone)), "the poll the trap triggered")
        snapshot = p.snapshot("sw-bench-1")
        assert snapshot is not None and not snapshot.interface("Gi1/0/1").is_up  # type: ignore[union-attr]
        # A second linkDown trap for the same port adds nothing.
        _send_trap(p.trap_port, "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.1", "i", "1")
        sim.update("sw-bench-1", set_=link(3, up=True))
        _send_trap(p.trap_port, "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.2.1.2.2.1.1.3", "i", "3")
        rec.wait(lambda: bool(rec.of(LinkUp)), "the linkUp trap")
    finally:
        p.stop()
    # The trap named the port from the last poll; the poll that saw it down did not repeat it.
    assert rec.events[4:] == [
        LinkDown("sw-bench-1", 1, "Gi1/0/1"),
        MacGone("sw-bench-1", LAPTOP_MAC, 1, 1, "Gi1/0/1"),
        LinkUp("sw-bench-1", 3, "Gi1/0/3"),
    ]


def test_stop_releases_the_trap_port_and_a_busy_port_fails_start() -> None:
    rec = Recorder()
    p = poller(rec, traps=TrapListen("127.0.0.1", 0))
    p.start()
    port = p.trap_port
    assert port
    clash = poller(rec, traps=TrapListen("127.0.0.1", port))
    with pytest.raises(OSError):
        clash.start()
    p.stop()
    p.stop()  # idempotent
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))  # free again


def test_stop_is_prompt_even_while_a_switch_times_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        rec = Recorder()
        p = poller(rec, SwitchTarget("sw-gone", "127.0.0.1", silent.getsockname()[1], timeout=30, retries=3))
        p.start()
        p.stop(timeout=10)
        assert p._thread is not None and not p._thread.is_alive()
    assert rec.errors == []  # stopped mid-request: cancelled, not reported as a failure


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(2.0, n, 30.0) for n in range(6)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff_delay(120.0, 3, 30.0) == 120.0  # never faster than the configured interval


@pytest.mark.parametrize(
    "kwargs",
    [{"interval": 0}, {"timeout": -1}, {"retries": -1}, {"port": 0}, {"host": ""}],
)
def test_bad_switch_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SwitchTarget(**{"name": "sw", "host": "127.0.0.1", **kwargs})  # type: ignore[arg-type]


def test_a_poll_under_way_when_a_trap_arrives_does_not_overrule_it() -> None:
    def snap(up: bool) -> SwitchSnapshot:
        return SwitchSnapshot("sw", {3: Interface(3, "Gi1/0/3", 1 if up else 2)}, (), ())

    tracker = SwitchTracker("sw")
    assert tracker.update(snap(False)) == []
    assert tracker.link_trap(LinkUp("sw", 3, "Gi1/0/3"))
    assert not tracker.link_trap(LinkUp("sw", 3, "Gi1/0/3"))  # a repeated trap is no news
    assert tracker.update(snap(False), trapped={3}) == []  # read before the trap: stale, ignored
    assert tracker.update(snap(True)) == []  # the poll the trap triggered agrees
    assert tracker.update(snap(False)) == [LinkDown("sw", 3, "Gi1/0/3")]
