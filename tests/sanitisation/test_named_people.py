"""People, not agents: a line's certificates name the technician who started the job (and the one
who approved a retry), with the bench agent as the tool; a real line refuses to start under the
placeholder organisation name or without an enabled technician, while --simulate keeps working."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.bench_line import SLOT, Line, running_line
from sqlmodel import select
from typer.testing import CliRunner

from factory.cli.main import app
from factory.identity.service import add_user
from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.models.certificate import Certificate
from factory.line.bench_config import simulated_config
from factory.line.identify import Identity
from factory.line.models import Job
from factory.line.simulate import NoOpProvisioner
from factory.sanitisation.service import job_signatories
from imaging.certificate import Destination

DISK = 4 * 2**20
SITE = (
    'agent = "real-agent"\nerase_processes = 0\n'
    '[[bench]]\nname = "bench-1"\nslots = [{position = 1}]\n'
    '[port_map]\nudev = [{id_path = "sim-bench-1-port-1", slot = "bench-1/slot-1"}]\n'
)


@pytest.fixture
def line(ctx: AppContext) -> Iterator[Line]:
    config = dataclasses.replace(simulated_config("1x2", agent="test-agent"), technician="alice.tech")
    yield from running_line(ctx, config, NoOpProvisioner(), disk_bytes=DISK, seed=5)


def test_line_certificates_name_the_technician_who_started_the_job(line: Line) -> None:
    dev = line.sim.arrive(SLOT, Identity.RETURNED, role="response", kind="laptop")
    job = line.wait_job()
    assert job.status == "succeeded", (job.status, job.reason)
    assert job.started_by == "alice.tech" and job.approved_by is None
    with session_scope(line.ctx.engine) as s:
        device = get_device(s, dev.device_serial or "")
        [cert] = s.exec(select(Certificate).where(Certificate.device_id == device.id)).all()
        doc = json.loads(cert.envelope)["certificate"]
    people = doc["personnel"]
    assert (people["sanitised_by"]["name"], people["sanitised_by"]["account"]) == ("alice.tech", "alice.tech")
    assert people["sanitised_by"]["title"] == "Bench technician (started the job)"
    assert (
        people["validated_by"]["account"] == "alice.tech"
        and doc["validation"]["validated_by"] == people["validated_by"]
    )
    assert doc["tool"]["agent"] == "test-agent"  # the agent is the tool, never the person
    assert "agent" not in people["sanitised_by"]["name"]


def _run(env: dict[str, str], *args: str):
    return CliRunner().invoke(app, ["line", "run", *args], env=env)


def test_a_real_line_refuses_the_default_organisation_and_an_unknown_technician(
    ctx: AppContext, tmp_path: Path
) -> None:
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    env = {"FACTORY_HOME": str(ctx.settings.home), "FACTORY_DATABASE_URL": ctx.settings.database_url}
    env |= {"FACTORY_ORGANISATION": "", "FACTORY_TECHNICIAN": ""}
    refused = _run(env, "--config", str(site), "--technician", "alice.tech", "--duration", "0")
    assert refused.exit_code == 1
    assert "set FACTORY_ORGANISATION (it is the placeholder 'device-factory')" in refused.output
    assert refused.output.strip().splitlines()[-1].startswith("error: a real line signs certificates")
    assert "Traceback" not in refused.output

    env["FACTORY_ORGANISATION"] = "Test Constabulary"
    for args, reason in (
        ((), "a real line names the technician who starts it"),
        (("--technician", "nobody.here"), "'nobody.here' is not an enabled technician or admin"),
        (("--technician", "audit.one"), "'audit.one' is not an enabled technician or admin"),
    ):
        with session_scope(ctx.engine) as s:
            if not s.exec(select(Job)).first() and args[-1:] == ("audit.one",):
                add_user(s, "audit.one", "auditor")
        done = _run(env, "--config", str(site), *args, "--duration", "0")
        assert done.exit_code == 1 and reason in done.output, done.output
    with session_scope(ctx.engine) as s:
        assert s.exec(select(Job)).first() is None  # nothing started


def test_a_simulated_line_still_starts_without_them(ctx: AppContext) -> None:
    env = {"FACTORY_HOME": str(ctx.settings.home), "FACTORY_DATABASE_URL": ctx.settings.database_url}
    env |= {"FACTORY_ORGANISATION": "", "FACTORY_TECHNICIAN": ""}
    done = _run(env, "--simulate", "1x1", "--disk-mib", "1", "--max-devices", "0", "--duration", "0.1")
    assert done.exit_code == 0, done.output
    assert done.output.startswith("agent ")


def test_a_retry_names_its_approver_as_validator_and_a_simulation_without_a_person_says_so() -> None:
    approved = job_signatories("alice.tech", "bob.lead", "bench-2", Destination.INTERNAL_REUSE)
    assert (approved.operator.account, approved.validator.account) == ("alice.tech", "bob.lead")
    assert approved.validator.title == "Validator (approved the job)" and approved.agent == "bench-2"
    nobody = job_signatories(None, None, "sim-agent", Destination.RECYCLING)
    assert nobody.operator.account is None and "simulation: no person recorded" in nobody.operator.title
