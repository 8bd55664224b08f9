"""A bench network inside network namespaces the test makes itself.

``bench_network()`` makes a namespace holding a bridge with the controller's address; helpers add
a client namespace joined to it by a veth pair (a laptop's NIC, for DHCP checks) or a tap device
on the bridge (a QEMU laptop's NIC), and run commands or a controller process inside.

Addresses are in 198.18.0.0/24 (RFC 2544's benchmarking range), only ever inside these
namespaces: nothing here has a route out, so no packet can reach a real network.
Everything is removed on exit, processes by their own PID.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from harness.processes import stop_process

SERVER_ADDRESS = "198.18.0.1"
NETMASK = "255.255.255.0"
RANGE = ("198.18.0.100", "198.18.0.150")
_counter = itertools.count(1)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@dataclass
class BenchNamespace:
    name: str
    bridge: str = "br0"
    address: str = SERVER_ADDRESS
    peers: list[str] = field(default_factory=list)  # client namespaces to delete
    procs: list[subprocess.Popen] = field(default_factory=list)  # type: ignore[type-arg]

    def argv(self, *cmd: str, ns: str | None = None) -> list[str]:
        return ["ip", "netns", "exec", ns or self.name, *cmd]

    def run(self, *cmd: str, ns: str | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*cmd, ns=ns), capture_output=True, text=True, timeout=timeout, check=False)

    def spawn(self, cmd: Sequence[str], *, log: str, env: dict[str, str] | None = None) -> subprocess.Popen:  # type: ignore[type-arg]
        """Start ``cmd`` inside the namespace (stdout and stderr to ``log``); stopped on exit."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                self.argv(*cmd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def add_client(self, mac: str) -> str:
        """A namespace with one NIC (``eth0``, this MAC) on the bench bridge; returns its name."""
        n = next(_counter)
        client = f"{self.name}c{n}"
        ip("netns", "add", client)
        self.peers.append(client)
        ip("link", "add", f"nbv{os.getpid() % 10000}{n}", "type", "veth", "peer", "name", "eth0", "netns", client)
        host_end = f"nbv{os.getpid() % 10000}{n}"
        ip("link", "set", host_end, "netns", self.name)
        ip("-n", self.name, "link", "set", host_end, "master", self.bridge, "up")
        ip("-n", client, "link", "set", "eth0", "address", mac, "up")
        ip("-n", client, "link", "set", "lo", "up")
        return client

    def add_tap(self, name: str) -> str:
        """A tap device on the bridge for a QEMU NIC (QEMU must run inside this namespace)."""
        ip("-n", self.name, "tuntap", "add", name, "mode", "tap")
        ip("-n", self.name, "link", "set", name, "master", self.bridge, "up")
        return name


@contextlib.contextmanager
def bench_network() -> Iterator[BenchNamespace]:
    """A fresh namespace with bridge ``br0`` at 198.18.0.1/24; torn down with everything in it."""
    name = f"dfnb{os.getpid() % 100000}n{next(_counter)}"
    ip("netns", "add", name)
    bench = BenchNamespace(name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "add", bench.bridge, "type", "bridge")
        ip("-n", name, "addr", "add", f"{SERVER_ADDRESS}/24", "dev", bench.bridge)
        ip("-n", name, "link", "set", bench.bridge, "up")
        yield bench
    finally:
        for proc in reversed(bench.procs):
            stop_process(proc)
        _kill_what_is_left(name)
        for peer in bench.peers:
            subprocess.run(["ip", "netns", "delete", peer], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


def _kill_what_is_left(name: str) -> None:
    """SIGKILL every process still in the namespace. An agent stopped with SIGKILL (it did not finish
    its shutdown within stop_process's grace) leaves the dnsmasq it started in a session of its own;
    on a site systemd kills the unit's whole cgroup, here nothing else would."""
    listed = subprocess.run(["ip", "netns", "pids", name], check=False, capture_output=True, text=True)
    for pid in (int(p) for p in listed.stdout.split()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
