"""Runs ``playbooks/provision.yml`` through ansible-runner for one provisioning job.

The only module in the project that imports ``ansible_runner``, and a narrow facade over it in
the style of ansible-runner's own ``interface.py``: :func:`prepare` writes a job's private data
dir once, :func:`run` runs it (blocking) and :func:`run_async` on a thread of its own;
:func:`run_provision` is both in one call. The event and status handlers only record what
happened (:class:`EventRouter`) and forward it to the caller's :class:`JobSink`.

Per job, :func:`prepare` creates a private data dir under the caller's work dir (``ident`` = job
id), an inventory and a known_hosts file that pin every device's host key, and a vault-encrypted
secrets file whose one-off password is answered to Ansible's prompt through the runner's
``passwords`` mechanism, so no secret is ever written in clear text or passed through the
environment (ansible-runner records the job's environment in ``artifacts/<ident>/command``).
Set the ``cancel`` event to stop a run. The runner runs ``run.yml`` in the job dir: the
playbook, then a completion check whose ok per host proves the playbook ran to its end there.

The job's event record is what the sink receives; ansible-runner keeps no per-event files. While
a run lasts its artifacts live in a private (0700) dir on tmpfs: Ansible's callback writes every
event to a file there that the runner reads back and deletes, and on the disk each of those file
creations sat in the playbook's critical path. Afterwards ``command``, ``stdout``, ``stderr``,
``rc`` and ``status`` are moved to ``artifacts/<ident>/`` in the job dir (or dropped when
``keep_artifacts`` is off). A process killed mid-run leaves its ``df-artifacts-*`` dir behind.
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
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from factory.provisioning.adapter_types import (
    DEFAULT_PLAYBOOK_DIR,
    HostOutcome,
    HostStatus,
    ProvisionOutcome,
    RunnerOptions,
    RunStatus,
    _Attempt,
    _host_outcome,
    completion_wrapper,
)
from factory.provisioning.errors import ProvisionError
from factory.provisioning.events import EventRouter, JobSink
from factory.provisioning.inventory import ProvisionSecrets, ProvisionTarget, SiteSettings, build_inventory
from factory.provisioning.inventory import known_hosts_text as _known_hosts_text

VAULT_ID = "df"
_VAULT_PROMPT = r"Vault password \(df\):\s*$"
_JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
# OpenSSH's control socket (plus its temporary ".XXXXXXXXXXXXXXXX" twin) must fit sun_path.
_MAX_CONTROL_DIR_LEN = 70
# Where a run's artifacts live until it ends: tmpfs, so the per-event files cost no disk journal.
_SCRATCH_ROOT = Path("/dev/shm")
# What the runner runs: the options' playbook, then the completion check (adapter_types.py).
_RUN_PLAYBOOK = "run.yml"

__all__ = [
    "DEFAULT_PLAYBOOK_DIR",
    "HostOutcome",
    "HostStatus",
    "PreparedJob",
    "ProvisionError",
    "ProvisionOutcome",
    "RunStatus",
    "RunnerOptions",
    "prepare",
    "run",
    "run_async",
    "run_provision",
]


@dataclass(frozen=True)
class PreparedJob:
    """A job's private data dir, written once by :func:`prepare`."""

    job_id: str
    job_dir: Path
    inventory: Path
    vault_file: Path
    vault_password: str = field(repr=False)
    hosts: tuple[str, ...]
    secret_values: tuple[str, ...] = field(repr=False)
    options: RunnerOptions
    started: float  # time.monotonic() when preparing began: the job's time limit counts from it


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
    """Provision ``targets``; retry only unreachable hosts, with exponential backoff.

    :raises ProvisionError: the job cannot be started (see :func:`prepare`).
    """
    return run(prepare(job_id, targets, site, secrets, work_dir, options), sink, cancel)


def run_async(job: PreparedJob, sink: JobSink, cancel: threading.Event | None = None) -> Future[ProvisionOutcome]:
    """:func:`run` on a thread of its own; the future holds its outcome (or its error)."""
    future: Future[ProvisionOutcome] = Future()

    def work() -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(run(job, sink, cancel))
        except BaseException as exc:  # handed to whoever waits on the future
            future.set_exception(exc)

    threading.Thread(target=work, name=f"provision-{job.job_id}", daemon=True).start()
    return future


def prepare(
    job_id: str,
    targets: Sequence[ProvisionTarget],
    site: SiteSettings,
    secrets: ProvisionSecrets,
    work_dir: Path,
    options: RunnerOptions | None = None,
) -> PreparedJob:
    """Check the job can start, then write its data dir: inventory, known_hosts, vaulted secrets.

    :raises ProvisionError: bad job id, no targets, no playbook, no ``ansible-playbook``, or the
        job dir exists already (job ids are never reused) or the work dir does not.
    """
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
    job_dir = _create_job_dir(work_dir, job_id)
    known_hosts = job_dir / "known_hosts"
    known_hosts.write_text(_known_hosts_text(targets))
    inventory = job_dir / "inventory" / "hosts.json"
    inventory.parent.mkdir()
    inventory.write_text(json.dumps(build_inventory(targets, site, known_hosts), indent=2))
    vault_password = token_source.token_urlsafe(32)
    vault_file = job_dir / "secrets.vault.yml"
    _write_vaulted(vault_file, secrets.to_vars(), vault_password)
    (job_dir / _RUN_PLAYBOOK).write_text(completion_wrapper((options.playbook_dir / options.playbook).resolve()))
    return PreparedJob(
        job_id, job_dir, inventory, vault_file, vault_password, tuple(t.inventory_name for t in targets),
        tuple(secrets.values()), options, started,
    )  # fmt: skip


def run(job: PreparedJob, sink: JobSink, cancel: threading.Event | None = None) -> ProvisionOutcome:
    """Run a prepared job to its end (blocking); retry only unreachable hosts, with backoff."""
    cancel = cancel or threading.Event()
    results, attempts, final = _attempts(job, sink, cancel)
    if final == "canceled":
        run_status = RunStatus.CANCELED
    elif final == "timeout":
        run_status = RunStatus.TIMEOUT
    elif all(h.ok for h in results.values()):
        run_status = RunStatus.SUCCESSFUL
    else:
        run_status = RunStatus.FAILED
    if not job.options.keep_artifacts:
        shutil.rmtree(job.job_dir / "artifacts", ignore_errors=True)
    outcome = ProvisionOutcome(
        job_id=job.job_id,
        status=run_status,
        hosts=dict(sorted(results.items())),
        attempts=len(attempts),
        duration_s=time.monotonic() - job.started,
        private_data_dir=job.job_dir,
        idents=tuple(a.ident for a in attempts),
    )
    sink.stats(outcome.stats)
    sink.log(outcome.reason or f"provisioning {run_status} on {len(results)} host(s)")
    return outcome


def _attempts(
    job: PreparedJob, sink: JobSink, cancel: threading.Event
) -> tuple[dict[str, HostOutcome], list[_Attempt], str]:
    """Run, then re-run the unreachable hosts while attempts and time are left; return every
    host's latest outcome, the attempts and the last runner status."""
    options = job.options
    deadline = job.started + options.timeout_s
    results: dict[str, HostOutcome] = {}
    attempts: list[_Attempt] = []
    pending = list(job.hosts)
    while True:
        number = len(attempts) + 1
        ident = job.job_id if number == 1 else f"{job.job_id}.retry{number - 1}"
        router = EventRouter(sink, job.secret_values, expect_completion=True)
        # Retries are only started with time left (checked below), so this is at least ~1 s.
        remaining = max(1.0, deadline - time.monotonic())
        status = _run_once(job, ident, pending, router, remaining, cancel)
        attempt = _Attempt(ident, status, router)
        attempts.append(attempt)
        for host in pending:
            results[host] = _host_outcome(host, attempt, number)
        if status in ("canceled", "timeout"):
            return results, attempts, status
        retry = [h for h in pending if results[h].status is HostStatus.UNREACHABLE]
        if not retry or number >= options.max_attempts:
            return results, attempts, status
        delay = min(options.backoff_initial_s * options.backoff_factor ** (number - 1), options.backoff_max_s)
        if time.monotonic() + delay >= deadline:
            sink.log(f"not retrying {', '.join(retry)}: the job's time limit would be exceeded")
            return results, attempts, status
        sink.log(f"retrying unreachable {', '.join(retry)} in {delay:.1f}s (attempt {number + 1})")
        if cancel.wait(delay):
            return results, attempts, "canceled"
        pending = retry


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
    """Stop this attempt's ControlPersist masters so no later run can ride on their host-key check.

    All at once: each ``ssh -O exit`` is a process start and a round trip, and a job has a master
    per device."""
    closing = [
        subprocess.Popen(
            ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "device-factory"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for sock in control_dir.iterdir()
        if sock.is_socket()
    ]
    for process in closing:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _artifact_scratch() -> Path | None:
    """A private dir on tmpfs for one run's artifacts, or None: then they go to the job dir."""
    try:
        return Path(tempfile.mkdtemp(prefix="df-artifacts-", dir=_SCRATCH_ROOT))
    except OSError:  # no /dev/shm (or not writable): the job dir works, only slower
        return None


def _keep_artifacts(scratch: Path, artifacts: Path, keep: bool) -> None:
    """Move a finished run's artifacts (``<ident>/...``) into the job dir, or drop them."""
    try:
        if keep:
            artifacts.mkdir(mode=0o700, exist_ok=True)
            for entry in scratch.iterdir():
                shutil.move(entry, artifacts / entry.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
    job: PreparedJob, ident: str, hosts: Sequence[str], router: EventRouter, remaining_s: float, cancel: threading.Event
) -> str:
    """One ansible-runner run of the playbook on ``hosts``; the runner's final status word."""
    job_dir, options = job.job_dir, job.options
    control_dir, temporary = _control_dir(job_dir, ident)
    scratch = _artifact_scratch()

    def on_status(status_data: Mapping[str, Any], runner_config: Any = None) -> None:
        # Only the status word: the 'starting' payload carries the job's environment.
        router.log(f"runner {ident}: {status_data.get('status')}")

    try:
        result = ansible_runner.run(
            private_data_dir=str(job_dir),
            artifact_dir=str(scratch or job_dir / "artifacts"),
            project_dir=str(options.playbook_dir),
            playbook=str(job_dir / _RUN_PLAYBOOK),
            inventory=str(job.inventory),
            ident=ident,
            forks=options.forks,
            limit=",".join(hosts),
            envvars=_environment(job_dir, control_dir, options),
            cmdline=f"--vault-id {VAULT_ID}@prompt -e @{shlex.quote(str(job.vault_file))}",
            passwords={_VAULT_PROMPT: job.vault_password},
            # The runner polls cancel_callback and the timeout once per pexpect wait.
            settings={"pexpect_timeout": 0.25, "suppress_ansible_output": True},
            event_handler=router,
            status_handler=on_status,
            cancel_callback=cancel.is_set,
            timeout=max(1, math.ceil(remaining_s)),
            quiet=True,
            suppress_env_files=True,
            # Ansible's in-memory fact cache, as plain ansible-playbook has: the runner's default
            # (a JSON file per host under artifacts/) costs file writes and nothing reads them;
            # facts are never gathered (ANSIBLE_GATHERING=explicit) and no run reuses another's.
            fact_cache_type="memory",
        )
        return str(result.status)
    finally:
        _close_masters(control_dir)
        if temporary:
            shutil.rmtree(control_dir, ignore_errors=True)
        if scratch is not None:
            _keep_artifacts(scratch, job_dir / "artifacts", options.keep_artifacts)
