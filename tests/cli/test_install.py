"""scripts/install.sh lays the service into a root folder: units that ``systemd-analyze verify``
passes without a word, the settings file every unit reads, the user, and folders with the right
owners and modes. Laid into a temporary root; a live system is not touched."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from harness.requirements import require_root, require_tool

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "scripts" / "install.sh"
UNITS = sorted(p.name for p in (REPO / "deploy" / "systemd").iterdir())
PROGRAMS = ("factory", "factory-keep-anchor", "factory-backup")  # in opt/factory/bin
# The system's own configuration the install adds to: everyone reads it, root alone writes it.
SYSTEM_FILES = (
    "etc/udev/rules.d/60-factory-nvme.rules",
    "usr/lib/sysusers.d/factory.conf",
    "usr/lib/tmpfiles.d/factory.conf",
    *(f"etc/systemd/system/{unit}" for unit in UNITS),
)
# (path, mode, owner, group) of what the install creates; "factory" is the user it creates in the root.
LAYOUT = [
    ("etc/factory", 0o750, "root", "factory"),
    ("etc/factory/benches", 0o750, "root", "factory"),
    ("etc/factory/factory.env", 0o640, "root", "factory"),
    ("var/lib/factory", 0o700, "factory", "factory"),
    ("var/backups/factory", 0o700, "factory", "factory"),
    ("var/lib/factory-anchors", 0o755, "root", "root"),
    *((f"opt/factory/bin/{program}", 0o755, "root", "root") for program in PROGRAMS),
    *((path, 0o644, "root", "root") for path in SYSTEM_FILES),
]


def _install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), *args], capture_output=True, text=True, timeout=600, check=False
    )


def _ids(root: Path, table: str) -> dict[str, int]:
    return {line.split(":")[0]: int(line.split(":")[2]) for line in (root / "etc" / table).read_text().splitlines()}


def _analyze_in(root: Path) -> str:
    """systemd-analyze, with systemd's own units laid into ``root``: it resolves the units'
    dependencies (multi-user.target, ...) inside the root."""
    analyze = require_tool("systemd-analyze")
    system = root / "usr/lib/systemd/system"
    if not system.exists():
        shutil.copytree("/usr/lib/systemd/system", system, symlinks=True)
    return analyze


@pytest.fixture(scope="module")
def laid_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    require_tool("systemd-sysusers")
    root = tmp_path_factory.mktemp("root")
    done = _install(root, "--no-venv")
    assert done.returncode == 0, done.stderr
    return root


def test_install_lays_units_config_user_and_private_folders(laid_root: Path) -> None:
    users, groups = _ids(laid_root, "passwd"), _ids(laid_root, "group")
    passwd = {line.split(":")[0]: line.split(":") for line in (laid_root / "etc/passwd").read_text().splitlines()}
    assert passwd["factory"][5:] == ["/var/lib/factory", "/usr/sbin/nologin"]
    for rel, mode, owner, group in LAYOUT:
        info = (laid_root / rel).lstat()
        assert stat.S_IMODE(info.st_mode) == mode, f"{rel}: {oct(stat.S_IMODE(info.st_mode))}"
        assert info.st_uid == users.get(owner, 0), rel
        assert info.st_gid == groups.get(group, 0), rel
    assert os.readlink(laid_root / "usr/local/bin/factory") == "/opt/factory/bin/factory"
    app = laid_root / "opt/factory/app"
    assert (app / "pyproject.toml").read_bytes() == (REPO / "pyproject.toml").read_bytes()
    assert (app / "playbooks").is_dir() and not (app / ".venv").exists() and not (app / ".git").exists()


def test_every_variable_the_units_use_is_in_the_documented_settings_file(laid_root: Path) -> None:
    env_text = (laid_root / "etc/factory/factory.env").read_text()
    defined = dict(re.findall(r"^([A-Z_]+)=(.*)$", env_text, re.M))
    used: set[str] = set()
    for unit in UNITS:
        text = (laid_root / "etc/systemd/system" / unit).read_text()
        used |= set(re.findall(r"\$\{?([A-Z_]+)\}?", text))
        if unit.endswith(".service"):
            assert "EnvironmentFile=/etc/factory/factory.env" in text, unit
    assert used and used <= set(defined), used - set(defined)
    # Every setting sits in a paragraph whose comment explains it.
    for paragraph in env_text.split("\n\n"):
        names = re.findall(r"^([A-Z_]+)=", paragraph, re.M)
        assert not names or paragraph.startswith("# "), names
    assert defined["FACTORY_HOME"] == "/var/lib/factory"


def test_services_are_hardened_and_only_the_agent_holds_the_erase_capabilities(laid_root: Path) -> None:
    for unit in (u for u in UNITS if u.endswith(".service")):
        text = (laid_root / "etc/systemd/system" / unit).read_text()
        for directive in ("User=factory", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes"):
            assert f"\n{directive}\n" in text, f"{unit}: {directive}"
        bounding = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M)
        assert bounding is not None, unit
        expected = "CAP_SYS_RAWIO CAP_SYS_ADMIN" if unit == "factory-agent@.service" else ""
        assert bounding.group(1) == expected, unit
    for unit in ("factory-api.service", "factory-agent@.service"):
        text = (laid_root / "etc/systemd/system" / unit).read_text()
        assert "Type=notify" in text and re.search(r"^WatchdogSec=\d+$", text, re.M), unit


@pytest.mark.parametrize("unit", [u.replace("@.", "@bench-1.") for u in UNITS])
def test_systemd_analyze_verify_is_clean(laid_root: Path, unit: str) -> None:
    analyze = _analyze_in(laid_root)
    done = subprocess.run([analyze, "verify", f"--root={laid_root}", unit], capture_output=True, text=True, check=False)
    # verify exits 0 on a misspelt directive and only prints a warning: clean means silent too.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.parametrize("unit", [u.replace("@.", "@bench-1.") for u in UNITS if u.endswith(".service")])
def test_exposure_stays_low(laid_root: Path, unit: str) -> None:
    """systemd's own hardening review: exposure 3.0 or less on its 0-10 scale (OK), agent included."""
    analyze = _analyze_in(laid_root)
    done = subprocess.run(
        [analyze, "security", "--offline=yes", "--threshold=30", f"--root={laid_root}", unit],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-400:] + done.stderr


def test_reinstall_keeps_the_operators_settings_and_refreshes_the_rest(tmp_path: Path) -> None:
    require_root()
    require_tool("systemd-sysusers")
    assert _install(tmp_path, "--no-venv").returncode == 0
    env = tmp_path / "etc/factory/factory.env"
    env.write_text(env.read_text().replace("FACTORY_SITE=device-factory", "FACTORY_SITE=Example Police"))
    stale = tmp_path / "opt/factory/app/stale.py"
    stale.write_text("left over from an older version\n")
    again = _install(tmp_path, "--no-venv")
    assert again.returncode == 0, again.stderr
    assert "FACTORY_SITE=Example Police" in env.read_text()
    assert "kept /etc/factory/factory.env" in again.stdout
    assert (tmp_path / "etc/factory/factory.env.dist").read_bytes() == (REPO / "deploy/factory.env").read_bytes()
    assert not stale.exists()
    assert _ids(tmp_path, "passwd")["factory"] == _ids(tmp_path, "group")["factory"]


def test_install_refuses_an_unknown_option_in_one_line(tmp_path: Path) -> None:
    done = _install(tmp_path, "--frobnicate")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == ["install: unknown option '--frobnicate' (see --help)"]
    assert not (tmp_path / "etc").exists()


def test_kept_anchor_is_root_owned_read_only_and_never_replaced(tmp_path: Path) -> None:
    require_root()
    head = tmp_path / "head.json"
    head.write_text('{\n  "seq": 42,\n  "entry_hash": "ab"\n}\n')
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    earlier = anchors / "head-20260101T000000Z-seq7.json"
    earlier.write_text("kept before\n")
    keep = REPO / "deploy/bin/factory-keep-anchor"
    try:
        done = subprocess.run([str(keep), str(head), str(anchors)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        (kept,) = (p for p in anchors.iterdir() if p != earlier)
        assert re.fullmatch(r"head-\d{8}T\d{6}Z-seq42\.json", kept.name)
        assert kept.read_bytes() == head.read_bytes() and earlier.read_text() == "kept before\n"
        info = kept.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o444, 0)
        empty = tmp_path / "empty.json"
        empty.touch()
        refused = subprocess.run([str(keep), str(empty), str(anchors)], capture_output=True, text=True, check=False)
        assert refused.returncode == 1 and "no signed head" in refused.stderr
    finally:
        subprocess.run(["chattr", "-i", *map(str, anchors.iterdir())], capture_output=True, check=False)


@pytest.mark.slow
def test_installed_command_runs_from_its_venv_with_the_settings_file() -> None:
    """The whole install, venv included (from PyPI), then the laid-out ``factory`` run as an ordinary
    user: settings come from the env file, and the caller's own environment wins over it."""
    require_root()
    require_tool("systemd-sysusers")
    root = Path(tempfile.mkdtemp(prefix="factory-install-", dir="/tmp"))  # reachable by nobody, unlike tmp_path
    try:
        root.chmod(0o755)
        done = _install(root)
        assert done.returncode == 0, done.stdout + done.stderr
        data = root / "data"
        data.mkdir()
        os.chown(data, 65534, 65534)
        env_file = root / "site.env"
        env_file.write_text(f"# test site\nFACTORY_HOME={data / 'from-file'}\nFACTORY_SITE=Test\n")
        as_nobody = [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "env",
            f"FACTORY_ENV_FILE={env_file}",
        ]
        command = str(root / "opt/factory/bin/factory")
        for extra, home in (([], "from-file"), ([f"FACTORY_HOME={data / 'from-caller'}"], "from-caller")):
            ran = subprocess.run([*as_nobody, *extra, command, "db", "upgrade"], capture_output=True, text=True)
            assert ran.returncode == 0, ran.stderr
            db = data / home / "factory.db"
            assert (stat.S_IMODE(db.stat().st_mode), db.stat().st_uid) == (0o600, 65534)
            assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    finally:
        shutil.rmtree(root)
