"""Evidence bundles verified offline by their own script; role checks; the CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from harness.audit_data import issued_new_stock, sanitised_device
from harness.domain import move
from typer.testing import CliRunner

from factory.cli.main import app
from factory.kernel.lifecycle.states import Event
from imaging.certificate import Destination

runner = CliRunner()


def _export(client, headers, **params) -> zipfile.ZipFile:
    r = client.get("/api/audit/export", params=params, headers=headers["auditor"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(r.content))


def _verify(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # -I: isolated mode, so nothing from this project is importable: the script stands alone.
    return subprocess.run(
        [sys.executable, "-I", str(root / "verify_bundle.py"), str(root), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture
def bundle(ctx, client, headers, tmp_path) -> tuple[Path, list[str]]:
    device_id, ids = sanitised_device(ctx, "DEV-X", ("X-M1", "X-M2"), destination=Destination.EXTERNAL_REUSE)
    sanitised_device(ctx, "DEV-Y", ("Y-M1",))  # its entries sit between DEV-X's
    move(ctx, device_id, Event.REDISTRIBUTE, to_custodian="school:7")
    root = tmp_path / "bundle"
    _export(client, headers, serial="DEV-X").extractall(root)
    return root, ids


def test_exported_bundle_verifies_offline(bundle, ctx) -> None:
    root, ids = bundle
    assert sorted(p.name for p in (root / "certificates").iterdir()) == sorted(
        [f"{i}.json" for i in ids] + [f"{i}.pdf" for i in ids]
    )
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["devices"][0]["serial"] == "DEV-X" and manifest["exported_by"] == "auditor1"
    entries = [json.loads(line) for line in (root / "custody" / "entries.jsonl").read_text().splitlines()]
    assert [e["event"] for e in entries] == ["receive", "start_sanitise", "sanitised", "redistribute"]
    fingerprint = (root / "keys" / "site-public-key.fingerprint.txt").read_text().strip()
    result = _verify(root, "--fingerprint", fingerprint)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 2 certificates and 4 custody entries")
    wrong = _verify(root, "--fingerprint", "SHA256:" + "A" * 43)
    assert wrong.returncode == 1 and "is not the published" in wrong.stdout


def test_a_tampered_certificate_is_named(bundle) -> None:
    root, ids = bundle
    path = root / "certificates" / f"{ids[0]}.json"
    path.write_text(path.read_text().replace('"external_reuse"', '"internal_reuse"'))
    result = _verify(root)
    assert result.returncode == 1
    assert f"FAIL: certificate {ids[0]}: digest mismatch" in result.stdout, result.stdout
    assert ids[1] not in result.stdout


def test_a_tampered_custody_entry_is_named(bundle) -> None:
    root, _ = bundle
    jsonl = root / "custody" / "entries.jsonl"
    lines = jsonl.read_text().splitlines()
    entry = json.loads(lines[3])
    entry["to_custodian"] = "school:8"  # the device went somewhere else
    lines[3] = json.dumps(entry)
    jsonl.write_text("\n".join(lines) + "\n")
    result = _verify(root)
    assert result.returncode == 1
    assert f"FAIL: custody entry {entry['seq']}: entry_hash does not match" in result.stdout, result.stdout


def test_a_removed_custody_entry_is_named(bundle) -> None:
    root, ids = bundle
    jsonl = root / "custody" / "entries.jsonl"
    lines = jsonl.read_text().splitlines()
    removed = json.loads(lines[1])  # the start of the erase round the certificates extend
    jsonl.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    result = _verify(root)
    assert result.returncode == 1
    assert f"certificate {ids[0]}: the custody entry it names ({removed['seq']}) is not in the bundle" in result.stdout
    assert f"custody entry {removed['seq']} (device DEV-X): listed in the manifest but missing" in result.stdout


def test_audit_routes_are_for_auditors_and_admins(ctx, client, headers) -> None:
    _, (cid,) = sanitised_device(ctx, "DEV-R", ("R-M1",))
    urls = [
        "/api/certificates?device_serial=DEV-R",
        f"/api/certificates/{cid}",
        f"/api/certificates/{cid}/verify",
        f"/api/certificates/{cid}/pdf",
        "/api/devices/DEV-R/history",
        "/api/audit/exceptions?days=1",
        "/api/audit/export?serial=DEV-R",
    ]
    for url in urls:
        assert client.get(url).status_code == 401, url
        for role, status in (("technician", 403), ("courier", 403), ("auditor", 200), ("admin", 200)):
            r = client.get(url, headers=headers[role])
            assert r.status_code == status, (url, role, r.text[:200])
            if status == 403:
                assert r.json()["error"] == "forbidden"


def test_cli_search_exceptions_and_export(ctx, tmp_path) -> None:
    _, (cid,) = sanitised_device(ctx, "DEV-CLI", ("C-M1",))
    issued_new_stock(ctx, "DEV-CLI-NEW")
    found = runner.invoke(app, ["audit", "search", "--serial", "DEV-CLI", "--json"])
    assert found.exit_code == 0, found.output
    assert [i["certificate_id"] for i in json.loads(found.stdout)["items"]] == [cid]
    report = runner.invoke(app, ["audit", "exceptions", "--days", "0", "--json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["uncertified_departures"] == []
    checked = runner.invoke(app, ["audit", "verify", cid])
    assert checked.exit_code == 0 and "ok" in checked.stdout
    history = runner.invoke(app, ["audit", "history", "DEV-CLI", "--full-verify", "--json"])
    assert history.exit_code == 0, history.output
    assert json.loads(history.stdout)["ledger"]["verified"]["ok"] is True
    out = tmp_path / "b.zip"
    exported = runner.invoke(app, ["audit", "export", "--serial", "DEV-CLI", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    zipfile.ZipFile(out).extractall(tmp_path / "b")
    assert _verify(tmp_path / "b").returncode == 0
    missing = runner.invoke(app, ["audit", "export", "--serial", "NOPE", "--out", str(tmp_path / "c.zip")])
    assert missing.exit_code == 1 and "no device with serial NOPE" in missing.stderr
    assert not (tmp_path / "c.zip").exists() and not (tmp_path / "c.zip.part").exists()


def test_bundle_carries_a_signed_head_that_later_catches_a_cut_off_tail(bundle, ctx) -> None:
    from sqlalchemy import text

    from factory.kernel.db.append_only import drop_statements
    from factory.kernel.db.engine import session_scope

    root, _ = bundle
    anchor = json.loads((root / "ledger-anchor.json").read_text())
    manifest = json.loads((root / "manifest.json").read_text())
    assert (anchor["seq"], anchor["entry_hash"]) == (
        manifest["ledger_head"]["seq"],
        manifest["ledger_head"]["entry_hash"],
    )
    assert anchor["key_fingerprint"] == manifest["key_fingerprint"]
    assert _verify(root).returncode == 0
    forged = {**anchor, "seq": anchor["seq"] + 1}
    (root / "ledger-anchor.json").write_text(json.dumps(forged))
    bad = _verify(root)
    assert bad.returncode == 1 and "ledger-anchor.json: not a valid signed ledger head" in bad.stdout
    (root / "ledger-anchor.json").write_text(json.dumps(anchor))
    ok = runner.invoke(app, ["ledger", "verify", "--anchor", str(root / "ledger-anchor.json")])
    assert ok.exit_code == 0 and "1 signed head(s) still in the chain" in ok.stdout
    with session_scope(ctx.engine) as s:  # someone later removes the last entry, triggers and all
        for stmt in drop_statements(ctx.engine.dialect.name, "custody_entry"):
            s.execute(text(stmt))
        s.execute(text("DELETE FROM custody_entry WHERE seq = :seq"), {"seq": anchor["seq"]})
    # The rows alone could not tell; the tree head the export signed (kept in the database) does.
    alone = runner.invoke(app, ["ledger", "verify"])
    assert alone.exit_code == 1 and "ledger truncated: signed tree head" in alone.stderr
    cut = runner.invoke(app, ["ledger", "verify", "--anchor", str(root / "ledger-anchor.json")])
    assert cut.exit_code == 1 and "ledger truncated" in cut.stderr


# ---------------------------------------------------------------- forgeries the signed tree head catches


def _lines(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "custody" / "entries.jsonl").read_text().splitlines()]


def _write_lines(root: Path, entries: list[dict]) -> None:
    text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
    (root / "custody" / "entries.jsonl").write_text(text)


def _rehashed(entry: dict) -> dict:
    from factory.audit.verify_bundle import entry_hash

    return {**entry, "entry_hash": entry_hash(entry)}


def test_an_entry_rewritten_with_its_hash_recomputed_is_not_in_the_signed_log(bundle) -> None:
    root, _ = bundle
    entries = _lines(root)
    entries[3] = _rehashed({**entries[3], "to_custodian": "school:8"})
    _write_lines(root, entries)
    result = _verify(root)
    assert result.returncode == 1
    assert f"FAIL: custody entry {entries[3]['seq']}: not in the signed log" in result.stdout, result.stdout
    assert "custody/entries.jsonl: differs from the signed manifest" in result.stdout


def test_a_forged_entry_moved_or_added_is_caught(bundle) -> None:
    root, _ = bundle
    entries = _lines(root)
    last = entries[-1]
    forged = _rehashed({**last, "seq": last["seq"] + 1, "prev_hash": last["entry_hash"], "event": "return"})
    moved = _rehashed({**entries[1], "seq": entries[1]["seq"] + 1000})
    _write_lines(root, [entries[0], moved, *entries[2:], forged])
    result = _verify(root)
    assert result.returncode == 1
    for seq in (forged["seq"], moved["seq"]):
        assert f"FAIL: custody entry {seq}: not in the signed log" in result.stdout, result.stdout
        assert f"FAIL: custody entry {seq}: not listed in the signed manifest" in result.stdout


@pytest.mark.parametrize("name", ["ledger-anchor.json", "ledger/tree-head.json", "manifest.sig.json"])
def test_a_removed_head_anchor_or_signature_fails(bundle, name: str) -> None:
    root, _ = bundle
    (root / name).unlink()
    result = _verify(root)
    assert result.returncode == 1 and "FAIL: " in result.stdout
    assert {"ledger-anchor.json": "ledger-anchor.json: missing",
            "ledger/tree-head.json": "ledger/tree-head.json: no valid signed tree head",
            "manifest.sig.json": "manifest.json: not signed by a site key"}[name] in result.stdout  # fmt: skip


def test_an_edited_manifest_fails_its_signature(bundle) -> None:
    root, _ = bundle
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["exported_by"] = "someone else"
    (root / "manifest.json").write_text(json.dumps(manifest))
    result = _verify(root)
    assert result.returncode == 1 and "manifest.json: not signed by a site key" in result.stdout


def test_a_bundle_signed_by_a_key_outside_the_site_key_list_fails(bundle) -> None:
    """A forger re-signs head, key list and manifest with a key of their own: the published fingerprint refuses it."""
    import base64

    import rfc8785
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from imaging import signing

    root, _ = bundle
    published = (root / "keys" / "site-public-key.fingerprint.txt").read_text().strip()
    forger = Ed25519PrivateKey.generate()
    fp = signing.key_fingerprint(forger.public_key())
    sign = lambda doc: base64.b64encode(forger.sign(rfc8785.dumps(doc))).decode()  # noqa: E731
    keys = json.loads((root / "keys" / "site-keys.json").read_text())
    record = {**keys["keys"][0], "fingerprint": fp, "endorsed_by": None, "endorsement": None,
              "public_key_pem": signing.public_key_to_pem(forger.public_key()).decode()}  # fmt: skip
    body = {**{k: v for k, v in keys.items() if k != "signature"}, "keys": [record], "signed_by": fp}
    (root / "keys" / "site-keys.json").write_text(json.dumps({**body, "signature": sign(body)}))
    manifest = json.loads((root / "manifest.json").read_text())
    head = {k: v for k, v in manifest["tree_head"].items() if k != "signature"} | {"key_fingerprint": fp}
    manifest["tree_head"] = {**head, "signature": sign(head)}
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "manifest.sig.json").write_text(json.dumps({"key_fingerprint": fp, "signature": sign(manifest)}))
    result = _verify(root, "--fingerprint", published)
    assert result.returncode == 1
    assert "keys/site-keys.json: not a key list the trusted key vouches for" in result.stdout, result.stdout
    assert "not in the site key list" in result.stdout


def test_ledger_api_signs_heads_and_serves_proofs(ctx, client, headers) -> None:
    sanitised_device(ctx, "DEV-L", ("L-M1",))
    assert client.get("/api/ledger/proofs/DEV-L", headers=headers["auditor"]).status_code == 404  # no head yet
    assert client.post("/api/ledger/heads", headers=headers["auditor"]).status_code == 403
    first = client.post("/api/ledger/heads", headers=headers["admin"])
    assert first.status_code == 201, first.text
    size = first.json()["tree_size"]
    move(ctx, sanitised_device(ctx, "DEV-M", ("M-M1",))[0], Event.REDISTRIBUTE, to_custodian="school:9")
    report = client.get("/api/ledger/verify", headers=headers["auditor"]).json()
    assert report["ok"] and report["signed_size"] == size and report["unsigned_tail"] > 0
    assert client.post("/api/ledger/heads", headers=headers["admin"]).status_code == 201
    proof = client.get("/api/ledger/proofs/DEV-L", headers=headers["auditor"])
    assert proof.status_code == 200 and len(proof.json()["entries"]) == 3
    assert client.get("/api/ledger/proofs/DEV-L", headers=headers["technician"]).status_code == 403
    consistency = client.get("/api/ledger/consistency", params={"old": size}, headers=headers["auditor"])
    assert consistency.status_code == 200 and consistency.json()["old"]["tree_size"] == size
    heads = client.get("/api/ledger/heads", headers=headers["auditor"]).json()
    assert [h["tree_size"] for h in heads] == [size, size + 4]
    missing = client.get("/api/ledger/consistency", params={"old": 99999}, headers=headers["auditor"])
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
