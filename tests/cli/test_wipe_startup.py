"""``factory wipe`` run as the user runs it (a new process, output not a terminal) loads only what
erasing and certifying need: its start-up counts against dd in benchmarks/wipe.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from factory.kernel.config import Settings
from factory.kernel.site_keys import init_keys

# Loaded only for what a scripted full-verify wipe does not do: the progress bars on a terminal
# (rich), planning a sample or counting differences (numpy), the database, the PDF.
NOT_NEEDED = ("rich", "numpy", "sqlalchemy", "reportlab", "fastapi")

_PROBE = """
import json, sys
sys.argv = ["factory", *json.loads(sys.argv[1])]
from factory.cli.main import app
code = None
try:
    app()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def test_a_scripted_full_verify_wipe_certifies_without_the_heavy_modules(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_keys(Settings(home=home, database_url=f"sqlite:///{home / 'factory.db'}", site_name="test-site"))
    disk = tmp_path / "disk.img"
    disk.write_bytes(os.urandom(1 << 20) * 64)
    cert = tmp_path / "cert.json"
    args = ["wipe", str(disk), "--yes", "--method", "random", "--verify", "full", "--out", str(cert)]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "FACTORY_HOME": str(home)},
    )  # fmt: skip
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stderr
    assert done.stdout.startswith(f"erased and verified {disk}: overwrite-random") and done.stdout.count("\n") == 1
    loaded = {m.split(".")[0] for m in report["modules"]}
    assert not loaded & set(NOT_NEEDED), loaded & set(NOT_NEEDED)
    verification = json.loads(cert.read_bytes())["certificate"]["verification"]
    assert verification["mode"] == "full" and verification["passed"] and verification["mismatches"] == 0
    assert verification["bytes_read"] == 64 << 20  # every byte read back
    assert disk.read_bytes()[:4096] != bytes(4096)  # the random pattern, not zeros
