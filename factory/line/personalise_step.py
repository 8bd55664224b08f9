"""The personalise step: an allocated device gets its officer's assistive technology, and the QA
proves it is installed and configured. The device stays ``allocated`` (no lifecycle edge); every
attempt's QA result is stored by custody, which refuses the issue until one passed for the
officer's current profile on this device.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import update

from factory.custody.service import record_personalisation
from factory.custody.views import personalisation_due
from factory.kernel.models.device import Device
from factory.line.errors import StepFailed, StepHeld
from factory.line.models import JobStep, StepStatus
from factory.line.provision_step import PersonaliseOutcome, Personaliser, PersonaliseRequest, personaliser

if TYPE_CHECKING:
    from factory.line.job_runner import JobRunner

CANNOT_PERSONALISE = "this line's provisioner cannot personalise (no provisioning settings, or a stand-in)"
CANNOT_PERSONALISE_ACTION = "restart the agent with --provisioning FILE, then re-insert the device"
_STEP = JobStep.__table__  # type: ignore[attr-defined]


def personalise(runner: JobRunner, step_id: int, name: str) -> None:
    """:raises StepHeld: the line cannot personalise. :raises StepFailed: the QA did not pass."""
    tool = personaliser(runner.ctx.provisioner)
    if tool is None:
        raise StepHeld(CANNOT_PERSONALISE, CANNOT_PERSONALISE_ACTION)
    with runner.scope(starting=name) as (s, job):
        started = runner.begin(s, job, name)
        device = s.get(Device, job.device_id)
        due = personalisation_due(s, job.device_id or 0)
        if device is None or due is None:  # passed meanwhile, or the allocation changed
            ended = runner.end_step(s, job, name, StepStatus.SUCCEEDED, "nothing to personalise now")
            s.execute(update(_STEP).where(_STEP.c.id == step_id).values(**started | ended))
            return
        s.execute(update(_STEP).where(_STEP.c.id == step_id).values(**started))
        request = PersonaliseRequest(runner.job_id, device.serial, due.staff_number, due.needs.playbook_vars(),
                                     runner.cancel)  # fmt: skip
    outcome = _run(runner, tool, request)
    with runner.scope() as (s, job):
        record_personalisation(s, due, passed=outcome.passed, missing=list(outcome.missing), detail=outcome.detail,
                               job_id=runner.job_id, actor=runner.ctx.actor)  # fmt: skip
        found = "passed" if outcome.passed else "failed: " + "; ".join(outcome.missing or (outcome.detail,))
        runner.logs.add(runner.job_id, f"personalisation QA for officer {due.staff_number}: {found}")
        if outcome.passed:
            ended = runner.end_step(s, job, name, StepStatus.SUCCEEDED, outcome.detail)
            s.execute(update(_STEP).where(_STEP.c.id == step_id).values(**ended))
    if not outcome.passed:  # the QA result above is committed; the job fails with what is missing
        raise StepFailed(f"personalisation QA failed: {'; '.join(outcome.missing) or outcome.detail}")


def _run(runner: JobRunner, tool: Personaliser, request: PersonaliseRequest) -> PersonaliseOutcome:
    started = time.monotonic()
    try:
        return tool.personalise(request)
    except Exception as exc:  # a personaliser bug is a failed personalisation, with its reason
        return PersonaliseOutcome(False, f"personaliser error: {type(exc).__name__}: {exc}")
    finally:
        runner.work += time.monotonic() - started
