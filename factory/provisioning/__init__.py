"""Provisioning of imaged devices over SSH with Ansible (``playbooks/provision.yml``).

Public surface: describe devices with ``ProvisionTarget``, the site with ``SiteSettings``,
secrets with ``ProvisionSecrets``; implement ``JobSink``; call ``run_provision``.
"""

from factory.provisioning.ansible_adapter import (
    HostOutcome,
    HostStatus,
    ProvisionError,
    ProvisionOutcome,
    RunnerOptions,
    RunStatus,
    run_provision,
)
from factory.provisioning.events import HostStatsDict, JobSink, TaskStatus
from factory.provisioning.inventory import (
    AccessibilityProfile,
    DeviceKind,
    InvalidTarget,
    ProvisionSecrets,
    ProvisionTarget,
    SiteSettings,
)

__all__ = [
    "AccessibilityProfile",
    "DeviceKind",
    "HostOutcome",
    "HostStatsDict",
    "HostStatus",
    "InvalidTarget",
    "JobSink",
    "ProvisionError",
    "ProvisionOutcome",
    "ProvisionSecrets",
    "ProvisionTarget",
    "RunStatus",
    "RunnerOptions",
    "SiteSettings",
    "TaskStatus",
    "run_provision",
]
