"""``factory wipe`` and ``factory cert verify`` end to end, on a regular file and a loop device."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "imaging"))

from harness.disks import assert_every_byte, loop_device, make_image, plant
from harness.fuse_faults import faulty_image
from harness.requirements import require_root, require_tool

from factory.cli.main import app

SIZE = 16 * 2**20
runner = CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("FACTORY_HOME", str(home))
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    return home


def _wipe(target: str, out: Path, *extra: str):
    return runner.invoke(app, ["wipe", target, "--yes", "--out", str(out), *extra])


def test_wipe_file_certificate_verifies_and_tamper_fails(home, tmp_path) -> None:
    disk = make_image(tmp_path / "disk.img", SIZE)
    plant(str(disk), SIZE)
    cert, pdf = tmp_path / "cert.json", tmp_path / "cert.pdf"
    r = _wipe(str(disk), cert, "--pdf", str(pdf), "--verify", "full", "--operator", "alice")
    assert r.exit_code == 0, r.output
    envelope = json.loads(cert.read_text())
    # The default overwrite: a keyed random stream whose key the certificate records.
    sanitisation = envelope["certificate"]["sanitisation"]
    assert (sanitisation["method"], sanitisation["pattern"]) == ("overwrite-random", "random")
    assert_every_byte(str(disk), SIZE, "random", sanitisation["pattern_seed_hex"])
    assert envelope["certificate"]["verification"]["passed"] is True
    assert envelope["certificate"]["personnel"]["sanitised_by"]["name"] == "alice"
    assert envelope["certificate"]["certificate_id"] in PdfReader(str(pdf)).pages[0].extract_text()
    ok = runner.invoke(app, ["cert", "verify", str(cert)])
    assert ok.exit_code == 0 and "verifies" in ok.stdout
    envelope["certificate"]["sanitisation"]["bytes_written"] += 1
    cert.write_text(json.dumps(envelope))
    bad = runner.invoke(app, ["cert", "verify", str(cert)])
    assert bad.exit_code == 1 and "digest mismatch" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_cert_verify_with_wrong_key_fails(home, tmp_path) -> None:
    disk = make_image(tmp_path / "disk.img", SIZE)
    cert = tmp_path / "cert.json"
    assert _wipe(str(disk), cert, "--method", "random").exit_code == 0
    other_home = tmp_path / "other"
    other = runner.invoke(app, ["keys", "init"], env={"FACTORY_HOME": str(other_home)})
    assert other.exit_code == 0
    r = runner.invoke(
        app, ["cert", "verify", str(cert), "--key", str(other_home / "keys" / "site-signing-key.pub.pem")]
    )
    assert r.exit_code == 1 and "does not verify" in r.stderr


def test_wipe_needs_yes_and_a_real_target(home, tmp_path) -> None:
    disk = make_image(tmp_path / "disk.img", SIZE)
    plant(str(disk), SIZE)
    r = runner.invoke(app, ["wipe", str(disk)])
    assert r.exit_code == 1 and "without --yes" in r.stderr
    r = _wipe(str(tmp_path / "missing"), tmp_path / "c.json")
    assert r.exit_code == 1 and "nothing written" in r.stderr and not (tmp_path / "c.json").exists()
    r = _wipe(str(disk), tmp_path / "c.json", "--level", "purge")  # a file cannot be purged
    assert r.exit_code == 1 and "nothing written" in r.stderr and not (tmp_path / "c.json").exists()


def _planted_image(path: Path) -> Path:
    """A disk image with data planted across it, for a loop device (needs root and losetup)."""
    require_root()
    require_tool("losetup")
    image = make_image(path, SIZE)
    plant(str(image), SIZE)
    return image


def test_failed_wipe_writes_no_certificate(home, tmp_path) -> None:
    image = _planted_image(tmp_path / "ro.img")
    cert = tmp_path / "cert.json"
    with loop_device(image, "--read-only") as dev:
        r = _wipe(dev, cert)
    assert r.exit_code == 1, r.output
    assert not cert.exists() and "no certificate" in r.stderr
    reports = list((home / "reports").glob("wipe-failed-*.json"))
    assert len(reports) == 1 and json.loads(reports[0].read_text())["result"]["ok"] is False


def test_wipe_loop_device_end_to_end(home, tmp_path) -> None:
    image = _planted_image(tmp_path / "rw.img")
    cert = tmp_path / "cert.json"
    with loop_device(image) as dev:
        r = _wipe(dev, cert, "--method", "ones", "--verify", "sample")
        assert r.exit_code == 0, r.output
        assert_every_byte(dev, SIZE, "ones")
    doc = json.loads(cert.read_text())["certificate"]
    assert doc["verification"]["mode"] == "full" or doc["verification"]["coverage"] >= 0.1
    assert runner.invoke(app, ["cert", "verify", str(cert)]).exit_code == 0


def test_wipe_of_a_medium_that_drops_writes_is_not_certified(home, tmp_path) -> None:
    """A loop device over a FUSE file that acknowledges writes, stores nothing and reads zeros."""
    require_root()
    require_tool("losetup")
    require_tool("fusermount")
    pytest.importorskip("fuse", reason="needs fusepy")
    image = make_image(tmp_path / "backing.img", SIZE)
    cert = tmp_path / "cert.json"
    with faulty_image(image, tmp_path / "mnt", discard_writes=True) as exposed, loop_device(exposed) as dev:
        refused = _wipe(dev, cert)
        zeros = _wipe(dev, tmp_path / "zeros.json", "--method", "zeros")
    assert refused.exit_code == 1 and not cert.exists(), refused.output
    assert "verification failed" in refused.stderr and "no certificate" in refused.stderr
    report = json.loads(next((home / "reports").glob("wipe-failed-*.json")).read_text())["result"]
    assert (report["ok"], report["method"], report["pattern"]) == (False, "overwrite-random", "random")
    # Asked for explicitly, zeros stay available, and this lying medium passes them: why they are not the default.
    assert zeros.exit_code == 0, zeros.output
