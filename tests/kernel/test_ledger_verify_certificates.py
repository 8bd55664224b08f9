"""verify_ledger checks certificate rows against the entries its walk kept, as the SQL selection does."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, insert, text

from factory.kernel.clock import utc_now
from factory.kernel.db.append_only import drop_statements
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger import verify, verify_rows
from factory.kernel.ledger.append import append_entry
from factory.kernel.ledger.certificates import check_certificate_rows
from factory.kernel.ledger.logs import log_names
from factory.kernel.models.device import Device

ENTRIES = 300  # two worker ranges when forced: 1..256 here, 257..300 in a worker
NAMING = 270  # the sanitised entry that names a certificate the database does not hold
ESCAPE = ('"certificates"', '"certificat\\u0065s"')  # the same name: the evidence parses (and hashes) alike


def _fill(engine: Engine) -> None:
    now = utc_now()
    with engine.begin() as conn:
        conn.execute(insert(Device), [{"serial": f"C-{i}", "kind": "laptop", "created_at": now, "updated_at": now}
                                      for i in range(ENTRIES // 10)])  # fmt: skip
    with session_scope(engine) as s:
        for i in range(ENTRIES):
            event = "sanitised" if i + 1 == NAMING else ("start_sanitise", "sanitised", "receive")[i % 3]
            evidence = {"certificates": ["cert-missing"]} if i + 1 == NAMING else {"job": f"job-{i}"}
            append_entry(s, device_id=1 + i // 10, device_serial=f"C-{i // 10}", event=event, from_state=None,
                         to_state="x", actor="tech", from_custodian="factory", to_custodian="factory",
                         location="bench", evidence=evidence)  # fmt: skip
    with engine.begin() as conn:
        for stmt in drop_statements(engine.dialect.name, "custody_entry"):
            conn.execute(text(stmt))
        stored = conn.execute(text("SELECT evidence FROM custody_entry WHERE seq = :s"), {"s": NAMING}).scalar_one()
        escaped = stored.replace(*ESCAPE)
        assert escaped != stored
        conn.execute(text("UPDATE custody_entry SET evidence = :e WHERE seq = :s"), {"e": escaped, "s": NAMING})


@pytest.mark.parametrize("workers", [1, 2])
def test_a_certificate_named_in_escaped_evidence_is_found_missing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    _fill(engine)
    monkeypatch.setattr(verify_rows, "BATCH", 64)
    monkeypatch.setattr(verify, "PARALLEL_THRESHOLD", 0)
    report = verify.verify_ledger(engine, workers=workers)
    (problem,) = check_certificate_rows(engine)  # the SQL selection, as 'audit exceptions' reads it
    assert (problem.certificate_id, problem.seq) == ("cert-missing", NAMING)
    assert not report.ok and report.broken_seq == NAMING
    assert report.reason == f"certificate cert-missing (named by custody entry {NAMING}): {problem.reason}"
    only_log = verify.verify_ledger(engine, workers=workers, log=report.log)  # one log: selected again
    assert only_log.reason == report.reason


def test_the_walk_keeps_what_the_selection_reads(engine: Engine) -> None:
    _fill(engine)
    seen = verify_rows.RangeResult(0, None, None, None)
    with engine.connect() as conn:
        (log,) = log_names(conn)
        assert verify.verify_log(engine, log, workers=1, seen=seen).ok
        closing = conn.execute(text("SELECT seq, evidence, device_id FROM custody_entry WHERE event = 'sanitised'"))
        opened = conn.execute(text("SELECT seq, device_id FROM custody_entry WHERE event = 'start_sanitise'"))
        may_name = [tuple(r) for r in closing if "certificat" in r[1]]
        assert [tuple(r) for r in seen.sanitised] == may_name
        assert [(seq, device) for seq, _, device in may_name] == [(NAMING, 1 + (NAMING - 1) // 10)]
        assert dict(seen.opened) == dict(tuple(r) for r in opened)
