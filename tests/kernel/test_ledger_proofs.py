"""Inclusion and consistency proofs from the CLI, verified by the standalone script (stdlib + cryptography)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from harness.domain import move, receive
from typer.testing import CliRunner

from factory.cli.main import app
from factory.kernel.lifecycle.states import Event

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "verify_ledger_proof.py"
PRIMITIVES = ROOT / "imaging" / "offline_verify.py"  # the one file the script needs beside it


def _check(proof: Path, key: Path) -> subprocess.CompletedProcess[str]:
    # As an auditor has it: the script and its primitives in a directory of their own, outside
    # the repository; -I: isolated mode, nothing of this project importable: the two stand alone.
    auditor = proof.parent / "auditor"
    auditor.mkdir(exist_ok=True)
    for source in (SCRIPT, PRIMITIVES):
        shutil.copy(source, auditor / source.name)
    return subprocess.run(
        [sys.executable, "-I", str(auditor / SCRIPT.name), str(proof), "--key", str(key)],
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
