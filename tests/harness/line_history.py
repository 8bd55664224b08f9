"""What a failed line audit needs to be diagnosed from a CI log alone: each named device's custody
entries and its jobs with their steps and log lines, as text for the assertion's message."""

from __future__ import annotations

import re

from sqlalchemy import Engine, text


def explain_audit(engine: Engine, problems: list[str]) -> str:
    """``problems`` (from ``audit_line``) followed by the history of every device they name."""
    serials = sorted({m.group(1) for p in problems for m in [re.match(r"device (\S+) ", p)] if m})
    parts = ["\n".join(problems)]
    with engine.connect() as conn:
        for serial in serials:
            parts.append(_device_history(conn, serial))
    return "\n\n".join(parts)


def _device_history(conn: object, serial: str) -> str:
    run = conn.execute  # type: ignore[attr-defined]
    device_id = run(text("SELECT id FROM device WHERE serial = :s"), {"s": serial}).scalar()
    lines = [f"== device {serial} (id {device_id})"]
    for seq, event, state, actor in run(
        text("SELECT seq, event, to_state, actor FROM custody_entry WHERE device_id = :d ORDER BY seq"),
        {"d": device_id},
    ):
        lines.append(f"  custody {seq}: {event} -> {state} by {actor}")
    jobs = run(
        text("SELECT id, status, owner, owner_run, reason FROM job WHERE device_id = :d ORDER BY id"), {"d": device_id}
    ).all()
    for job_id, status, owner, owner_run, reason in jobs:
        lines.append(f"  job {job_id}: {status} owner={owner} run={owner_run} reason={reason}")
        for name, status_, seq in run(
            text("SELECT name, status, custody_seq FROM job_step WHERE job_id = :j ORDER BY position"), {"j": job_id}
        ):
            lines.append(f"    step {name}: {status_} custody_seq={seq}")
        for at, level, message in run(
            text("SELECT at, level, message FROM job_log WHERE job_id = :j ORDER BY id"), {"j": job_id}
        ):
            lines.append(f"    {at} {level}: {message}")
    return "\n".join(lines)
