"""An audit bundle of a device whose entries are in two sites' logs: a signed head and proofs per
log, verified offline by the bundle's own script, and any changed byte fails (issue 15)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness.audit_data import bundle_checker, sanitised_device

from factory.audit.bundle import export_bundle
from factory.audit.errors import AuditRequestInvalid
from factory.kernel.db.engine import session_scope
from factory.kernel.key_files import load_private_key, load_public_key
from factory.kernel.ledger.append import append_entry
from factory.kernel.ledger.heads import sign_tree_head
from factory.kernel.ledger.logs import configured_log

KEY_B = Ed25519PrivateKey.generate()


def _moved_to_site_b(ctx, serial: str) -> None:
    """The device's later entries are appended by site b, to site b's own log."""
    device_id, _ = sanitised_device(ctx, serial, ("B-M1",))
    with session_scope(ctx.engine) as s:
        for note in ("arrived at site b", "checked at site b"):
            append_entry(
                s, device_id=device_id, device_serial=serial, event="note", from_state=None, to_state="sanitised",
                actor="site-b-tech", from_custodian="", to_custodian="", location="site b", evidence={"note": note},
                log="site-b",
            )  # fmt: skip


def _export(ctx, tmp_path: Path, serial: str) -> Path:
    out = io.BytesIO()
    with session_scope(ctx.engine) as s:
        export_bundle(s, load_public_key(ctx.settings), out, serials=[serial], site=ctx.settings.site_name,
                      exported_by="auditor1", head_key=load_private_key(ctx.settings))  # fmt: skip
    root = tmp_path / "bundle"
    zipfile.ZipFile(out).extractall(root)
    return root


def _checker() -> ModuleType:
    return bundle_checker("site_log_verify_bundle")


@pytest.fixture
def two_log_bundle(ctx, tmp_path) -> Path:
    _moved_to_site_b(ctx, "DEV-B")
    with session_scope(ctx.engine) as s:
        sign_tree_head(s, KEY_B, "site-b", log="site-b")  # site b signs its log on its schedule
    return _export(ctx, tmp_path, "DEV-B")


def test_a_bundle_across_two_logs_verifies_offline(two_log_bundle: Path) -> None:
    root = two_log_bundle
    heads = json.loads((root / "ledger" / "tree-heads.json").read_text())
    assert sorted(h["log"] for h in heads) == sorted([configured_log(), "site-b"])
    entries = [json.loads(line) for line in (root / "custody" / "entries.jsonl").read_text().splitlines()]
    assert [e["in_log"] for e in entries][-2:] == ["site-b", "site-b"]
    assert [e["log_seq"] for e in entries][-2:] == [1, 2]
    result = subprocess.run(
        [sys.executable, "-I", str(root / "verify_bundle.py"), str(root)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 1 certificates and 5 custody entries")


def test_any_changed_byte_of_the_ledger_files_fails(two_log_bundle: Path, tmp_path: Path) -> None:
    checker = _checker()
    pristine = two_log_bundle
    assert checker.verify_bundle(pristine, None, None)[0] == []
    for name in ("custody/entries.jsonl", "ledger/tree-heads.json", "ledger/tree-head.json"):
        data = (pristine / name).read_bytes()
        step = max(len(data) // 25, 1)
        for at in range(0, len(data), step):
            copy = tmp_path / f"flip-{name.replace('/', '-')}-{at}"
            shutil.copytree(pristine, copy)
            changed = bytearray(data)
            changed[at] ^= 0x01
            (copy / name).write_bytes(bytes(changed))
            try:
                problems = checker.verify_bundle(copy, None, None)[0]
            except ValueError:  # unreadable JSON or UTF-8: the script reports it as a failure too
                problems = ["unreadable"]
            assert problems, f"{name} byte {at} changed and the bundle still verifies"
            shutil.rmtree(copy)


def test_an_entry_claimed_for_the_other_log_fails_even_with_the_manifest_rehashed(two_log_bundle: Path) -> None:
    """Only the entry's proof is wrong (the manifest hash is made to match, its signature cannot be)."""
    root = two_log_bundle
    path = root / "custody" / "entries.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[-1]["in_log"] = configured_log()
    path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in lines))
    problems = _checker().verify_bundle(root, None, None)[0]
    seq = lines[-1]["seq"]
    assert f"custody entry {seq}: not in the signed log (it is of log 'site-b', but proved in log" in "\n".join(
        problems
    ), problems


def test_an_entry_after_the_other_sites_latest_head_is_refused_at_export(ctx, tmp_path) -> None:
    _moved_to_site_b(ctx, "DEV-C")  # site b has signed no head of its log
    with pytest.raises(AuditRequestInvalid, match="in the log of site 'site-b', and it has no signed head"):
        _export(ctx, tmp_path, "DEV-C")
