"""Inventory building, event routing and outcome classification, without any SSH."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from harness.provisioning_site import ENROLMENT_TOKEN, RecordingSink, secrets, site, site_ca_pem

from factory.provisioning import ansible_adapter
from factory.provisioning.ansible_adapter import HostStatus, _Attempt, _host_outcome
from factory.provisioning.events import EventRouter
from factory.provisioning.inventory import build_inventory, known_hosts_text
from factory.provisioning.service import (
    AccessibilityProfile,
    DeviceKind,
    InvalidTarget,
    ProvisionTarget,
    SiteSettings,
)

PIN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBlqmo5ElKw3cTJW8R6aGGcd3yVhqJ0mBzRh2a0Xz7Bq"


def _target(**overrides: object) -> ProvisionTarget:
    fields: dict[str, object] = {
        "serial": "5CG1234XYZ",
        "asset_tag": "DF-004211",
        "kind": DeviceKind.LAPTOP,
        "role": "response",
        "address": "127.0.0.1",
        "port": 2222,
        "user": "root",
        "private_key_path": Path("/keys/id_ed25519"),
        "host_key": PIN,
    }
    fields.update(overrides)
    return ProvisionTarget(**fields)  # type: ignore[arg-type]


def test_inventory_pins_host_key_by_serial(tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    target = _target(accessibility=AccessibilityProfile(user="pc4711", screen_reader=True))
    host = build_inventory([target], site(), kh)["all"]["hosts"]["5CG1234XYZ"]

    args = shlex.split(host["ansible_ssh_common_args"])
    assert f"UserKnownHostsFile={kh}" in args
    assert "StrictHostKeyChecking=yes" in args
    assert "HostKeyAlias=5CG1234XYZ" in args
    assert "HostKeyAlgorithms=ssh-ed25519" in args
    assert "GlobalKnownHostsFile=/dev/null" in args
    assert not [a for a in args if a.lower().startswith("stricthostkeychecking=") and a.endswith(("no", "new"))]
    assert known_hosts_text([target]) == f"5CG1234XYZ {PIN}\n"
    assert (host["ansible_host"], host["ansible_port"], host["ansible_user"]) == ("127.0.0.1", 2222, "root")

    df = host["device_factory"]
    assert df["kind"] == "laptop" and df["asset_tag"] == "DF-004211" and df["target_root"] == "/"
    assert df["accessibility"]["screen_reader"] is True
    assert df["enrolment"]["server_url"].startswith("https://")
    assert ENROLMENT_TOKEN not in repr(host), "secrets never go into the inventory"


def test_a_windows_target_gets_the_windows_branch_over_openssh(tmp_path: Path) -> None:
    profile = AccessibilityProfile.for_officer("PC-4711", {"screen_reader": True, "screen_reader_product": "jaws"})
    target = _target(os_family="windows", accessibility=profile)
    host = build_inventory([target], site(), tmp_path / "kh")["all"]["hosts"]["5CG1234XYZ"]
    assert host["ansible_shell_type"] == "powershell"  # Windows' OpenSSH server runs PowerShell
    df = host["device_factory"]
    assert df["os_family"] == "windows" and df["accessibility"]["screen_reader_product"] == "jaws"
    assert df["accessibility"]["user"] == "pc-4711"
    assert (
        "ansible_shell_type" not in build_inventory([_target()], site(), tmp_path / "kh")["all"]["hosts"]["5CG1234XYZ"]
    )
    with pytest.raises(InvalidTarget, match="os_family 'macos' must be linux or windows"):
        _target(os_family="macos")


def test_known_hosts_file_is_what_openssh_checks(tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(known_hosts_text([_target()]))
    found = subprocess.run(["ssh-keygen", "-F", "5CG1234XYZ", "-f", str(kh)], capture_output=True, text=True)
    assert found.returncode == 0 and "ssh-ed25519" in found.stdout


def test_extra_vars_deep_merge_without_losing_site_settings(tmp_path: Path) -> None:
    target = _target(extra_vars={"enrolment": {"tenant": "override"}, "set_live_hostname": True})
    df = build_inventory([target], site(), tmp_path / "kh")["all"]["hosts"]["5CG1234XYZ"]["device_factory"]
    assert df["enrolment"] == {"server_url": "https://mdm.devicefactory.test/enrol", "tenant": "override"}
    assert df["set_live_hostname"] is True


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"serial": "bad serial"}, "serial"),
        ({"asset_tag": "x"}, "asset_tag"),
        ({"kind": "phone"}, "phone"),
        ({"port": 0}, "port"),
        ({"target_root": "relative"}, "target_root"),
        ({"kind": DeviceKind.VEHICLE_TABLET}, "vehicle_fleet_number"),
        ({"host_key": "ssh-ed25519"}, "host_key"),
        ({"host_key": "ssh-ed25519 AAAAB3NzaC1yc2E="}, "host_key"),
    ],
)
def test_invalid_targets_are_rejected(overrides: dict[str, object], message: str) -> None:
    with pytest.raises((InvalidTarget, ValueError), match=message):
        _target(**overrides)


def test_duplicate_serials_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidTarget, match="duplicate"):
        build_inventory([_target(), _target(port=2223)], site(), tmp_path / "kh")


def test_site_ca_must_be_a_ca_certificate() -> None:
    with pytest.raises(InvalidTarget, match="PEM"):
        SiteSettings(site_ca_pem="nope", enrolment_server_url="https://x", enrolment_tenant="t")
    assert SiteSettings(site_ca_pem=site_ca_pem(), enrolment_server_url="https://x", enrolment_tenant="t")


def test_secrets_do_not_show_in_repr() -> None:
    assert ENROLMENT_TOKEN not in repr(secrets())


def _event(event: str, host: str = "h1", **data: object) -> dict[str, object]:
    return {"event": event, "stdout": data.pop("stdout", ""), "event_data": {"host": host, **data}}


def test_router_forwards_task_events_and_redacts_secrets() -> None:
    sink = RecordingSink()
    router = EventRouter(sink, secrets=[ENROLMENT_TOKEN])
    router(_event("runner_on_start", task="Write", role="base"))
    router(_event("runner_on_ok", task="Write", role="base", res={"changed": True}, stdout="changed: [h1]"))
    router(_event("runner_on_skipped", task="Install", role="accessibility"))
    router(_event("verbose", stdout=f"\x1b[0;31mleaked {ENROLMENT_TOKEN} here\x1b[0m"))
    router(_event("runner_on_failed", task="QA disk encryption is on", role="qa", res={"msg": "QA failed"}))

    assert sink.events == [
        ("h1", "base : Write", "started", False),
        ("h1", "base : Write", "ok", True),
        ("h1", "accessibility : Install", "skipped", False),
        ("h1", "qa : QA disk encryption is on", "failed", False),
    ]
    assert "leaked ******** here" in sink.lines
    assert ENROLMENT_TOKEN not in sink.text()
    problem = router.problems["h1"]
    assert (problem.task, problem.reason, problem.host_key_rejected) == (
        "qa : QA disk encryption is on",
        "QA failed",
        False,
    )


def test_router_classifies_host_key_rejection_and_keeps_first_problem() -> None:
    router = EventRouter(RecordingSink())
    msg = "Failed to connect to the host via ssh: Host key verification failed."
    router(_event("runner_on_unreachable", task="Write", role="base", res={"msg": msg, "unreachable": True}))
    router(_event("runner_on_failed", task="Later", res={"msg": "other"}))
    assert router.problems["h1"].host_key_rejected
    assert router.problems["h1"].task == "base : Write"


def test_router_ignored_failures_are_not_problems() -> None:
    sink = RecordingSink()
    router = EventRouter(sink)
    router(_event("runner_on_failed", task="Optional", ignore_errors=True, res={"msg": "meh"}))
    assert sink.events == [("h1", "Optional", "ignored", False)]
    assert router.problems == {}


def test_router_parses_stats_and_outcome_classification() -> None:
    router = EventRouter(RecordingSink())
    router(
        {
            "event": "playbook_on_stats",
            "event_data": {
                "ok": {"a": 9, "b": 2, "c": 1},
                "changed": {"a": 3},
                "failures": {"b": 1},
                "dark": {"c": 1},
                "processed": {"a": 1, "b": 1, "c": 1},
            },
        }
    )
    assert router.host_stats is not None
    assert router.host_stats["a"] == {
        "ok": 9,
        "changed": 3,
        "failures": 0,
        "unreachable": 0,
        "skipped": 0,
        "rescued": 0,
        "ignored": 0,
    }
    attempt = _Attempt("job", "failed", router)
    assert _host_outcome("a", attempt, 1).status is HostStatus.OK
    assert _host_outcome("b", attempt, 1).status is HostStatus.FAILED
    assert _host_outcome("c", attempt, 2).status is HostStatus.UNREACHABLE
    assert _host_outcome("c", attempt, 2).attempts == 2
    missing = _host_outcome("d", _Attempt("job", "canceled", router), 1)
    assert missing.status is HostStatus.INCOMPLETE and "canceled" in (missing.reason or "")


def test_router_asks_the_runner_to_keep_no_event_files() -> None:
    # The sink is the job's record; a file written and renamed per event only slowed the run.
    assert EventRouter(RecordingSink())(_event("runner_on_ok", task="Write", res={})) is False


def test_run_artifacts_move_from_scratch_to_the_job_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ansible_adapter, "_SCRATCH_ROOT", tmp_path / "shm")
    (tmp_path / "shm").mkdir()
    (tmp_path / "job").mkdir()  # the job's data dir, made by prepare()
    kept, dropped = ansible_adapter._artifact_scratch(), ansible_adapter._artifact_scratch()
    assert kept is not None and dropped is not None
    assert kept.stat().st_mode & 0o777 == 0o700  # private, as the job dir is
    for scratch in (kept, dropped):
        (scratch / "job-1" / "job_events").mkdir(parents=True)
        (scratch / "job-1" / "stdout").write_text("PLAY [Provision devices]\n")
    ansible_adapter._keep_artifacts(kept, tmp_path / "job" / "artifacts", keep=True)
    ansible_adapter._keep_artifacts(dropped, tmp_path / "other" / "artifacts", keep=False)

    assert (tmp_path / "job/artifacts/job-1/stdout").read_text() == "PLAY [Provision devices]\n"
    assert not (tmp_path / "other").exists()
    assert list((tmp_path / "shm").iterdir()) == []  # nothing left on tmpfs


def test_no_scratch_dir_means_artifacts_in_the_job_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ansible_adapter, "_SCRATCH_ROOT", tmp_path / "missing")
    assert ansible_adapter._artifact_scratch() is None
