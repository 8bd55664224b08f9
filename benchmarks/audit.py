"""Audit search at scale: certificate search by serial through the real API, on PostgreSQL.

    .venv/bin/python benchmarks/audit.py --certificates 1000000 --entries 10000000
    .venv/bin/python benchmarks/audit.py --reuse --duration 20      # measure again, no reload

1. Load: a dedicated database (``df_bench_audit``) migrated to head, then devices, media,
   certificates and custody entries bulk-loaded with COPY. Every entry carries a real chained
   hash (``factory.kernel.ledger.hashing``: the same function ``ledger verify`` uses), every certificate
   is a real signed envelope (~3.5 KB, RFC 8785 canonical bytes, Ed25519) naming the real hash of
   the custody entry that opened its erase round. Constraints and secondary indexes are dropped
   for the load and rebuilt after it (what a restore does); a sample of certificates is then
   verified with the project's own verifier and the ledger head is re-hashed.
   Hashing is sequential by nature (each entry names its predecessor's hash): one process hashes
   the chain while the server parses COPY on the other core; signing runs in the same loop.
2. Measure: ``uvicorn`` (1 worker, 127.0.0.1) serving ``api.app:create_app`` against that
   database, and the same for a bare FastAPI app with one ``/bare`` endpoint returning a constant
   (sync, like most of the API's endpoints; ``/bare-async`` too), and for the project's bearer
   auth and role check in front of a constant (``/auth-only``), which splits the gap between the
   two. The search route itself is async and serves one device's certificates on the event
   loop, with verified tokens remembered for ``FACTORY_TOKEN_CACHE_SECONDS`` (docs/audit.md).
   ``wrk`` drives ``GET /api/certificates?device_serial=<random loaded serial>`` with an auditor
   token (a fresh random serial per request), and ``GET /bare``. Two runs each: 1 connection
   (service latency: p50/p99) and ``--connections`` connections (throughput at saturation).
   Targets: p99 <= 10 ms for search by serial; req/s >= 0.5x the bare endpoint.
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import rfc8785
from fastapi import FastAPI

from api.deps import AuditorUser
from api.errors import install_error_handlers
from factory.identity.service import add_user
from factory.kernel.clock import format_utc
from factory.kernel.config import Settings
from factory.kernel.context import AppContext
from factory.kernel.db.engine import make_engine, session_scope
from factory.kernel.db.migrate import upgrade
from factory.kernel.ledger.hashing import evidence_text, hash_document
from factory.kernel.models.custody_entry import GENESIS_HASH
from factory.kernel.site_keys import init_keys, load_private_key
from imaging import signing
from imaging.certificate import (
    CertificateContext,
    DataBackedUp,
    Destination,
    DeviceInfo,
    MediaSource,
    Person,
    build_certificate,
    dumps_envelope,
    verify_certificate,
)
from imaging.result import CommandRecord, EraseResult, Level, MediaIdentity, Technique, VerificationResult, VerifyMode

PG_ADMIN = os.environ.get("FACTORY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "df_bench_audit"
BLOCK = 1000  # devices whose lifecycles interleave in the chain
START = datetime(2024, 1, 1, tzinfo=UTC)
STEP_SECONDS = 6  # between consecutive ledger entries: 10M entries span about two years
SIZE = 256 * 10**9  # bytes of each loaded medium
LOADED_TABLES = ("device", "storage_medium", "certificate", "custody_entry")

# (event, from_state, to_state) of each device's life, in order.
SCRIPT: tuple[tuple[str, str | None, str], ...] = (
    ("receive", None, "received"),
    ("start_sanitise", "received", "sanitising"),
    ("sanitised", "sanitising", "sanitised"),
    ("start_provision", "sanitised", "provisioning"),
    ("provisioned", "provisioning", "ready"),
    ("allocate", "ready", "allocated"),
    ("issue", "allocated", "issued"),
    ("return", "issued", "returned"),
    ("start_sanitise", "returned", "sanitising"),
    ("sanitised", "sanitising", "sanitised"),
)

# ------------------------------------------------------------------ bare app (the reference)

bare_app = FastAPI()


@bare_app.get("/bare")
def bare() -> dict[str, str]:
    return {"status": "ok"}


@bare_app.get("/bare-async")
async def bare_async() -> dict[str, str]:
    return {"status": "ok"}


def auth_only_app() -> FastAPI:
    """The project's bearer-token auth and role check in front of a constant: what a request
    costs before the search itself runs (splits the gap between bare and search)."""
    app = FastAPI()
    app.state.context = AppContext.from_env()
    install_error_handlers(app)

    @app.get("/auth-only")
    def auth_only(_user: AuditorUser) -> dict[str, str]:
        return {"status": "ok"}

    return app


# ------------------------------------------------------------------ database


def _url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name


def _dsn(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def fresh_database() -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    upgrade(_url(DB_NAME))
    return _url(DB_NAME)


@dataclass(frozen=True)
class SavedDdl:
    drops: list[str]
    creates: list[str]


def strip_for_load(conn: psycopg.Connection) -> SavedDdl:
    """Drop foreign keys, unique constraints and secondary indexes of the loaded tables; return
    the statements that recreate them exactly (primary keys stay: COPY fills them in order)."""
    drops, creates = [], []
    for table in LOADED_TABLES:
        for name, definition in conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY contype DESC",
            (table,),
        ):
            drops.append(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            creates.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for (definition,) in conn.execute(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            (table,),
        ):
            name = definition.split(" INDEX ", 1)[1].split(" ON ", 1)[0]
            drops.append(f"DROP INDEX {name}")
            creates.insert(0, definition)  # indexes before foreign keys
    for stmt in drops:
        conn.execute(stmt)
    return SavedDdl(drops, creates)


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


# ------------------------------------------------------------------ certificates from a template


class CertificateFactory:
    """Signed envelopes made fast: the RFC 8785 bytes of one real certificate, built by the
    project's builder with marker values, are cut at the markers; each certificate fills them in
    (the markers are plain ASCII values, so member order and escaping are unchanged), then is
    hashed and signed for real. Envelopes are laid out exactly as ``dumps_envelope`` lays them out."""

    MARKERS = {
        "certificate_id": "00000000-0000-4000-8000-00000000c1d0",
        "issued_at": "2000-01-01T00:00:01Z",
        "device_serial": "MARKER-DEVICE-SERIAL",
        "asset_tag": "MARKER-ASSET-TAG",
        "medium_serial": "MARKER-MEDIUM-SERIAL",
        "entry_hash": "e" * 64,
        "sequence": "987654321012345",
        "digest": "d" * 64,
        "signature": "S" * 88,
    }

    def __init__(self, private_key: Any, site: str) -> None:
        self.key = private_key
        self.fingerprint = signing.key_fingerprint(private_key.public_key())
        m = self.MARKERS
        doc = build_certificate(
            _erase_result(m["medium_serial"]),
            _context(site, m["device_serial"], m["asset_tag"], m["entry_hash"], int(m["sequence"])),
            certificate_id=uuid.UUID(m["certificate_id"]),
            issued_at=datetime.fromisoformat(m["issued_at"]),
        )
        fields = ("certificate_id", "issued_at", "device_serial", "asset_tag", "medium_serial", "entry_hash")
        self.canonical = _Template(
            rfc8785.dumps(doc).decode("utf-8"), {m[f]: f for f in fields} | {m["sequence"]: "sequence"}
        )
        envelope = {
            "format": "device-factory-certificate",
            "schema_version": 1,
            "certificate": doc,
            "signature": {
                "algorithm": "Ed25519",
                "key_fingerprint": self.fingerprint,
                "digest_sha256": m["digest"],
                "value": m["signature"],
            },
        }
        self.envelope = _Template(
            dumps_envelope(envelope).decode("utf-8"),
            {m[f]: f for f in fields} | {m["sequence"]: "sequence", m["digest"]: "digest", m["signature"]: "signature"},
        )

    def make(self, values: dict[str, str]) -> tuple[str, str]:
        """(envelope text, digest) for one certificate."""
        payload = self.canonical.fill(values).encode("utf-8")
        digest = hashlib.sha256(payload).hexdigest()
        sig = base64.b64encode(self.key.sign(payload)).decode("ascii")
        return self.envelope.fill({**values, "digest": digest, "signature": sig}), digest


class _Template:
    def __init__(self, text: str, markers: dict[str, str]) -> None:
        self.parts: list[str] = []
        self.names: list[str] = []
        rest = text
        while True:
            hits = [(rest.find(marker), marker) for marker in markers if marker in rest]
            if not hits:
                break
            at, marker = min(hits)
            self.parts.append(rest[:at])
            self.names.append(markers[marker])
            rest = rest[at + len(marker) :]
        self.parts.append(rest)
        missing = set(markers.values()) - set(self.names)
        if missing:
            raise RuntimeError(f"template lost markers {missing}")

    def fill(self, values: dict[str, str]) -> str:
        out = [self.parts[0]]
        for name, part in zip(self.names, self.parts[1:], strict=True):
            out.append(values[name])
            out.append(part)
        return "".join(out)


def _erase_result(medium_serial: str) -> EraseResult:
    size = 256 * 10**9
    out = "\n".join(
        ["/dev/sda:", "", "ATA device, with non-removable media", "\tModel Number:       Samsung SSD 870 EVO 250GB"]
        + [f"\tSecurity: supported enhanced erase, {i * 2}min for SECURITY ERASE UNIT" for i in range(1, 12)]
    )
    return EraseResult(
        ok=True,
        media=MediaIdentity(
            path="/dev/sda", target_kind="block", media_type="sata-ssd", size_bytes=size,
            logical_sector_size=512, physical_sector_size=4096, model="Samsung SSD 870 EVO 250GB",
            serial=medium_serial, manufacturer="Samsung", transport="sata", rotational=False,
        ),
        level_requested=Level.PURGE, level_achieved=Level.PURGE, method="ata-sanitize-crypto",
        technique=Technique.CRYPTO_ERASE, pattern=None, pattern_seed_hex=None, passes=1, bytes_written=0,
        first_lba=0, last_lba=size // 512 - 1,
        started_at="2024-01-01T10:00:00Z", ended_at="2024-01-01T10:00:09Z",
        verification=VerificationResult(
            mode=VerifyMode.SAMPLE, expected_pattern="vendor-zeros", seed_hex="5eed" * 8, bytes_read=size // 10,
            coverage=0.1043081283569336, subsections=1000, locations=2000, mismatches=0, passed=True,
        ),
        commands=(
            CommandRecord(argv=("hdparm", "-I", "/dev/sda"), returncode=0, stdout=out, stderr="",
                          started_at="2024-01-01T09:59:58Z", ended_at="2024-01-01T09:59:59Z"),
            CommandRecord(argv=("hdparm", "--yes-i-know-what-i-am-doing", "--sanitize-crypto-scramble", "/dev/sda"),
                          returncode=0, stdout="/dev/sda:\n", stderr="", started_at="2024-01-01T10:00:00Z",
                          ended_at="2024-01-01T10:00:09Z"),
        ),
        tool_version="1.0.0", tool_code_sha256="ab" * 32,
    )  # fmt: skip


def _context(site: str, serial: str, asset_tag: str, entry_hash: str, seq: int) -> CertificateContext:
    when = datetime(2024, 1, 1, 10, 0, 10, tzinfo=UTC)
    person = Person(name="Bench Tech", title="Technician", organisation=site, location=site,
                    contact="tech@example.invalid", date=when)  # fmt: skip
    return CertificateContext(
        organisation=site, site=site,
        device=DeviceInfo(manufacturer="Dell", model="Latitude 5440", serial_number=serial, kind="laptop",
                          asset_tag=asset_tag),
        media_source=MediaSource.USER, destination=Destination.INTERNAL_REUSE, data_backed_up=DataBackedUp.NO,
        sanitised_by=person, validated_by=replace(person, name="Bench Validator", title="Validator"),
        custody_previous_entry_sha256=entry_hash, custody_sequence=seq,
    )  # fmt: skip


# ------------------------------------------------------------------ the load


def load(url: str, settings: Settings, devices: int, per_device: int) -> dict[str, float]:
    factory = CertificateFactory(load_private_key(settings), settings.site_name)
    script = SCRIPT[:per_device]
    cert_step = max(i for i, step in enumerate(script) if step[0] == "start_sanitise")
    timings: dict[str, float] = {}
    dsn = _dsn(DB_NAME)
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as admin:
        ddl = strip_for_load(admin)
    conns = {t: psycopg.connect(dsn) for t in LOADED_TABLES}
    try:
        with (
            conns["device"]
            .cursor()
            .copy(
                "COPY device (id, serial, asset_tag, make, model, kind, state, custodian, location, "
                "user_data_since_seq, erase_round_seq, created_at, updated_at) FROM STDIN"
            ) as dev_copy,
            conns["storage_medium"]
            .cursor()
            .copy(
                "COPY storage_medium (id, device_id, serial, model, media_type, capacity_bytes) FROM STDIN"
            ) as med_copy,
            conns["certificate"]
            .cursor()
            .copy(
                "COPY certificate (id, device_id, medium_id, device_serial, medium_serial, asset_tag, "
                "erase_round_seq, level, method, destination, digest_sha256, key_fingerprint, issued_at, "
                "envelope) FROM STDIN"
            ) as cert_copy,
            conns["custody_entry"]
            .cursor()
            .copy(
                "COPY custody_entry (seq, device_id, device_serial, event, from_state, to_state, actor, "
                "from_custodian, to_custodian, location, occurred_at, evidence, prev_hash, entry_hash) FROM STDIN"
            ) as entry_copy,
        ):
            _generate(factory, devices, script, cert_step, dev_copy, med_copy, cert_copy, entry_copy)
        for conn in conns.values():
            conn.commit()
    finally:
        for conn in conns.values():
            conn.close()
    timings["generate_and_copy_s"] = time.perf_counter() - started
    mark = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SET maintenance_work_mem = '1GB'")
        admin.execute("SET max_parallel_maintenance_workers = 1")
        for stmt in ddl.creates:
            admin.execute(stmt)
        for table in ("device", "storage_medium"):
            admin.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    timings["indexes_and_constraints_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as admin:
        for table in LOADED_TABLES:
            admin.execute(f"VACUUM (ANALYZE) {table}")
    timings["vacuum_analyze_s"] = time.perf_counter() - mark
    timings["load_total_s"] = time.perf_counter() - started
    return timings


def _occurred_at(seq: int) -> str:
    """``factory.kernel.clock.format_utc`` of the entry's time, without strftime (a third of the cost)."""
    return (_START_NAIVE + timedelta(seconds=seq * STEP_SECONDS)).isoformat(timespec="microseconds") + "Z"


_START_NAIVE = START.replace(tzinfo=None)
_SORT = orjson.OPT_SORT_KEYS


def _generate(
    factory: CertificateFactory, devices: int, script: tuple[tuple[str, str | None, str], ...], cert_step: int,
    dev_copy: Any, med_copy: Any, cert_copy: Any, entry_copy: Any,
) -> None:  # fmt: skip
    """Stream COPY text for every table. Entry values are generated ASCII without tabs, newlines
    or backslashes, so their lines need no escaping; envelopes go through ``_copy_value``."""
    # The shortcuts above must produce exactly what the project's own functions produce.
    probe = {"job": "job-1", "media": ["MS1"], "new_stock": False, "allocation": 7}
    assert orjson.dumps(probe, option=_SORT).decode() == evidence_text(probe)
    assert _occurred_at(12345) == format_utc(START + timedelta(seconds=12345 * STEP_SECONDS))
    prev = GENESIS_HASH
    seq = 0
    fingerprint = factory.fingerprint
    created = format_utc(START)
    report_every = max(devices // 20, BLOCK)
    t0 = time.perf_counter()
    for first in range(0, devices, BLOCK):
        ids = range(first + 1, min(first + BLOCK, devices) + 1)
        entry_lines: list[str] = []
        rounds: dict[int, tuple[int, str]] = {}
        tainted: dict[int, int] = {}
        last_at = ""
        for step, (event, source, target) in enumerate(script):
            source_text = source if source is not None else "\\N"
            for device_id in ids:
                seq += 1
                serial = f"SN{device_id:09d}"
                officer = f"officer:{device_id % 9973}"
                custodian_from = "factory" if source is not None and source != "issued" else officer
                custodian_to = officer if target == "issued" else "factory"
                evidence: dict[str, Any]
                if event == "receive":
                    evidence = {"new_stock": False, "media": [f"MS{device_id:09d}"]}
                elif event == "start_sanitise" or event == "start_provision":
                    evidence = {"job": f"job-{seq}", "slot": f"bench-{device_id % 4 + 1}/slot-{device_id % 8 + 1}"}
                elif event == "issue":
                    evidence = {
                        "allocation": device_id,
                        "acceptance_sha256": hashlib.sha256(serial.encode()).hexdigest(),
                    }
                else:
                    evidence = {"job": f"job-{seq}"}
                last_at = _occurred_at(seq)
                digest = hash_document(
                    {"seq": seq, "device_serial": serial, "event": event, "from_state": source, "to_state": target,
                     "actor": "bench.technician", "from_custodian": custodian_from, "to_custodian": custodian_to,
                     "location": "site-1", "occurred_at": last_at, "evidence": evidence, "prev_hash": prev}
                )  # fmt: skip
                entry_lines.append(
                    f"{seq}\t{device_id}\t{serial}\t{event}\t{source_text}\t{target}\tbench.technician\t"
                    f"{custodian_from}\t{custodian_to}\tsite-1\t{last_at}\t"
                    f"{orjson.dumps(evidence, option=_SORT).decode()}\t{prev}\t{digest}\n"
                )
                prev = digest
                if event == "receive" or event == "return":
                    tainted[device_id] = seq
                if step == cert_step:
                    rounds[device_id] = (seq, digest)
        entry_copy.write("".join(entry_lines))
        state = script[-1][2]
        cert_lines, dev_lines, med_lines = [], [], []
        for device_id in ids:
            round_seq, round_hash = rounds[device_id]
            serial, medium, tag = f"SN{device_id:09d}", f"MS{device_id:09d}", f"AT{device_id:09d}"
            issued_text = (START + timedelta(seconds=round_seq * STEP_SECONDS + 1800)).strftime("%Y-%m-%dT%H:%M:%SZ")
            cid = str(uuid.UUID(bytes=os.urandom(16), version=4))
            envelope, digest = factory.make(
                {"certificate_id": cid, "issued_at": issued_text, "device_serial": serial, "asset_tag": tag,
                 "medium_serial": medium, "entry_hash": round_hash, "sequence": str(round_seq)}
            )  # fmt: skip
            cert_lines.append(
                f"{cid}\t{device_id}\t{device_id}\t{serial}\t{medium}\t{tag}\t{round_seq}\tpurge\t"
                f"ata-sanitize-crypto\tinternal_reuse\t{digest}\t{fingerprint}\t{issued_text}\t"
                f"{_copy_value(envelope)}\n"
            )
            custodian = f"officer:{device_id % 9973}" if state == "issued" else "factory"
            dev_lines.append(
                f"{device_id}\t{serial}\t{tag}\tDell\tLatitude 5440\tlaptop\t{state}\t{custodian}\tsite-1\t"
                f"{tainted[device_id]}\t{round_seq}\t{created}\t{last_at}\n"
            )
            med_lines.append(
                f"{device_id}\t{device_id}\t{medium}\tSamsung SSD 870 EVO 250GB\tsata-ssd\t{256 * 10**9}\n"
            )
        cert_copy.write("".join(cert_lines))
        dev_copy.write("".join(dev_lines))
        med_copy.write("".join(med_lines))
        done = ids[-1]
        if done % report_every < BLOCK or done == devices:
            rate = seq / (time.perf_counter() - t0)
            print(f"  {done:,} devices, {seq:,} entries ({rate:,.0f} entries/s)", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ checks after the load


def check_sample(url: str, settings: Settings, sample: int = 200) -> dict[str, Any]:
    """Verify a random sample of loaded certificates with the project's verifier, and re-hash
    the last entries of the chain: the load is real evidence, not filler."""
    from factory.kernel.site_keys import load_public_key

    public_key = load_public_key(settings)
    with psycopg.connect(_dsn(DB_NAME)) as conn:
        (count,) = conn.execute("SELECT count(*) FROM certificate").fetchone()  # type: ignore[misc]
        rows = conn.execute(
            "SELECT c.envelope, e.entry_hash FROM (SELECT * FROM certificate ORDER BY random() LIMIT %s) c "
            "JOIN custody_entry e ON e.seq = c.erase_round_seq",
            (sample,),
        ).fetchall()
        for envelope, entry_hash in rows:
            doc = verify_certificate(json.loads(envelope), public_key).certificate
            assert doc["custody"]["previous_entry_sha256"] == entry_hash
        tail = conn.execute(
            "SELECT seq, device_serial, event, from_state, to_state, actor, from_custodian, to_custodian, location, "
            "occurred_at, evidence, prev_hash, entry_hash FROM custody_entry ORDER BY seq DESC LIMIT 1000"
        ).fetchall()
    keys = ("seq", "device_serial", "event", "from_state", "to_state", "actor", "from_custodian", "to_custodian",
            "location", "occurred_at", "evidence", "prev_hash")  # fmt: skip
    for newer, older in itertools.pairwise(tail):
        assert newer[11] == older[12], f"entry {newer[0]} does not link"
    for row in tail:
        doc = dict(zip(keys, row, strict=False))
        doc["evidence"] = json.loads(row[10])
        assert hash_document(doc) == row[12], f"entry {row[0]} hash differs"
    return {"certificates": count, "sample_verified": len(rows), "tail_entries_rehashed": len(tail)}


# ------------------------------------------------------------------ measuring


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(app: str, env: dict[str, str], factory: bool) -> Iterator[str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--no-access-log", "--log-level", "warning"] + (["--factory"] if factory else [])  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=Path(__file__).resolve().parent.parent)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{app} did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


WRK_SCRIPT = """
local serials = {%s}
local token = "%s"
local path = "%s"
math.randomseed(%d)
request = function()
  local p = path
  if #serials > 0 then p = p .. serials[math.random(#serials)] end
  return wrk.format("GET", p, {["Authorization"] = "Bearer " .. token})
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  local fmt = 'WRKJSON {"requests": %%d, "duration_us": %%d, "errors": %%d, "p50_us": %%d, "p99_us": %%d}\\n'
  io.write(string.format(fmt,
    summary.requests, summary.duration, errors, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk(base: str, path: str, serials: list[str], token: str, connections: int, duration: int) -> dict[str, float]:
    listed = ",".join(f'"{s}"' for s in serials)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % (listed, token, path, random.randrange(1 << 30)))
        script = f.name
    try:
        out = subprocess.run(
            ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--timeout", "10s", "-s", script, base],
            capture_output=True, text=True, check=True, timeout=duration + 60,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script)
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    data = json.loads(line[len("WRKJSON ") :])
    if data["errors"]:
        raise RuntimeError(
            f"{path}: {data['errors']} of {data['requests']} requests failed; the numbers would mean nothing"
        )
    seconds = data["duration_us"] / 1e6
    return {
        "requests": data["requests"],
        "errors": data["errors"],
        "req_per_s": round(data["requests"] / seconds, 1),
        "p50_ms": round(data["p50_us"] / 1000, 2),
        "p99_ms": round(data["p99_us"] / 1000, 2),
    }


def measure(settings: Settings, devices: int, connections: int, duration: int) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the load (apt-get install wrk)")
    with session_scope(make_engine(_url(DB_NAME))) as s:
        name = f"bench-auditor-{os.getpid()}"
        _, token = add_user(s, name, "auditor")
    rng = random.Random(7)
    serials = [f"SN{rng.randrange(1, devices + 1):09d}" for _ in range(2000)]
    env = {
        "FACTORY_HOME": str(settings.home),
        "FACTORY_DATABASE_URL": _url(DB_NAME),
        "FACTORY_SITE": settings.site_name,
    }
    results: dict[str, Any] = {}
    with server("api.app:create_app", env, factory=True) as base:
        _smoke(base, serials[0], token)
        wrk(base, "/api/certificates?device_serial=", serials, token, 4, 3)  # warm-up: pool, caches
        results["search_c1"] = wrk(base, "/api/certificates?device_serial=", serials, token, 1, duration)
        results[f"search_c{connections}"] = wrk(
            base, "/api/certificates?device_serial=", serials, token, connections, duration
        )
    with server("benchmarks.audit:auth_only_app", env, factory=True) as base:
        wrk(base, "/auth-only", [], token, 4, 2)
        results["auth_only_c1"] = wrk(base, "/auth-only", [], token, 1, duration)
        results[f"auth_only_c{connections}"] = wrk(base, "/auth-only", [], token, connections, duration)
    with server("benchmarks.audit:bare_app", {}, factory=False) as base:
        for path in ("/bare", "/bare-async"):
            key = path.strip("/").replace("-", "_")
            wrk(base, path, [], "", 4, 2)
            results[f"{key}_c1"] = wrk(base, path, [], "", 1, duration)
            results[f"{key}_c{connections}"] = wrk(base, path, [], "", connections, duration)
    sat = results[f"search_c{connections}"]["req_per_s"]
    results["ratio_vs_bare_sync"] = round(sat / results[f"bare_c{connections}"]["req_per_s"], 3)
    results["ratio_vs_bare_async"] = round(sat / results[f"bare_async_c{connections}"]["req_per_s"], 3)
    results["p99_target_met"] = results["search_c1"]["p99_ms"] <= 10.0
    results["ratio_target_met"] = results["ratio_vs_bare_sync"] >= 0.5
    return results


def _smoke(base: str, serial: str, token: str) -> None:
    import httpx

    r = httpx.get(f"{base}/api/certificates", params={"device_serial": serial},
                  headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
    r.raise_for_status()
    items = r.json()["items"]
    assert len(items) == 1 and items[0]["device_serial"] == serial, r.text


# ------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--certificates", type=int, default=1_000_000, help="one device and medium each")
    parser.add_argument("--entries", type=int, default=10_000_000, help="custody entries (<= 10 per certificate)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections for the throughput runs")
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "df-bench-audit-home")
    parser.add_argument("--reuse", action="store_true", help="measure the database loaded by an earlier run")
    args = parser.parse_args()
    per_device = args.entries // args.certificates
    if not 2 <= per_device <= len(SCRIPT) or args.entries % args.certificates:
        raise SystemExit(f"--entries must be 2..{len(SCRIPT)} times --certificates")
    settings = Settings(home=args.home, database_url=_url(DB_NAME), site_name="bench-site")
    report: dict[str, Any] = {"certificates": args.certificates, "entries": args.entries}
    if not args.reuse:
        if args.home.exists():
            shutil.rmtree(args.home)
        init_keys(settings)
        url = fresh_database()
        print(f"loading {args.certificates:,} certificates and {args.entries:,} entries ...", file=sys.stderr)
        report["load"] = load(url, settings, args.certificates, per_device)
        report["check"] = check_sample(url, settings)
    with psycopg.connect(_dsn(DB_NAME)) as conn:
        report["database_size"] = conn.execute("SELECT pg_size_pretty(pg_database_size(%s))", (DB_NAME,)).fetchone()[0]  # type: ignore[index]
    report["measure"] = measure(settings, args.certificates, args.connections, args.duration)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
