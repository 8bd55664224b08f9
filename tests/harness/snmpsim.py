"""snmpsim as a fleet of simulated switches on a loopback UDP port.

Each ``.snmprec`` file is one switch; its file name (without extension) is the community
that selects it. :meth:`SnmpSim.update` rewrites a file while the simulator runs, so a test can
take a port down or move a MAC between polls.

snmpsim refuses to run as root unless it drops privileges (``--process-user/--process-group``).
On this project's machines the interpreter lives under /root (mode 0700), so after dropping to
``nobody`` it cannot import the rest of the standard library and fails to build its index.
As root we therefore set ``SNMPSIM_ALLOW_ROOT=true`` (snmpsim's own switch) and keep it on
127.0.0.1; as any other user it runs as that user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from harness.processes import stop_process

SYS_NAME_0 = (1, 3, 6, 1, 2, 1, 1, 5, 0)
Record = tuple[str, str]  # (type tag, value) as written in .snmprec: "2"/"4"/"4x"/...


def responder_path() -> str | None:
    """snmpsim's command responder: beside this interpreter (the venv) or on PATH."""
    local = Path(sys.executable).parent / "snmpsim-command-responder"
    return str(local) if local.exists() else shutil.which("snmpsim-command-responder")


def read_snmprec(path: Path) -> dict[str, Record]:
    records: dict[str, Record] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            oid, tag, value = line.split("|", 2)
            records[oid] = (tag, value)
    return records


def write_snmprec(path: Path, records: Mapping[str, Record]) -> None:
    """Write sorted by numeric OID (snmpsim's index requires it) and atomically."""
    ordered = sorted(records.items(), key=lambda kv: tuple(int(x) for x in kv[0].split(".")))
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{oid}|{tag}|{value}\n" for oid, (tag, value) in ordered))
    old_mtime = int(path.stat().st_mtime) if path.exists() else 0
    os.replace(tmp, path)
    # snmpsim notices edits by whole-second mtime, and rebuilds its index only if the text
    # file is not older than the index: step the mtime past both, even within one second.
    bumped = max(int(time.time()), old_mtime) + 1
    os.utime(path, (bumped, bumped))


@dataclass
class SnmpSim:
    host: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def records(self, community: str) -> dict[str, Record]:
        return read_snmprec(self.data_dir / f"{community}.snmprec")

    def update(self, community: str, set_: Mapping[str, Record] | None = None, delete: Iterable[str] = ()) -> None:
        """Change one simulated switch's data; the next request sees it."""
        records = self.records(community)
        for oid in delete:
            records.pop(oid)
        records.update(set_ or {})
        write_snmprec(self.data_dir / f"{community}.snmprec", records)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _get_request(community: str) -> bytes:
    proto = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = proto.GetRequestPDU()
    proto.apiPDU.set_defaults(pdu)
    proto.apiPDU.set_varbinds(pdu, [(SYS_NAME_0, proto.Null(""))])
    message = proto.Message()
    proto.apiMessage.set_defaults(message)
    proto.apiMessage.set_community(message, community)
    proto.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


def _answers(host: str, port: int, community: str) -> bool:
    """One raw SNMP GET, independent of the code under test."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        s.sendto(_get_request(community), (host, port))
        try:
            reply, _ = s.recvfrom(65535)
        except (TimeoutError, ConnectionRefusedError):
            return False
    message, _ = decoder.decode(reply, asn1Spec=api.PROTOCOL_MODULES[api.SNMP_VERSION_2C].Message())
    return bool(message)


@contextmanager
def snmpsim(
    snmprec_files: Iterable[Path], workdir: Path, host: str = "127.0.0.1", startup_timeout: float = 20.0
) -> Iterator[SnmpSim]:
    """Start snmpsim serving copies of ``snmprec_files``; always stops it on exit."""
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    communities = []
    for src in snmprec_files:
        write_snmprec(data_dir / src.name, read_snmprec(src))
        communities.append(src.stem)
    if not communities:
        raise ValueError("snmpsim needs at least one .snmprec file")
    with _responder(workdir, host, communities, [], startup_timeout) as sim:
        yield sim


@dataclass(frozen=True)
class V3Agent:
    """An SNMPv3 agent's engine ID and its one USM user (snmpsim's protocol names: SHA256, AES...)."""

    engine_id: str  # hex
    user: str
    auth_protocol: str
    auth_key: str
    priv_protocol: str
    priv_key: str

    def arguments(self) -> list[str]:
        # --v3-engine-id opens snmpsim's per-engine options: it must come before the data dir and endpoint.
        return [
            f"--v3-engine-id={self.engine_id}",
            f"--v3-user={self.user}",
            f"--v3-auth-proto={self.auth_protocol}",
            f"--v3-auth-key={self.auth_key}",
            f"--v3-priv-proto={self.priv_protocol}",
            f"--v3-priv-key={self.priv_key}",
        ]


@contextmanager
def snmpsim_v3(
    agent: V3Agent, default: Path, contexts: Mapping[str, Path], workdir: Path, host: str = "127.0.0.1"
) -> Iterator[SnmpSim]:
    """One SNMPv3 switch: ``default`` answers the default context (""), ``contexts`` name the others
    (Cisco's ``vlan-<id>``). snmpsim picks the data file for a v3 request by context under a directory
    named ``self`` (its own engine ID): ``self.snmprec`` for "", ``self/<context>.snmprec`` for the
    others. It still answers v2c, which only the readiness check below uses: by the contexts' names as
    communities, and ``ready`` (a one-OID file), since the default context's community is empty and
    pysnmp does not take an empty community."""
    data_dir = workdir / "data"
    (data_dir / "self").mkdir(parents=True)
    write_snmprec(data_dir / "self.snmprec", read_snmprec(default))
    write_snmprec(data_dir / "ready.snmprec", {".".join(map(str, SYS_NAME_0)): ("4", "ready")})
    for context, src in contexts.items():
        write_snmprec(data_dir / "self" / f"{context}.snmprec", read_snmprec(src))
    with _responder(workdir, host, ["ready", *contexts], agent.arguments()) as sim:
        yield sim


@contextmanager
def _responder(
    workdir: Path, host: str, communities: list[str], engine_args: list[str], startup_timeout: float = 20.0
) -> Iterator[SnmpSim]:
    """Run snmpsim on ``workdir/data`` until every community answers; always stops it on exit."""
    responder = responder_path()
    if responder is None:
        raise RuntimeError("snmpsim-command-responder not found (pip install snmpsim pysmi)")
    data_dir, cache_dir = workdir / "data", workdir / "cache"
    cache_dir.mkdir()
    env = dict(os.environ)
    if os.geteuid() == 0:
        env["SNMPSIM_ALLOW_ROOT"] = "true"
    port = _free_udp_port(host)
    log_path = workdir / "snmpsim.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                responder,
                *engine_args,
                f"--data-dir={data_dir}",
                f"--cache-dir={cache_dir}",
                f"--agent-udpv4-endpoint={host}:{port}",
                "--logging-method=stderr",
                "--log-level=error",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    sim = SnmpSim(host, port, data_dir, process, log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _answers(host, port, communities[0]):
            if process.poll() is not None:
                raise RuntimeError(f"snmpsim exited with {process.returncode}:\n{sim.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"snmpsim did not answer within {startup_timeout} s:\n{sim.log_tail()}")
        # snmpsim indexes a data file on its first request: ask each once now, so no test's first
        # poll of a switch (or of a Cisco per-VLAN community) waits out its timeout on a busy machine.
        for community in communities[1:]:
            while not _answers(host, port, community):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"snmpsim did not answer for {community} within {startup_timeout} s")
        yield sim
    finally:
        stop_process(process)


# The project's own switch data, shared by every SNMP test.
# The OIDs the switch fixtures answer, and the laptop MAC they know (indexed as six decimals in the FDB tables).
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
DOT1D_TP_FDB_PORT = "1.3.6.1.2.1.17.4.3.1.2"
DOT1Q_TP_FDB_PORT = "1.3.6.1.2.1.17.7.1.2.2.1.2"
LAPTOP_MAC = "00:1b:63:aa:00:01"
LAPTOP_INDEX = "0.27.99.170.0.1"

SWITCH_FILES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "snmp").glob("*.snmprec"))


def link(if_index: int, *, up: bool) -> dict[str, Record]:
    """The change that sets one port's ifOperStatus, up(1) or down(2): ``SnmpSim.update(..., set_=...)``."""
    return {f"{IF_OPER_STATUS}.{if_index}": ("2", "1" if up else "2")}


# Gi1/0/1's ifOperStatus as an OCTET STRING where an INTEGER belongs: the switch's reply is malformed.
GARBLED_LINK = {f"{IF_OPER_STATUS}.1": ("4", "up")}
# The laptop recabled on sw-bench-1 from Gi1/0/1 to Gi1/0/3: the old port drops, the new one comes up
# and both forwarding tables learn the MAC on port 3 (``SnmpSim.update(..., set_=LAPTOP_RECABLED)``).
LAPTOP_RECABLED = {
    **link(1, up=False),
    **link(3, up=True),
    f"{DOT1D_TP_FDB_PORT}.{LAPTOP_INDEX}": ("2", "3"),
    f"{DOT1Q_TP_FDB_PORT}.20.{LAPTOP_INDEX}": ("2", "3"),
}
# The laptop's MAC aged out of both of sw-bench-1's forwarding tables (``SnmpSim.update(..., delete=...)``).
LAPTOP_AGED_OUT = (f"{DOT1D_TP_FDB_PORT}.{LAPTOP_INDEX}", f"{DOT1Q_TP_FDB_PORT}.20.{LAPTOP_INDEX}")


def switch_simulator(workdir: Path) -> Iterator[SnmpSim]:
    """One snmpsim serving SWITCH_FILES, for a module-scoped fixture (skips or fails as ``require`` says)."""
    import importlib.util

    from harness.requirements import require

    require(responder_path() is not None, "needs snmpsim (pip install snmpsim pysmi)")
    require(importlib.util.find_spec("pysmi") is not None, "needs pysmi, which snmpsim does not declare")
    with snmpsim(SWITCH_FILES, workdir) as server:
        yield server


def reset_switches(server: SnmpSim) -> SnmpSim:
    """Put every switch back to its fixture file (a test may have changed the agent's data)."""
    for src in SWITCH_FILES:
        if read_snmprec(src) != server.records(src.stem):
            write_snmprec(server.data_dir / src.name, read_snmprec(src))
    return server
