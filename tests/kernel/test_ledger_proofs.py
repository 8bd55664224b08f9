"""Inclusion and consistency proofs from the CLI, verified by the standalone script (stdlib + cryptography)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness.domain import move, receive
from typer.testing import CliRunner

from factory.cli.main import app
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.append import append_entry
from factory.kernel.ledger.heads import latest_head, sign_tree_head
from factory.kernel.ledger.proofs import entry_seqs, inclusion_set, logs_of
from factory.kernel.lifecycle.states import Event

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "verify_ledger_proof.py"
PRIMITIVES = ROOT / "imaging" / "offline_verify.py"  # the one file the script needs beside it


def _check(proof: Path, *keys: Path) -> subprocess.CompletedProcess[str]:
    # As an auditor has it: the script and its primitives in a directory of their own, outside
    # the repository; -I: isolated mode, nothing of this project importable: the two stand alone.
    auditor = proof.parent / "auditor"
    auditor.mkdir(exist_ok=True)
    for source in (SCRIPT, PRIMITIVES):
        shutil.copy(source, auditor / source.name)
    return subprocess.run(
        [sys.executable, "-I", str(auditor / SCRIPT.name), str(proof), *(a for k in keys for a in ("--key", str(k)))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_device_s_entries_are_proved_in_the_signed_log_offline(ctx, tmp_path: Path) -> None:
    a = receive(ctx, "P-1")
    b = receive(ctx, "P-2")
    move(ctx, a, Event.QUARANTINE)
    old = tmp_path / "old-head.json"
    _ok(["ledger", "head", "--out", str(old)])
    for _ in range(3):
        move(ctx, b, Event.QUARANTINE)
        move(ctx, b, Event.TRIAGE)
    late = runner.invoke(app, ["ledger", "prove", "P-2"])  # its last entries follow the latest head
    assert late.exit_code == 1 and "after the latest signed head (size 3)" in late.stderr
    key = tmp_path / "site.pem"
    key.write_text(_ok(["keys", "public"]).split("fingerprint")[0])
    proof = tmp_path / "p2.json"
    _ok(["ledger", "prove", "P-2", "--sign-head", "--out", str(proof)])
    doc = json.loads(proof.read_text())
    assert [e["seq"] for e in doc["entries"]] == [2, 4, 5, 6, 7, 8, 9] and doc["head"]["tree_size"] == 9
    checked = _check(proof, key)
    assert checked.returncode == 0 and checked.stdout.startswith("OK: 7 custody entries"), checked.stdout
    # one entry edited, its hash recomputed by the forger: no longer in the signed log
    forged = json.loads(doc["entries"][2]["entry"]) | {"actor": "mallory"}
    text = json.dumps(forged, separators=(",", ":"), sort_keys=True)
    doc["entries"][2] |= {"entry": text, "entry_hash": __import__("hashlib").sha256(text.encode()).hexdigest()}
    proof.write_text(json.dumps(doc))
    bad = _check(proof, key)
    assert bad.returncode == 1 and "FAIL: custody entry 5: not in the log the signed head commits to" in bad.stdout
    # the old head is a prefix of the latest
    consistency = tmp_path / "c.json"
    _ok(["ledger", "consistency", str(old), "latest", "--out", str(consistency)])
    good = _check(consistency, key)
    assert good.returncode == 0 and "the signed log of 3 entries is a prefix of the signed log of 9" in good.stdout
    doc = json.loads(consistency.read_text())
    doc["proof"][0] = "00" * 32
    consistency.write_text(json.dumps(doc))
    assert _check(consistency, key).returncode == 1
    one = _ok(["ledger", "prove", "1"])
    assert json.loads(one)["entries"][0]["seq"] == 1


def test_proof_commands_fail_in_one_line(ctx) -> None:
    receive(ctx, "P-3")
    none = runner.invoke(app, ["ledger", "prove", "P-3"])
    assert none.exit_code == 1 and none.stderr.startswith("error: no signed tree head 'latest'")
    _ok(["ledger", "head"])
    unknown = runner.invoke(app, ["ledger", "prove", "NOPE"])
    assert unknown.exit_code == 1 and "no custody entries for a device with serial NOPE" in unknown.stderr
    backwards = runner.invoke(app, ["ledger", "consistency", "latest", "0"])
    assert backwards.exit_code == 1 and backwards.stderr.startswith("error: ")


def test_a_proof_set_across_two_logs_proves_each_entry_at_its_place_in_its_log(ctx, tmp_path: Path) -> None:
    """Site b's entries have global seq 2 and 3 but are leaves 0 and 1 of site b's log: the offline
    verifier proves each at ``log_seq - 1`` (it used ``seq - 1`` and refused every such proof)."""
    device = receive(ctx, "P-9")
    key_b = Ed25519PrivateKey.generate()
    _ok(["ledger", "head"])
    with session_scope(ctx.engine) as s:
        for note in ("arrived at site b", "checked at site b"):
            append_entry(
                s, device_id=device, device_serial="P-9", event="note", from_state=None, to_state="received",
                actor="site-b-tech", from_custodian="", to_custodian="", location="site b", evidence={"note": note},
                log="site-b",
            )  # fmt: skip
        sign_tree_head(s, key_b, "site-b", log="site-b")
    with session_scope(ctx.engine) as s:
        by_log = logs_of(s, entry_seqs(s, "P-9"))
        doc = inclusion_set(s, {log: (seqs, latest_head(s, log)) for log, seqs in by_log.items()})
    b_proof = next(p for p in doc["proofs"] if p["head"]["log"] == "site-b")
    assert [(e["seq"], e["leaf_index"]) for e in b_proof["entries"]] == [(2, 0), (3, 1)]
    proof, key, pem_b = tmp_path / "set.json", tmp_path / "site.pem", tmp_path / "site-b.pem"
    proof.write_text(json.dumps(doc))
    key.write_text(_ok(["keys", "public"]).split("fingerprint")[0])
    pem_b.write_bytes(
        key_b.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    checked = _check(proof, key, pem_b)
    assert checked.returncode == 0 and checked.stdout.startswith("OK: 1 custody entries"), checked.stdout
    b_proof["entries"][1]["audit_path"] = b_proof["entries"][0]["audit_path"]  # leaf 0's path for leaf 1
    proof.write_text(json.dumps(doc))
    bad = _check(proof, key, pem_b)
    assert bad.returncode == 1 and "FAIL: custody entry 3: not in the log the signed head commits to" in bad.stdout
