"""What other areas, the CLI and tools call in provisioning: build the line's provisioner from the
site's settings, or provision devices directly through the Ansible adapter.
"""

from __future__ import annotations

from factory.provisioning.adapter_types import HostOutcome, HostStatus, ProvisionOutcome, RunnerOptions, RunStatus
from factory.provisioning.ansible_adapter import PreparedJob, prepare, run, run_async, run_provision
from factory.provisioning.errors import InvalidTarget, ProvisionError
from factory.provisioning.events import HostStatsDict, JobSink, TaskStatus
from factory.provisioning.inventory import (
    AccessibilityProfile,
    DeviceKind,
    ProvisionSecrets,
    ProvisionTarget,
    SiteSettings,
)
from factory.provisioning.line_provisioner import AnsibleProvisioner, JobLogSink
from factory.provisioning.settings import load_provisioner

__all__ = [
    "AccessibilityProfile",
    "AnsibleProvisioner",
    "DeviceKind",
    "HostOutcome",
    "HostStatsDict",
    "HostStatus",
    "InvalidTarget",
    "JobLogSink",
    "JobSink",
    "PreparedJob",
    "ProvisionError",
    "ProvisionOutcome",
    "ProvisionSecrets",
    "ProvisionTarget",
    "RunStatus",
    "RunnerOptions",
    "SiteSettings",
    "TaskStatus",
    "load_provisioner",
    "prepare",
    "run",
    "run_async",
    "run_provision",
]
