"""The auditor's standalone script and ``factory cert verify`` agree on every forged variant of a
real certificate (made by ``factory wipe``): both reject each forgery, both accept the genuine one
however it is spelled. The script runs in a subprocess that imports nothing of this project."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from forged_certificates import corpus
from typer.testing import CliRunner

from factory.cli.main import app
from imaging import signing

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "verify_certificate_example.py"
runner = CliRunner()

# Loads the script by path and runs its main() on each file: one process for the whole corpus.
_RUN_SCRIPT = """
import contextlib, importlib.util, io, json, sys
spec = importlib.util.spec_from_file_location("verify_example", sys.argv[1])
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)
key, verdicts = sys.argv[2], {}
for path in sys.argv[3:]:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = script.main(["verify", path, key])
    verdicts[path] = [code, out.getvalue().strip()]
leaked = sorted({m.split(".")[0] for m in sys.modules} & {"factory", "imaging", "api", "hardware_drivers"})
print(json.dumps({"verdicts": verdicts, "leaked": leaked}))
"""


@pytest.fixture(scope="module")
def real_certificate(tmp_path_factory) -> tuple[dict, Path, Path]:
    """A certificate from ``factory wipe`` on a file (a non-ASCII operator, so encodings differ)."""
    root = tmp_path_factory.mktemp("corpus")
    env = {"FACTORY_HOME": str(root / "home")}
    assert runner.invoke(app, ["keys", "init"], env=env).exit_code == 0
    disk = root / "disk.img"
    disk.write_bytes(b"\xa5" * (4 << 20))
    cert = root / "cert.json"
    done = runner.invoke(app, ["wipe", str(disk), "--yes", "--out", str(cert), "--operator", "Zoë Ångström"], env=env)
    assert done.exit_code == 0, done.output
    keys = root / "home" / "keys"
    return json.loads(cert.read_text()), keys / "site-signing-key.pem", keys / "site-signing-key.pub.pem"


def _factory_accepts(path: Path, public_key: Path) -> bool:
    done = runner.invoke(app, ["cert", "verify", str(path), "--key", str(public_key)])
    assert done.exit_code in (0, 1) and (done.exception is None or isinstance(done.exception, SystemExit)), (
        f"{path.name}: {done.exception!r}"
    )
    return done.exit_code == 0


def _script_verdicts(paths: list[Path], public_key: Path) -> dict[str, tuple[int, str]]:
    done = subprocess.run(
        [sys.executable, "-I", "-c", _RUN_SCRIPT, str(SCRIPT), str(public_key), *map(str, paths)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["leaked"] == [], "the standalone script imported project modules"
    return {path: (code, line) for path, (code, line) in answer["verdicts"].items()}


@pytest.mark.slow
def test_the_script_and_factory_cert_verify_agree_on_every_variant(real_certificate, tmp_path) -> None:
    envelope, private_pem, public_key = real_certificate
    forged, equivalent = corpus(envelope, signing.private_key_from_pem(private_pem.read_bytes()))
    assert len(forged) >= 350 and len({name for name, _ in forged + equivalent}) == len(forged) + len(equivalent)
    files: dict[Path, tuple[str, bool]] = {}
    for n, (name, data) in enumerate(forged + equivalent):
        path = tmp_path / f"{n:04d}.json"
        path.write_bytes(data)
        files[path] = (name, n >= len(forged))
    script = _script_verdicts(list(files), public_key)
    wrong = []
    for path, (name, genuine) in files.items():
        code, line = script[str(path)]
        by_factory, by_script = _factory_accepts(path, public_key), code == 0
        if (by_factory, by_script) != (genuine, genuine):
            wrong.append(f"{name}: factory {'accepts' if by_factory else 'rejects'}, script {line!r}")
        assert line.startswith("VALID: " if genuine else "INVALID: "), f"{name}: {line!r}"
    assert not wrong, f"{len(wrong)} of {len(files)} variants judged wrongly:\n" + "\n".join(wrong)


def test_the_script_names_what_the_format_forbids(real_certificate, tmp_path) -> None:
    envelope, _private, public_key = real_certificate
    text = json.dumps(envelope)
    cases = {
        "duplicate": text.replace('"format": ', '"format": "x", "format": ', 1),
        "version-float": text.replace('"schema_version": 2, "certificate"', '"schema_version": 2.0, "certificate"'),
        "version-bool": text.replace('"schema_version": 2, "certificate"', '"schema_version": true, "certificate"'),
        "extra": json.dumps({**envelope, "note": "unsigned"}),
    }
    paths = []
    for name, body in cases.items():
        assert body != text, name
        (tmp_path / name).write_text(body)
        paths.append(tmp_path / name)
    lines = {Path(p).name: line for p, (_code, line) in _script_verdicts(paths, public_key).items()}
    assert lines == {
        "duplicate": "INVALID: duplicate member 'format'",
        "version-float": "INVALID: 'format' must be a string and 'schema_version' an integer",
        "version-bool": "INVALID: 'format' must be a string and 'schema_version' an integer",
        "extra": "INVALID: unexpected field 'note'",
    }


def test_the_offline_bundle_checker_rejects_every_forged_variant(real_certificate) -> None:
    """factory/audit/verify_bundle.py checks a bundle's certificates the same way (file read as UTF-8)."""
    from factory.audit import verify_bundle

    envelope, private_pem, public_pem = real_certificate
    key = verify_bundle.load_key(public_pem)
    forged, equivalent = corpus(envelope, signing.private_key_from_pem(private_pem.read_bytes()))

    def accepted(data: bytes) -> bool:
        try:
            verify_bundle.verify_certificate(verify_bundle.loads(data.decode("utf-8")), key)
        except (ValueError, TypeError, KeyError):  # what the bundle checker reports as a problem
            return False
        return True

    assert [name for name, data in forged if accepted(data)] == []
    assert [name for name, data in equivalent if not accepted(data)] == []
