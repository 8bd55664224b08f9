"""``factory serve``: the API and web pages; with ``--simulate``, a whole simulated bench line."""

from __future__ import annotations

import secrets
import signal
import socket
import threading
from typing import TYPE_CHECKING

import typer

from factory.cli.common import console, context, fail, one_line_errors
from factory.cli.inputs import bounded
from factory.cli.systemd import http_answers, service_lifecycle
from factory.kernel import limits
from factory.kernel.context import AppContext
from factory.kernel.db.migrate import upgrade

if TYPE_CHECKING:
    from rich.console import Console

DEMO_USER = "sim-technician"
MIB = 2**20


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @one_line_errors
    def serve_cmd(
        host: str = typer.Option("127.0.0.1", "--host", callback=bounded("--host", limits.HOST)),
        port: int = typer.Option(8000, "--port", min=limits.PORT_MIN, max=limits.PORT_MAX),
        simulate: str | None = typer.Option(
            None, "--simulate", help="Also run a simulated bench line, BENCHESxSLOTS (e.g. 2x4), with its board."
        ),
        disk_mib: int = typer.Option(16, "--disk-mib", min=1, max=1024, help="Simulated disk size."),
        pull_rate: float = typer.Option(0.05, "--pull-rate", min=0.0, max=1.0, help="Share of devices pulled mid-job."),
    ) -> None:
        """Run the HTTP API (OpenAPI at /docs) and web pages on the configured database."""
        check_listen(host, port)
        ctx = context(require_schema=False)
        if ctx.settings.is_sqlite:
            upgrade(ctx.settings.database_url)  # embedded default: always ready to run
        if simulate is None:
            run_api(host, port, "info")
            return
        _serve_simulated(ctx, simulate, host, port, disk_mib * MIB, pull_rate)


def check_listen(host: str, port: int) -> None:
    """Refuse, in one line and before anything is set up, an address uvicorn could not listen on
    (it would log its way out over several lines). Binding like uvicorn does (SO_REUSEADDR) still
    fails while another process listens there."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        fail(f"--host {host}: {getattr(exc, 'strerror', None) or exc}")
        return
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def run_api(host: str, port: int, log_level: str) -> None:
    """uvicorn until SIGINT/SIGTERM; under systemd, READY=1 once it listens and watchdog pings while
    it answers ``/healthz``."""
    import uvicorn

    from factory.kernel.logs import log_config

    # JSON lines with request ids; the API writes its own access log (api/observability.py).
    config = uvicorn.Config(
        "api.app:create_app", factory=True, host=host, port=port, log_level=log_level,
        log_config=log_config(log_level), access_log=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGTERM and then raises it again under the handler it found.
    # Python's default would kill us there, before the simulated agent is stopped and drained; with
    # this one a stop (systemctl stop) returns here and ends cleanly.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None) if main else None
    try:
        with service_lifecycle(ready=lambda: server.started, healthy=lambda: http_answers(host, port)):
            server.run()
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _serve_simulated(ctx: AppContext, layout: str, host: str, port: int, disk_bytes: int, pull_rate: float) -> None:
    from factory.line.service import LineAgentProcess, SimulationOptions, set_process_bus, simulated_config

    config = simulated_config(layout, agent="simulated-line")
    _ensure_site_key(ctx)
    password = _demo_login(ctx)
    agent = LineAgentProcess(ctx, config, simulation=SimulationOptions(disk_bytes=disk_bytes, pull_rate=pull_rate))
    report = agent.start()
    set_process_bus(agent.bus)  # the board's live stream wakes on this agent's progress ticks
    announce(
        console,
        f"simulated line: {len(config.benches)} bench(es) x {len(config.benches[0].slots)} slot(s), "
        f"disks under {ctx.settings.home / 'sim'}; {report.summary()}",
        f"board: http://{host}:{port}/board",
        f"technician login: {DEMO_USER} / {password}",
    )
    try:
        run_api(host, port, "warning")
    finally:
        set_process_bus(None)
        agent.stop()


def announce(out: Console, *lines: str) -> None:
    """Print each line whole: Rich would otherwise wrap at the terminal's width and could put a
    password on a line of its own (or split it); the terminal may still fold a long line visually."""
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def _ensure_site_key(ctx: AppContext) -> None:
    from factory.kernel.site_keys import init_keys

    if not ctx.settings.private_key_path.exists():
        info = init_keys(ctx.settings)
        announce(console, f"created the site signing key ({info.fingerprint})")


def _demo_login(ctx: AppContext) -> str:
    """A technician login for the simulation's board, with a fresh password every run."""
    from sqlmodel import select

    from factory.identity.models import User
    from factory.identity.service import add_user, set_password
    from factory.kernel.db.engine import session_scope

    password = secrets.token_urlsafe(12)
    with session_scope(ctx.engine) as s:
        if s.exec(select(User).where(User.name == DEMO_USER)).first() is None:
            add_user(s, DEMO_USER, "technician")
        set_password(s, DEMO_USER, password)
    return password
