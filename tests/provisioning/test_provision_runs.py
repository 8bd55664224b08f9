"""End-to-end provisioning through the runner adapter against real, namespaced sshd targets."""

from __future__ import annotations

import dataclasses
import json
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.provisioning_site import (
    ENROLMENT_TOKEN,
    RecordingSink,
    provision_target,
    secrets,
    site,
    site_ca_pem,
)
from harness.requirements import require_root, require_tool
from harness.sshd import SshdTarget, sshd_targets

from factory.provisioning.service import (
    HostStatus,
    ProvisionOutcome,
    ProvisionTarget,
    RunnerOptions,
    RunStatus,
    run_provision,
)
from hardware_drivers.ssh import connect

FAST = RunnerOptions(forks=3, timeout_s=240, max_attempts=1)


pytestmark = pytest.mark.slow  # Ansible runs against sshd targets in namespaces


def _require_environment() -> None:
    require_root()
    for tool in ("sshd", "unshare", "ssh", "ssh-keygen"):
        require_tool(tool)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[SshdTarget]]:
    _require_environment()
    with sshd_targets(tmp_path_factory.mktemp("fleet"), 3) as targets:
        yield targets


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("provision-jobs")


@pytest.fixture(scope="module")
def first_run(fleet: list[SshdTarget], work_dir: Path) -> tuple[ProvisionOutcome, RecordingSink]:
    sink = RecordingSink()
    targets = [provision_target(t, i) for i, t in enumerate(fleet)]
    outcome = run_provision("job-first", targets, site(), secrets(), sink, work_dir, FAST)
    return outcome, sink


@pytest.fixture(scope="module")
def second_run(
    first_run: tuple[ProvisionOutcome, RecordingSink], fleet: list[SshdTarget], work_dir: Path
) -> tuple[ProvisionOutcome, RecordingSink]:
    sink = RecordingSink()
    targets = [provision_target(t, i) for i, t in enumerate(fleet)]
    outcome = run_provision("job-second", targets, site(), secrets(), sink, work_dir, FAST)
    return outcome, sink


@pytest.fixture
def lone(tmp_path: Path) -> Iterator[SshdTarget]:
    _require_environment()
    with sshd_targets(tmp_path / "lone", 1, prefix="lone") as targets:
        yield targets[0]


def _live_hostname(t: SshdTarget) -> str:
    with connect("127.0.0.1", t.port, "root", t.client_key, t.host_key_pub) as session:
        return session.run("hostname", timeout=10).stdout.strip()


def test_full_provision_on_three_hosts(
    first_run: tuple[ProvisionOutcome, RecordingSink], fleet: list[SshdTarget]
) -> None:
    outcome, sink = first_run
    assert outcome.status is RunStatus.SUCCESSFUL, outcome.reason
    assert set(outcome.hosts) == {t.serial for t in fleet}
    for host in outcome.hosts.values():
        assert host.ok and host.attempts == 1
        assert host.stats["failures"] == 0 and host.stats["unreachable"] == 0
        assert host.stats["changed"] >= 4  # base files, enrolment, live hostname, profile, AT
    assert sink.final_stats == outcome.stats

    laptop, vehicle, desktop = (t.root for t in fleet)
    for i, (t, root) in enumerate(zip(fleet, (laptop, vehicle, desktop), strict=True)):
        hostname = f"df-{t.serial[-5:-1]}-{i + 1:02d}".lower()
        assert (root / "etc/hostname").read_text() == f"{hostname}\n"
        assert _live_hostname(t) == hostname  # applied inside the target's own UTS namespace
        assert (root / "etc/timezone").read_text() == "Europe/London\n"
        assert (root / "etc/localtime").readlink() == Path("/usr/share/zoneinfo/Europe/London")
        ca = root / "usr/local/share/ca-certificates/device-factory-site-ca.crt"
        assert ca.read_text().strip() == site_ca_pem().strip()
        enrolment = root / "etc/device-factory/enrolment.conf"
        assert stat.S_IMODE(enrolment.stat().st_mode) == 0o600
        conf = enrolment.read_text()
        assert f"device_serial = {t.serial}" in conf
        assert f"token = {ENROLMENT_TOKEN}" in conf  # the device needs it to enrol
        assert "server_url = https://mdm.devicefactory.test/enrol" in conf
        profile = json.loads((root / "etc/device-factory/profile.json").read_text())
        assert profile["serial"] == t.serial and profile["hostname"] == hostname
    assert socket.gethostname() not in {"df-0001-01", "df-0002-02", "df-0003-03"}

    assert json.loads((vehicle / "etc/device-factory/profile.json").read_text())["vehicle_fleet_number"] == ("FL2093")
    tether = vehicle / "etc/NetworkManager/system-connections/df-vehicle-tether.nmconnection"
    assert "ssid=VEH-FL2093" in tether.read_text()
    assert stat.S_IMODE(tether.stat().st_mode) == 0o600
    assert "fleet_number = FL2093" in (vehicle / "etc/device-factory/profile.d/50-vehicle-tablet.conf").read_text()
    assert (laptop / "etc/device-factory/profile.d/50-laptop.conf").exists()
    assert (desktop / "etc/device-factory/profile.d/50-desktop.conf").exists()
    assert not (laptop / "etc/NetworkManager").exists()

    dconf = (laptop / "etc/dconf/db/local.d/50-device-factory-accessibility").read_text()
    assert "screen-reader-enabled=true" in dconf and "screen-magnifier-enabled=true" in dconf
    assert "high-contrast=false" in dconf
    record = json.loads((laptop / "etc/device-factory/accessibility/pc4711.json").read_text())
    assert record["features"] == ["screen_reader", "magnifier"]
    markers = {p.name for p in (laptop / "var/lib/device-factory/packages").iterdir()}
    assert markers == {"orca.present", "magnus.present"}
    assert "high-contrast=true" in (desktop / "etc/dconf/db/local.d/50-device-factory-accessibility").read_text()
    markers = {p.name for p in (desktop / "var/lib/device-factory/packages").iterdir()}
    assert markers == {"gnome-themes-extra.present", "pocketsphinx.present"}
    assert not (vehicle / "var/lib/device-factory/packages").exists()

    qa = [e for e in sink.events if e[1].startswith("qa : QA ") and e[2] == "ok"]
    assert len(qa) == 3 * 3
    # The job's ControlPersist masters were shut down: no later job can reuse them.
    assert not [p for p in (outcome.private_data_dir / "cp").rglob("*") if p.is_socket()]
    # Facts stay in Ansible's memory, as with plain ansible-playbook: no per-host cache files.
    assert not list(outcome.private_data_dir.rglob("fact_cache"))


def test_second_run_changes_nothing(second_run: tuple[ProvisionOutcome, RecordingSink]) -> None:
    outcome, sink = second_run
    assert outcome.status is RunStatus.SUCCESSFUL, outcome.reason
    assert {h: s["changed"] for h, s in outcome.stats.items()} == dict.fromkeys(outcome.hosts, 0)
    assert not [e for e in sink.events if e[3]], "no task may report a change"


def test_secret_never_in_logs_or_stored_events(
    first_run: tuple[ProvisionOutcome, RecordingSink],
    second_run: tuple[ProvisionOutcome, RecordingSink],
    work_dir: Path,
) -> None:
    for _, sink in (first_run, second_run):
        assert ENROLMENT_TOKEN not in sink.text()
        assert ENROLMENT_TOKEN not in repr(sink.events)
        assert any("Write the device-management enrolment configuration" in line for line in sink.lines)
        # The runner's 'starting' status payload (the job's environment) is never logged.
        assert not [line for line in sink.lines if "ANSIBLE_SSH_CONTROL_PATH_DIR" in line]
    stored = [p for p in work_dir.rglob("*") if p.is_file()]
    # The sink is the event record: ansible-runner keeps no per-event files.
    assert not [p for p in stored if "job_events" in p.parts]
    artifacts = first_run[0].private_data_dir / "artifacts/job-first"
    # ansible-runner's record of the environment and the display text, moved in after the run.
    assert {"command", "stdout", "rc", "status"} <= {p.name for p in artifacts.iterdir()}
    assert "Write the device-management enrolment configuration" in (artifacts / "stdout").read_text()
    leaks = [p for p in stored if ENROLMENT_TOKEN.encode() in p.read_bytes()]
    assert leaks == []
    vault = first_run[0].private_data_dir / "secrets.vault.yml"
    assert vault.read_bytes().startswith(b"$ANSIBLE_VAULT;1.2;AES256;df")


def test_qa_failure_fails_the_run_naming_the_task(lone: SshdTarget, tmp_path: Path) -> None:
    lone.encryption_marker.unlink()
    sink = RecordingSink()
    outcome = run_provision("job-qa", [provision_target(lone)], site(), secrets(), sink, tmp_path, FAST)

    assert outcome.status is RunStatus.FAILED
    host = outcome.hosts[lone.serial]
    assert host.status is HostStatus.FAILED
    assert host.failed_task == "qa : QA disk encryption is on"
    assert "disk encryption is off" in (host.reason or "")
    assert "qa : QA disk encryption is on" in (outcome.reason or "")
    assert (lone.serial, "qa : QA disk encryption is on", "failed", False) in sink.events
    assert host.stats["failures"] == 1


def test_mismatching_host_key_is_refused_and_target_untouched(lone: SshdTarget, tmp_path: Path) -> None:
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong_pin = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    before = sorted(p.relative_to(lone.root) for p in lone.root.rglob("*"))
    sink = RecordingSink()
    options = RunnerOptions(forks=1, timeout_s=120, max_attempts=3, backoff_initial_s=0.1)
    outcome = run_provision(
        "job-mismatch", [provision_target(lone, host_key=wrong_pin)], site(), secrets(), sink, tmp_path, options
    )

    host = outcome.hosts[lone.serial]
    assert outcome.status is RunStatus.FAILED
    assert host.status is HostStatus.HOST_KEY_REJECTED
    assert "host key rejected" in (host.reason or "")
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in sink.text()  # OpenSSH's own words, logged
    assert outcome.attempts == 1, "a host-key rejection must never be retried"
    assert sorted(p.relative_to(lone.root) for p in lone.root.rglob("*")) == before
    assert "Accepted publickey" not in lone.log_path.read_text()


def test_ssh_cut_mid_run_fails_then_a_retry_succeeds(lone: SshdTarget, tmp_path: Path) -> None:
    def cut_on(host: str, task: str, status: str) -> None:
        if task.startswith("profile : ") and status == "started":
            lone.cut()

    sink = RecordingSink(on_task_event=cut_on)
    target = provision_target(lone)
    outcome = run_provision("job-cut", [target], site(), secrets(), sink, tmp_path, FAST)

    host = outcome.hosts[lone.serial]
    assert outcome.status is RunStatus.FAILED
    assert host.status is HostStatus.UNREACHABLE
    assert host.reason and ("ssh" in host.reason.lower() or "connect" in host.reason.lower())
    assert host.failed_task is not None and not host.failed_task.startswith(("base", "qa"))

    lone.start()
    retry = run_provision("job-cut-retry", [target], site(), secrets(), RecordingSink(), tmp_path, FAST)
    assert retry.status is RunStatus.SUCCESSFUL, retry.reason
    assert (lone.root / "etc/device-factory/profile.json").exists()


def test_unreachable_host_is_retried_with_backoff(lone: SshdTarget, tmp_path: Path) -> None:
    restarted = threading.Event()

    def cut_then_heal(host: str, task: str, status: str) -> None:
        if task.startswith("base : Write the hostname") and status == "started" and not restarted.is_set():
            lone.cut()
        elif status == "unreachable" and not restarted.is_set():
            lone.start()  # back before the backoff expires, as a re-seated cable would be
            restarted.set()

    sink = RecordingSink(on_task_event=cut_then_heal)
    options = RunnerOptions(forks=1, timeout_s=240, max_attempts=3, backoff_initial_s=0.5)
    outcome = run_provision("job-heal", [provision_target(lone)], site(), secrets(), sink, tmp_path, options)

    assert restarted.is_set()
    assert outcome.status is RunStatus.SUCCESSFUL, outcome.reason
    assert outcome.attempts == 2 and outcome.idents == ("job-heal", "job-heal.retry1")
    assert outcome.hosts[lone.serial].attempts == 2
    assert any("retrying unreachable" in line and "0.5s" in line for line in sink.lines)


def _slow_target(lone: SshdTarget) -> ProvisionTarget:
    """The same device, but every task's interpreter start takes a second longer.

    On an idle machine the lean play finishes in about a second, faster than a cancel or a
    deadline can land; a slowed interpreter makes "the run was stopped mid-play" deterministic.
    """
    slow = lone.root / "slow-python"
    slow.write_text('#!/bin/sh\nsleep 1\nexec /usr/bin/python3 "$@"\n')
    slow.chmod(0o755)
    return dataclasses.replace(provision_target(lone), python_interpreter=str(slow))


def test_cancel_stops_the_run(lone: SshdTarget, tmp_path: Path) -> None:
    cancel = threading.Event()

    def cancel_on(host: str, task: str, status: str) -> None:
        if task.startswith("base : ") and status == "started":
            cancel.set()

    sink = RecordingSink(on_task_event=cancel_on)
    outcome = run_provision("job-cancel", [_slow_target(lone)], site(), secrets(), sink, tmp_path, FAST, cancel=cancel)
    assert outcome.status is RunStatus.CANCELED
    assert outcome.hosts[lone.serial].status is HostStatus.INCOMPLETE
    # Stopped within the runner's polling interval: the QA gates never ran.
    assert not [e for e in sink.events if e[1].startswith("qa : ")]
    assert outcome.duration_s < 30


def test_job_timeout_stops_the_run(lone: SshdTarget, tmp_path: Path) -> None:
    options = RunnerOptions(forks=1, timeout_s=4, max_attempts=3)
    outcome = run_provision("job-timeout", [_slow_target(lone)], site(), secrets(), RecordingSink(), tmp_path, options)
    assert outcome.status is RunStatus.TIMEOUT
    assert outcome.hosts[lone.serial].status is HostStatus.INCOMPLETE
    assert outcome.attempts == 1 and outcome.duration_s < 15
