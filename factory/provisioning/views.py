"""Reading provisioning results. Provisioning keeps no tables of its own: a run's outcome is the
value :func:`factory.provisioning.service.run_provision` returns (these types), and on the line
it lands in the job's log and step (read through ``factory.line.views.job_detail``).
"""

from __future__ import annotations

from factory.provisioning.adapter_types import HostOutcome, HostStatus, ProvisionOutcome, RunStatus
from factory.provisioning.events import HostStatsDict, TaskStatus

__all__ = ["HostOutcome", "HostStatsDict", "HostStatus", "ProvisionOutcome", "RunStatus", "TaskStatus"]
