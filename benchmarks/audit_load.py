"""The load half of ``benchmarks/audit.py``: a dedicated PostgreSQL database migrated to head,
then devices, media, real signed certificates and real chained custody entries bulk-loaded with
COPY, and a sample checked with the project's own verifier afterwards."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg

# A sibling module: the benchmark runs as a script from this folder.
from audit_certificates import CertificateFactory

from factory.kernel.clock import format_utc
from factory.kernel.config import Settings
from factory.kernel.db.migrate import upgrade
from factory.kernel.ledger.hashing import HASHED_FIELDS, evidence_text, hash_document
from factory.kernel.models.custody_entry import GENESIS_HASH
from factory.kernel.site_keys import load_private_key
from imaging.certificate import verify_certificate

PG_ADMIN = os.environ.get("FACTORY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# Its own database, never the site's: FACTORY_BENCH_AUDIT_DB names another one (say, one per developer).
DB_NAME = os.environ.get("FACTORY_BENCH_AUDIT_DB", "df_bench_audit")
if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", DB_NAME):
    raise SystemExit(f"FACTORY_BENCH_AUDIT_DB={DB_NAME!r} is not a plain lower-case database name")
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

# ------------------------------------------------------------------ database


def db_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name


def dsn(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


MARKER = "created by benchmarks/audit.py; safe to drop"


def fresh_database() -> str:
    """Create the benchmark's database. One left by an earlier run of this benchmark (it carries
    MARKER as its comment) is dropped first; any other database of that name is refused, never dropped."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (DB_NAME,)
        ).fetchone()
        if row is not None and row[0] != MARKER:
            raise SystemExit(f"database {DB_NAME} exists and was not created by this benchmark: not dropping it")
        if row is not None:
            conn.execute(f"DROP DATABASE {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
        conn.execute(f"COMMENT ON DATABASE {DB_NAME} IS '{MARKER}'")
    upgrade(db_url(DB_NAME))
    return db_url(DB_NAME)


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


def _has_log_columns(conn: psycopg.Connection) -> bool:
    """Whether custody entries carry their log (the per-site logs' schema) at this migration."""
    row = conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'custody_entry' "
        "AND column_name IN ('log', 'log_seq')"
    ).fetchone()
    return row is not None and row[0] == 2


def _entry_copy_sql(per_site_log: bool) -> str:
    return (
        "COPY custody_entry (seq, device_id, device_serial, event, from_state, to_state, actor, "
        "from_custodian, to_custodian, location, occurred_at, evidence, prev_hash, entry_hash"
        f"{', log, log_seq' if per_site_log else ''}) FROM STDIN"
    )


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


# ------------------------------------------------------------------ the load


def load(url: str, settings: Settings, devices: int, per_device: int) -> dict[str, float]:
    factory = CertificateFactory(load_private_key(settings), settings.site_name)
    script = SCRIPT[:per_device]
    cert_step = max(i for i, step in enumerate(script) if step[0] == "start_sanitise")
    timings: dict[str, float] = {}
    target = dsn(DB_NAME)
    started = time.perf_counter()
    with psycopg.connect(target, autocommit=True) as admin:
        ddl = strip_for_load(admin)
    conns = {t: psycopg.connect(target) for t in LOADED_TABLES}
    per_site_log = _has_log_columns(conns["custody_entry"])
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
            conns["custody_entry"].cursor().copy(_entry_copy_sql(per_site_log)) as entry_copy,
        ):
            log = settings.site_name if per_site_log else None
            _generate(factory, devices, script, cert_step, dev_copy, med_copy, cert_copy, entry_copy, log)
        for conn in conns.values():
            conn.commit()
    finally:
        for conn in conns.values():
            conn.close()
    timings["generate_and_copy_s"] = time.perf_counter() - started
    mark = time.perf_counter()
    with psycopg.connect(target, autocommit=True) as admin:
        admin.execute("SET maintenance_work_mem = '1GB'")
        admin.execute("SET max_parallel_maintenance_workers = 1")
        for stmt in ddl.creates:
            admin.execute(stmt)
        for table in ("device", "storage_medium"):
            admin.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    timings["indexes_and_constraints_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    with psycopg.connect(target, autocommit=True) as admin:
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


@dataclass
class _Chain:
    """Where the generated ledger stands: the last sequence number and its entry hash."""

    seq: int = 0
    prev: str = GENESIS_HASH
    log: str | None = None  # the site's log name, where entries carry one (per-site logs): log_seq = seq


@dataclass
class _Block:
    """One block of devices' custody entries as COPY lines, and what their device rows need."""

    lines: list[str] = field(default_factory=list)
    rounds: dict[int, tuple[int, str]] = field(default_factory=dict)  # device -> its erase round's entry
    tainted: dict[int, int] = field(default_factory=dict)  # device -> seq since it holds user data
    last_at: str = ""


def _generate(
    factory: CertificateFactory, devices: int, script: tuple[tuple[str, str | None, str], ...], cert_step: int,
    dev_copy: Any, med_copy: Any, cert_copy: Any, entry_copy: Any, log: str | None = None,
) -> None:  # fmt: skip
    """Stream COPY text for every table. Entry values are generated ASCII without tabs, newlines
    or backslashes, so their lines need no escaping; envelopes go through ``_copy_value``."""
    # The shortcuts above must produce exactly what the project's own functions produce.
    probe = {"job": "job-1", "media": ["MS1"], "new_stock": False, "allocation": 7}
    assert orjson.dumps(probe, option=_SORT).decode() == evidence_text(probe)
    assert _occurred_at(12345) == format_utc(START + timedelta(seconds=12345 * STEP_SECONDS))
    chain = _Chain(log=log)
    created = format_utc(START)
    report_every = max(devices // 20, BLOCK)
    t0 = time.perf_counter()
    for first in range(0, devices, BLOCK):
        ids = range(first + 1, min(first + BLOCK, devices) + 1)
        block = _entry_block(chain, ids, script, cert_step)
        entry_copy.write("".join(block.lines))
        cert_lines, dev_lines, med_lines = _device_lines(factory, ids, block, script[-1][2], created)
        cert_copy.write(cert_lines)
        dev_copy.write(dev_lines)
        med_copy.write(med_lines)
        done = ids[-1]
        if done % report_every < BLOCK or done == devices:
            rate = chain.seq / (time.perf_counter() - t0)
            print(f"  {done:,} devices, {chain.seq:,} entries ({rate:,.0f} entries/s)", file=sys.stderr, flush=True)


def _entry_block(chain: _Chain, ids: range, script: tuple[tuple[str, str | None, str], ...], cert_step: int) -> _Block:
    """The custody entries of a block of devices, step by step so their lifecycles interleave."""
    block = _Block()
    seq, prev = chain.seq, chain.prev
    # Hash version 1 entries of one log: log_seq is seq (as the per-site migration fills them).
    log = chain.log
    for step, (event, source, target) in enumerate(script):
        source_text = source if source is not None else "\\N"
        for device_id in ids:
            seq += 1
            serial = f"SN{device_id:09d}"
            officer = f"officer:{device_id % 9973}"
            custodian_from = "factory" if source is not None and source != "issued" else officer
            custodian_to = officer if target == "issued" else "factory"
            evidence = _evidence(event, device_id, seq, serial)
            block.last_at = _occurred_at(seq)
            digest = hash_document(
                {"seq": seq, "device_serial": serial, "event": event, "from_state": source, "to_state": target,
                 "actor": "bench.technician", "from_custodian": custodian_from, "to_custodian": custodian_to,
                 "location": "site-1", "occurred_at": block.last_at, "evidence": evidence, "prev_hash": prev}
            )  # fmt: skip
            log_columns = "" if log is None else f"\t{log}\t{seq}"
            block.lines.append(
                f"{seq}\t{device_id}\t{serial}\t{event}\t{source_text}\t{target}\tbench.technician\t"
                f"{custodian_from}\t{custodian_to}\tsite-1\t{block.last_at}\t"
                f"{orjson.dumps(evidence, option=_SORT).decode()}\t{prev}\t{digest}{log_columns}\n"
            )
            prev = digest
            if event == "receive" or event == "return":
                block.tainted[device_id] = seq
            if step == cert_step:
                block.rounds[device_id] = (seq, digest)
    chain.seq, chain.prev = seq, prev
    return block


def _evidence(event: str, device_id: int, seq: int, serial: str) -> dict[str, Any]:
    if event == "receive":
        return {"new_stock": False, "media": [f"MS{device_id:09d}"]}
    if event == "start_sanitise" or event == "start_provision":
        return {"job": f"job-{seq}", "slot": f"bench-{device_id % 4 + 1}/slot-{device_id % 8 + 1}"}
    if event == "issue":
        return {"allocation": device_id, "acceptance_sha256": hashlib.sha256(serial.encode()).hexdigest()}
    return {"job": f"job-{seq}"}


def _device_lines(
    factory: CertificateFactory, ids: range, block: _Block, state: str, created: str
) -> tuple[str, str, str]:
    """COPY text of the certificate, device and medium rows of a block of devices."""
    cert_lines, dev_lines, med_lines = [], [], []
    for device_id in ids:
        round_seq, round_hash = block.rounds[device_id]
        serial, medium, tag = f"SN{device_id:09d}", f"MS{device_id:09d}", f"AT{device_id:09d}"
        issued_text = (START + timedelta(seconds=round_seq * STEP_SECONDS + 1800)).strftime("%Y-%m-%dT%H:%M:%SZ")
        cid = str(uuid.UUID(bytes=os.urandom(16), version=4))
        envelope, digest = factory.make(
            {"certificate_id": cid, "issued_at": issued_text, "device_serial": serial, "asset_tag": tag,
             "medium_serial": medium, "entry_hash": round_hash, "sequence": str(round_seq)}
        )  # fmt: skip
        cert_lines.append(
            f"{cid}\t{device_id}\t{device_id}\t{serial}\t{medium}\t{tag}\t{round_seq}\tpurge\t"
            f"ata-sanitize-crypto\tinternal_reuse\t{digest}\t{factory.fingerprint}\t{issued_text}\t"
            f"{_copy_value(envelope)}\n"
        )
        custodian = f"officer:{device_id % 9973}" if state == "issued" else "factory"
        dev_lines.append(
            f"{device_id}\t{serial}\t{tag}\tDell\tLatitude 5440\tlaptop\t{state}\t{custodian}\tsite-1\t"
            f"{block.tainted[device_id]}\t{round_seq}\t{created}\t{block.last_at}\n"
        )
        med_lines.append(f"{device_id}\t{device_id}\t{medium}\tSamsung SSD 870 EVO 250GB\tsata-ssd\t{256 * 10**9}\n")
    return "".join(cert_lines), "".join(dev_lines), "".join(med_lines)


# ------------------------------------------------------------------ checks after the load


def check_sample(url: str, settings: Settings, sample: int = 200) -> dict[str, Any]:
    """Verify a random sample of loaded certificates with the project's verifier, and re-hash
    the last entries of the chain: the load is real evidence, not filler."""
    from factory.kernel.site_keys import load_public_key

    public_key = load_public_key(settings)
    with psycopg.connect(dsn(DB_NAME)) as conn:
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
    for newer, older in itertools.pairwise(tail):
        assert newer[11] == older[12], f"entry {newer[0]} does not link"
    for row in tail:
        doc = dict(zip(HASHED_FIELDS, row, strict=False))
        doc["evidence"] = json.loads(row[10])
        assert hash_document(doc) == row[12], f"entry {row[0]} hash differs"
    return {"certificates": count, "sample_verified": len(rows), "tail_entries_rehashed": len(tail)}
