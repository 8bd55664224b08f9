"""The published format: the auditor's script verifies offline, and the document names every field."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import rfc8785
from test_certificate import CERT_ID, SIGNING_KEY, leaf_paths, signed_envelope

from imaging import signing
from imaging.certificate import dumps_envelope

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCRIPT = DOCS / "verify_certificate_example.py"


@pytest.fixture
def files(tmp_path):
    envelope = signed_envelope()
    cert = tmp_path / "cert.json"
    cert.write_bytes(dumps_envelope(envelope))
    key = tmp_path / "site.pub.pem"
    key.write_bytes(signing.public_key_to_pem(SIGNING_KEY.public_key()))
    return envelope, cert, key


def run_script(cert: Path, key: Path) -> subprocess.CompletedProcess[str]:
    # -I: isolated mode, so the script cannot lean on this project's modules.
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(cert), str(key)], capture_output=True, text=True, timeout=60
    )


def test_example_script_accepts_a_good_certificate(files):
    envelope, cert, key = files
    done = run_script(cert, key)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"VALID: certificate {CERT_ID} signed by ")
    assert envelope["signature"]["digest_sha256"] in done.stdout
    assert envelope["signature"]["key_fingerprint"] in done.stdout


def test_example_script_rejects_a_tampered_certificate(files):
    envelope, cert, key = files
    envelope["certificate"]["sanitisation"]["level_achieved"] = "destroy"
    cert.write_bytes(dumps_envelope(envelope))
    done = run_script(cert, key)
    assert done.returncode == 1
    assert done.stdout.strip() == "INVALID: digest mismatch: certificate content changed"


def test_example_script_rejects_a_recomputed_digest_and_a_wrong_key(files, tmp_path):
    envelope, cert, key = files
    envelope["certificate"]["media"]["serial_number"] = "SOMEONE-ELSES-DISK"
    envelope["signature"]["digest_sha256"] = hashlib.sha256(rfc8785.dumps(envelope["certificate"])).hexdigest()
    cert.write_bytes(dumps_envelope(envelope))
    done = run_script(cert, key)
    assert done.returncode == 1
    assert done.stdout.startswith("INVALID: signature invalid for key SHA256:")

    other_key = tmp_path / "other.pem"
    other_key.write_bytes(signing.public_key_to_pem(signing.generate_private_key().public_key()))
    done = run_script(cert, other_key)
    assert done.returncode == 1
    assert done.stdout.startswith("INVALID: key fingerprint mismatch")


def test_example_script_reports_malformed_input(files, tmp_path):
    envelope, cert, key = files
    del envelope["signature"]["value"]
    cert.write_bytes(json.dumps(envelope).encode())
    done = run_script(cert, key)
    assert (done.returncode, done.stdout.strip()) == (1, "INVALID: missing field 'signature.value'")
    (tmp_path / "junk.json").write_text("{nope")
    assert run_script(tmp_path / "junk.json", key).returncode == 1


def documented_name(path: tuple) -> str:
    """("sanitisation", "commands", 0, "argv", 2) -> "sanitisation.commands[].argv" (list items unnamed)."""
    name = ""
    for part in path:
        name += "[]" if isinstance(part, int) else (f".{part}" if name else part)
    return name.removesuffix("[]")


def test_format_document_names_every_certificate_field():
    text = (DOCS / "certificate-format.md").read_text()
    documented = set(re.findall(r"^\| `([a-z0-9_.\[\]]+)` \|", text, flags=re.MULTILINE))
    fields = {documented_name(path) for path in leaf_paths(signed_envelope()["certificate"])}
    missing = fields - documented
    assert not missing, f"fields missing from docs/certificate-format.md: {sorted(missing)}"
    envelope_fields = {"format", "schema_version", "certificate"} | {
        f"signature.{name}" for name in signed_envelope()["signature"]
    }
    assert envelope_fields <= documented
