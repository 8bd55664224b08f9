"""Runs ``playbooks/provision.yml`` through ansible-runner for one provisioning job.

The only module in the project that imports ``ansible_runner``. Per job it creates a private
data dir under the caller's work dir (``ident`` = job id), an inventory and a known_hosts file
that pin every device's host key, and a vault-encrypted secrets file whose one-off password is
answered to Ansible's prompt through the runner's ``passwords`` mechanism, so no secret is ever
written in clear text or passed through the environment (ansible-runner records the job's
environment in ``artifacts/<ident>/command``).

Blocking: call ``run_provision`` in a worker thread to run it in the background; set the
``cancel`` event to stop it.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets as token_source
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import ansible_runner
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from factory.provisioning.events import EventRouter, HostStatsDict, JobSink, TaskStatus
from factory.provisioning.inventory import ProvisionSecrets, ProvisionTarget, SiteSettings, build_inventory
from factory.provisioning.inventory import known_hosts_text as _known_hosts_text

DEFAULT_PLAYBOOK_DIR = Path(__file__).resolve().parents[2] / "playbooks"
VAULT_ID = "df"
_VAULT_PROMPT = r"Vault password \(df\):\s*$"
_JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
# OpenSSH's control socket (plus its temporary ".XXXXXXXXXXXXXXXX" twin) must fit sun_path.
_MAX_CONTROL_DIR_LEN = 70


class ProvisionError(RuntimeError):
    """The job could not be started (bad job id, reused job dir, missing ansible-playbook)."""


class HostStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    HOST_KEY_REJECTED = "host_key_rejected"
    INCOMPLETE = "incomplete"  # the run stopped (cancel, timeout, crash) before the host finished


class RunStatus(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class RunnerOptions:
    playbook_dir: Path = DEFAULT_PLAYBOOK_DIR
    playbook: str = "provision.yml"
    forks: int = 5
    timeout_s: float = 1800.0  # whole job, retries included
    max_attempts: int = 3  # per unreachable host, the first run included
    backoff_initial_s: float = 2.0
    backoff_factor: float = 2.0
    backoff_max_s: float = 60.0
    connect_timeout_s: int = 10
    control_persist_s: int = 30
    keep_artifacts: bool = True

    def __post_init__(self) -> None:
        if self.forks < 1 or self.max_attempts < 1:
            raise ValueError("forks and max_attempts must be at least 1")
        if self.timeout_s <= 0 or self.backoff_initial_s < 0 or self.backoff_factor < 1:
            raise ValueError("timeout_s must be positive, backoff_initial_s >= 0, backoff_factor >= 1")


@dataclass(frozen=True)
class HostOutcome:
    host: str
    status: HostStatus
    stats: HostStatsDict
    attempts: int
    failed_task: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is HostStatus.OK


@dataclass(frozen=True)
class ProvisionOutcome:
    job_id: str
    status: RunStatus
    hosts: Mapping[str, HostOutcome]
    attempts: int
    duration_s: float
    private_data_dir: Path
    idents: tuple[str, ...] = field(default=())

    @property
    def succeeded(self) -> bool:
        return self.status is RunStatus.SUCCESSFUL

    @property
    def stats(self) -> dict[str, HostStatsDict]:
        return {name: dict(h.stats) for name, h in self.hosts.items()}

    @property
    def reason(self) -> str | None:
        """One line naming every host that did not succeed and why."""
        bad = [h for h in self.hosts.values() if not h.ok]
        if not bad and self.succeeded:
            return None
        parts = [f"{h.host}: {h.status}" + (f" at '{h.failed_task}'" if h.failed_task else "") for h in bad]
        parts = [p + (f" ({h.reason})" if h.reason else "") for p, h in zip(parts, bad, strict=True)]
        return f"{self.status}: " + ("; ".join(parts) or "no host results")


_ZERO_STATS: HostStatsDict = {
    "ok": 0,
    "changed": 0,
    "failures": 0,
    "unreachable": 0,
    "skipped": 0,
    "rescued": 0,
    "ignored": 0,
}


@dataclass
class _Attempt:
    ident: str
    status: str
    router: EventRouter


def run_provision(
    job_id: str,
    targets: Sequence[ProvisionTarget],
    site: SiteSettings,
    secrets: ProvisionSecrets,
    sink: JobSink,
    work_dir: Path,
    options: RunnerOptions | None = None,
    cancel: threading.Event | None = None,
) -> ProvisionOutcome:
    """Provision ``targets``; retry only unreachable hosts, with exponential backoff."""
    options = options or RunnerOptions()
    if not _JOB_ID_RE.match(job_id):
        raise ProvisionError(f"job id {job_id!r} must be 1-80 of [A-Za-z0-9._-]")
    if not targets:
        raise ProvisionError("no targets to provision")
    if not (options.playbook_dir / options.playbook).is_file():
        raise ProvisionError(f"playbook {options.playbook_dir / options.playbook} not found")
    bin_dir = Path(sys.executable).parent
    if shutil.which("ansible-playbook", path=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}") is None:
        raise ProvisionError("ansible-playbook is not installed")

    started = time.monotonic()
    deadline = started + options.timeout_s
    cancel = cancel or threading.Event()
    job_dir = _create_job_dir(work_dir, job_id)
    known_hosts = job_dir / "known_hosts"
    known_hosts.write_text(_known_hosts_text(targets))
    inventory = job_dir / "inventory" / "hosts.json"
    inventory.parent.mkdir()
    inventory.write_text(json.dumps(build_inventory(targets, site, known_hosts), indent=2))
    vault_password = token_source.token_urlsafe(32)
    vault_file = job_dir / "secrets.vault.yml"
    _write_vaulted(vault_file, secrets.to_vars(), vault_password)

    results: dict[str, HostOutcome] = {}
    attempts: list[_Attempt] = []
    pending = [t.inventory_name for t in targets]
    final = ""
    while True:
        number = len(attempts) + 1
        ident = job_id if number == 1 else f"{job_id}.retry{number - 1}"
        router = EventRouter(sink, secrets.values())
        # Retries are only started with time left (checked below), so this is at least ~1 s.
        remaining = max(1.0, deadline - time.monotonic())
        status = _run_once(
            job_dir, ident, inventory, vault_file, vault_password, pending, router, options, remaining, cancel
        )
        attempt = _Attempt(ident, status, router)
        attempts.append(attempt)
        final = status
        for host in pending:
            results[host] = _host_outcome(host, attempt, number)
        if status in ("canceled", "timeout"):
            break
        retry = [h for h in pending if results[h].status is HostStatus.UNREACHABLE]
        if not retry or number >= options.max_attempts:
            break
        delay = min(options.backoff_initial_s * options.backoff_factor ** (number - 1), options.backoff_max_s)
        if time.monotonic() + delay >= deadline:
            sink.log(f"not retrying {', '.join(retry)}: the job's time limit would be exceeded")
            break
        sink.log(f"retrying unreachable {', '.join(retry)} in {delay:.1f}s (attempt {number + 1})")
        if cancel.wait(delay):
            final = "canceled"
            break
        pending = retry

    if final == "canceled":
        run_status = RunStatus.CANCELED
    elif final == "timeout":
        run_status = RunStatus.TIMEOUT
    elif all(h.ok for h in results.values()):
        run_status = RunStatus.SUCCESSFUL
    else:
        run_status = RunStatus.FAILED
    if not options.keep_artifacts:
        shutil.rmtree(job_dir / "artifacts", ignore_errors=True)
    outcome = ProvisionOutcome(
        job_id=job_id,
        status=run_status,
        hosts=dict(sorted(results.items())),
        attempts=len(attempts),
        duration_s=time.monotonic() - started,
        private_data_dir=job_dir,
        idents=tuple(a.ident for a in attempts),
    )
    sink.stats(outcome.stats)
    sink.log(outcome.reason or f"provisioning {run_status} on {len(results)} host(s)")
    return outcome


def _create_job_dir(work_dir: Path, job_id: str) -> Path:
    job_dir = work_dir / job_id
    try:
        job_dir.mkdir(mode=0o700, parents=False)
    except FileExistsError as exc:
        raise ProvisionError(f"job dir {job_dir} already exists; job ids must not be reused") from exc
    except FileNotFoundError as exc:
        raise ProvisionError(f"work dir {work_dir} does not exist") from exc
    return job_dir


def _write_vaulted(path: Path, data: Mapping[str, Any], password: str) -> None:
    vault = VaultLib([(VAULT_ID, VaultSecret(password.encode()))])
    ciphertext = vault.encrypt(yaml.safe_dump(dict(data)), vault_id=VAULT_ID)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(ciphertext)


def _control_dir(job_dir: Path, ident: str) -> tuple[Path, bool]:
    """A control-socket dir private to this attempt; (path, is_temporary)."""
    preferred = job_dir / "cp" / ident
    if len(str(preferred)) <= _MAX_CONTROL_DIR_LEN:
        preferred.mkdir(parents=True, mode=0o700)
        return preferred, False
    return Path(tempfile.mkdtemp(prefix="dfcp-")), True


def _close_masters(control_dir: Path) -> None:
    """Stop this attempt's ControlPersist masters so no later run can ride on their host-key check."""
    for sock in control_dir.iterdir():
        if sock.is_socket():
            subprocess.run(
                ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "device-factory"],
                capture_output=True,
                timeout=10,
                check=False,
            )


def _environment(job_dir: Path, control_dir: Path, options: RunnerOptions) -> dict[str, str]:
    config = job_dir / "ansible.cfg"
    if not config.exists():
        config.write_text("# Empty on purpose: settings come from the environment below.\n")
    bin_dir = str(Path(sys.executable).parent)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        # Pin the configuration: ignore ansible.cfg files in the cwd, home or /etc.
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_HOME": str(job_dir / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(job_dir / "tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
        "ANSIBLE_SSH_ARGS": f"-o ControlMaster=auto -o ControlPersist={options.control_persist_s}s",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_TIMEOUT": str(options.connect_timeout_s),
        "ANSIBLE_GATHERING": "explicit",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_FORCE_COLOR": "False",
    }


def _run_once(
    job_dir: Path,
    ident: str,
    inventory: Path,
    vault_file: Path,
    vault_password: str,
    hosts: Sequence[str],
    router: EventRouter,
    options: RunnerOptions,
    remaining_s: float,
    cancel: threading.Event,
) -> str:
    control_dir, temporary = _control_dir(job_dir, ident)

    def on_status(status_data: Mapping[str, Any], runner_config: Any = None) -> None:
        # Only the status word: the 'starting' payload carries the job's environment.
        router.log(f"runner {ident}: {status_data.get('status')}")

    try:
        result = ansible_runner.run(
            private_data_dir=str(job_dir),
            project_dir=str(options.playbook_dir),
            playbook=options.playbook,
            inventory=str(inventory),
            ident=ident,
            forks=options.forks,
            limit=",".join(hosts),
            envvars=_environment(job_dir, control_dir, options),
            cmdline=f"--vault-id {VAULT_ID}@prompt -e @{shlex.quote(str(vault_file))}",
            passwords={_VAULT_PROMPT: vault_password},
            # The runner polls cancel_callback and the timeout once per pexpect wait.
            settings={"pexpect_timeout": 0.25, "suppress_ansible_output": True},
            event_handler=router,
            status_handler=on_status,
            cancel_callback=cancel.is_set,
            timeout=max(1, math.ceil(remaining_s)),
            quiet=True,
            suppress_env_files=True,
        )
        return str(result.status)
    finally:
        _close_masters(control_dir)
        if temporary:
            shutil.rmtree(control_dir, ignore_errors=True)


def _host_outcome(host: str, attempt: _Attempt, number: int) -> HostOutcome:
    router = attempt.router
    stats = (router.host_stats or {}).get(host)
    problem = router.problems.get(host)
    failed_task = problem.task if problem else None
    reason = problem.reason if problem else None
    if problem is not None and problem.host_key_rejected:
        status = HostStatus.HOST_KEY_REJECTED
    elif (stats and stats["unreachable"]) or (problem and problem.status is TaskStatus.UNREACHABLE):
        status = HostStatus.UNREACHABLE
    elif (stats and stats["failures"]) or problem is not None:
        status = HostStatus.FAILED
    elif stats is not None:
        status = HostStatus.OK
    else:
        status = HostStatus.INCOMPLETE
        reason = f"run {attempt.status} before the host finished" + (
            f": {router.last_error}" if router.last_error else ""
        )
    return HostOutcome(
        host=host,
        status=status,
        stats=dict(stats) if stats else dict(_ZERO_STATS),
        attempts=number,
        failed_task=failed_task,
        reason=reason,
    )
