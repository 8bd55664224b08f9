"""``factory line``: run a bench agent (real or simulated), look at the line, act on jobs."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from factory.cli import systemd
from factory.cli.common import ActorOpt, console, context, one_line_errors, print_json
from factory.kernel import limits
from factory.kernel.db.engine import session_scope
from factory.line import service as line_service
from factory.line.service import LineConfig, load_line_config, simulated_config
from factory.line.views import benches_view, job_detail, jobs_view

if TYPE_CHECKING:
    from factory.kernel.context import AppContext
    from factory.line.service import SimulationOptions
    from factory.tablets.service import TabletBench

app = typer.Typer(help="The bench line: agents, slots and jobs.", no_args_is_help=True)

MIB = 2**20
JobIdArg = Annotated[int, typer.Argument(min=1, max=limits.ROW_ID, help="Job id.")]
# The simulation's numbers, bounded so that a typo is refused rather than stored or slept on.
FirstBenchOpt = Annotated[
    int, typer.Option("--first-bench", min=1, max=limits.BENCHES, help="Number of the first simulated bench.")
]
MaxJobsOpt = Annotated[
    int | None, typer.Option("--max-jobs", min=1, max=limits.BENCH_JOBS, help="Concurrent jobs per bench.")
]
MaxDevicesOpt = Annotated[
    int | None, typer.Option("--max-devices", min=0, max=limits.ROW_ID, help="Stop simulated arrivals after N.")
]
GapOpt = Annotated[
    float,
    typer.Option("--gap", min=0.0, max=limits.SIM_PAUSE, help="Longest pause before a simulated slot is refilled (s)."),
]
DwellOpt = Annotated[
    float,
    typer.Option(
        "--dwell", min=0.0, max=limits.SIM_PAUSE, help="Longest wait before a finished device is taken out (s)."
    ),
]


TechnicianOpt = Annotated[
    str | None,
    typer.Option(
        "--technician",
        envvar="FACTORY_TECHNICIAN",
        help="The signed-in technician the line runs for (named on its certificates); required unless --simulate.",
    ),
]


def _for_person(ctx: AppContext, config: LineConfig, technician: str | None, *, real: bool) -> LineConfig:
    """The config with the person it runs for; a real line refuses to start without one (or
    under the placeholder organisation name): factory/line/people.py."""
    if real:
        technician = line_service.require_named_people(ctx, technician)
    return dataclasses.replace(config, technician=(technician or "").strip() or None)


def _simulation(
    simulate: str | None,
    disk_bytes: int,
    pull_rate: float,
    seed: int | None,
    max_devices: int | None,
    gap: float,
    dwell: float,
) -> SimulationOptions | None:
    from factory.line.service import SimulationOptions

    if simulate is None:
        return None
    return SimulationOptions(
        disk_bytes=disk_bytes,
        pull_rate=pull_rate,
        seed=seed,
        max_devices=max_devices,
        gap=(min(0.3, gap), gap),
        dwell=(min(0.1, dwell), dwell),
    )


def build_config(
    simulate: str | None, config_file: Path | None, agent: str | None, first_bench: int, max_jobs: int | None
) -> LineConfig:
    if (simulate is None) == (config_file is None):
        raise typer.BadParameter("give exactly one of --simulate BENCHESxSLOTS or --config SITE.toml")
    if simulate is not None:
        return simulated_config(simulate, agent=agent, first_bench=first_bench, max_jobs_per_bench=max_jobs)
    assert config_file is not None
    return load_line_config(config_file, agent=agent)


TabletsOpt = Annotated[
    Path | None,
    typer.Option(
        "--tablets",
        help="Tablet settings (TOML): device-management services, the site's device-owner app. Without them a "
        "real line holds tablet jobs; --simulate uses simulated tablets.",
    ),
]


def tablet_bench(path: Path | None, *, real: bool) -> TabletBench | None:
    """The bench's tablet settings, or None; a bench without the tools or a service raises its reason."""
    if path is None:
        if real:
            console.print("warning: no tablet settings: tablet jobs are held (pass --tablets FILE)", markup=False)
        return None
    from factory.tablets.service import load_bench

    return load_bench(path)


@app.command("run")
@one_line_errors
def run_cmd(
    simulate: str | None = typer.Option(None, "--simulate", help="Simulated benches, e.g. 2x4."),
    config_file: Path | None = typer.Option(None, "--config", help="Site file with benches and port map (TOML)."),
    agent: str | None = typer.Option(None, "--agent", help="Agent name (default: host name)."),
    first_bench: FirstBenchOpt = 1,
    max_jobs: MaxJobsOpt = None,
    disk_mib: int = typer.Option(16, "--disk-mib", min=1, max=4096, help="Simulated disk size."),
    pull_rate: float = typer.Option(0.0, "--pull-rate", min=0.0, max=1.0, help="Share of devices pulled mid-job."),
    seed: int | None = typer.Option(None, "--seed"),
    max_devices: MaxDevicesOpt = None,
    duration: float | None = typer.Option(None, "--duration", min=0.0, help="Stop after this many seconds."),
    gap: GapOpt = 3.0,
    dwell: DwellOpt = 2.0,
    technician: TechnicianOpt = None,
    provisioning: Path | None = typer.Option(
        None,
        "--provisioning",
        help="Provisioning settings (TOML) for the Ansible provision step. Without them a real line stops "
        "devices before provisioning (held, with the reason); only --simulate provisions with a no-op.",
    ),
    tablets: TabletsOpt = None,
) -> None:
    """Run the controller for this host's benches until Ctrl-C (or --duration)."""
    from factory.line.service import LineAgentProcess

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = build_config(simulate, config_file, agent, first_bench, max_jobs)
    bench = tablet_bench(tablets, real=simulate is None)  # without the tools or a service: stops here, first
    config = _for_person(ctx := context(), config, technician, real=simulate is None)
    simulation = _simulation(simulate, disk_mib * MIB, pull_rate, seed, max_devices, gap, dwell)
    provisioner = None
    if provisioning is not None:
        from factory.provisioning.service import load_provisioner

        provisioner = load_provisioner(provisioning, engine=ctx.engine, work_dir=ctx.settings.work_dir / "provision")
    process = LineAgentProcess(ctx, config, simulation=simulation, provisioner=provisioner, tablets=bench)
    report = process.start()
    console.print(
        f"agent {config.agent}: {len(config.benches)} bench(es), {config.slot_count} slot(s); {report.summary()}",
        markup=False,
    )
    if provisioner is None and simulation is None:
        console.print(f"warning: {line_service.NO_PROVISIONING_NOTICE}", markup=False, soft_wrap=True)
    # Under systemd (factory-agent@.service): ready once reconciled, watchdog pings while the heartbeat runs.
    watchdog = systemd.watchdog_seconds() or 60.0
    try:
        with systemd.service_lifecycle(ready=lambda: True, healthy=lambda: process.healthy(watchdog)):
            process.run_until_signal(duration)
    finally:
        process.stop()
    if process.controller.lost.is_set():
        raise typer.Exit(3)


@app.command("audit")
@one_line_errors
def audit_cmd() -> None:
    """Check the line against the evidence (ledger, certificates, states, slots); exit 1 on problems."""
    from factory.line.service import audit_line

    ctx = context()
    problems = audit_line(ctx.engine, ctx.settings)
    for problem in problems:
        console.print(f"PROBLEM {problem}", markup=False)
    if problems:
        raise typer.Exit(1)
    console.print("line consistent: ledger verifies, certificates complete, states match custody", markup=False)


@app.command("status")
@one_line_errors
def status_cmd(as_json: bool = typer.Option(False, "--json")) -> None:
    """Benches and slots with what is in them now."""
    ctx = context()
    with session_scope(ctx.engine) as s:
        benches = benches_view(s)
    if as_json:
        print_json(benches)
        return
    for bench in benches:
        alive = "alive" if bench["agent_alive"] else "NOT RUNNING"
        table = Table("slot", "device", "state", "job", "step", "progress", "reason / action",
                      title=f"{bench['name']} (agent {bench['agent']}, {alive})")  # fmt: skip
        for slot in bench["slots"]:
            job, device = slot["job"] or {}, slot["device"] or {}
            mac = f"MAC {slot['attached_mac']}" if slot["attached_mac"] else None
            note = slot["error"] or " / ".join(x for x in (job.get("reason"), job.get("action")) if x)
            table.add_row(
                slot["code"],
                device.get("serial") or slot["attached_serial"] or mac or "-",
                device.get("state") or "-",
                f"{job['id']} {job['status']}" if job else "-",
                job.get("current_step") or "-",
                f"{job['progress'] * 100:.0f}%" if job else "-",
                note or "",
            )
        console.print(table)


@app.command("jobs")
@one_line_errors
def jobs_cmd(
    status: str | None = typer.Option(None, "--status"),
    bench: str | None = typer.Option(None, "--bench"),
    limit: int = typer.Option(50, "--limit", min=1, max=limits.PAGE),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Recent jobs, newest first."""
    ctx = context()
    with session_scope(ctx.engine) as s:
        rows = jobs_view(s, status=status, bench=bench, limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "slot", "device", "pipeline", "status", "step", "reason")
    for j in rows:
        table.add_row(str(j["id"]), j["slot"], j["device_serial"], j["pipeline"], j["status"],
                      j["current_step"] or "-", j["reason"] or "")  # fmt: skip
    console.print(table)


@app.command("job")
@one_line_errors
def job_cmd(job_id: JobIdArg) -> None:
    """One job with its steps and log (JSON)."""
    ctx = context()
    with session_scope(ctx.engine) as s:
        print_json(job_detail(s, job_id))


def _act(kind: str, job_id: int, actor: str) -> None:
    ctx = context()
    with session_scope(ctx.engine) as s:
        if kind == "retry":
            job = line_service.retry_job(s, job_id, actor=actor)
            message = f"job {job_id} retried as job {job.id}"
        else:
            job = line_service.request_stop(s, job_id, kind=kind, actor=actor)
            message = f"job {job_id}: {kind} requested" if job.requested else f"job {job_id} {job.status}"
    console.print(message, markup=False)


@app.command("cancel")
@one_line_errors
def cancel_cmd(job_id: JobIdArg, actor: ActorOpt = "cli") -> None:
    """Cancel a job (the device is failed with the reason; it can be retried)."""
    _act("cancel", job_id, actor)


@app.command("abort")
@one_line_errors
def abort_cmd(job_id: JobIdArg, actor: ActorOpt = "cli") -> None:
    """Abort a job for good: the device leaves the line for manual handling."""
    _act("abort", job_id, actor)


@app.command("retry")
@one_line_errors
def retry_cmd(job_id: JobIdArg, actor: ActorOpt = "cli") -> None:
    """Queue a new attempt (restarting from the beginning) for a failed/cancelled/interrupted job."""
    _act("retry", job_id, actor)


if __name__ == "__main__":  # ``python -m factory.cli.line_cmd``: the agent without the whole CLI's imports
    app()
