"""Shared test plumbing: ``database_url``/``ctx`` (every such test runs on SQLite and PostgreSQL),
``client``/``tokens`` (the API in process, one token per role) and ``sim`` (snmpsim switches).
Builders live in ``tests/harness``.

Tests that need root, loop devices, FUSE, namespaces or sshd call ``harness.requirements.require_root``
(or ``require_tool``): they skip with a stated reason off CI and fail on CI, never silently.
Long-running tests carry ``@pytest.mark.slow``; ``pytest -m "not slow"`` is the fast loop, CI runs all.
"""

from __future__ import annotations

# ---------------------------------------------------------------- databases
# Every test that asks for ``database_url`` (or ``ctx``) runs twice: on SQLite and on PostgreSQL.
# Each test gets a fresh database cloned from a template migrated once per session.
import itertools
import os
import shutil as _shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from harness.pg import postgres_server
from harness.requirements import IN_CI, require, require_root, require_tool  # noqa: F401
from harness.snmpsim import SnmpSim, reset_switches, switch_simulator
from harness.xdist_groups import pytest_xdist_make_scheduler  # noqa: F401  (a hook: the QEMU guests' group)

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    with postgres_server() as dsn:
        yield dsn


def _pg_url(admin_dsn: str, dbname: str) -> str:
    base = admin_dsn.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+psycopg://", 1) + "/" + dbname


@pytest.fixture(scope="session")
def pg_template(pg_admin_dsn: str) -> Iterator[str]:
    from factory.kernel.db.migrate import upgrade

    name = f"df_tmpl_{os.getpid()}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    upgrade(_pg_url(pg_admin_dsn, name))
    yield name
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from factory.kernel.db.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "factory.db"
        _shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    admin = request.getfixturevalue("pg_admin_dsn")
    template_name = request.getfixturevalue("pg_template")
    name = f"df_t_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template_name}")
    yield _pg_url(admin, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# ---------------------------------------------------------------- the API in process
ROLES = ("technician", "courier", "auditor", "admin")


@pytest.fixture
def client(ctx: object) -> Iterator[object]:
    """The app on ``ctx`` behind an in-process HTTP client (server errors come back as 500s)."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(ctx), raise_server_exceptions=False) as c:  # type: ignore[arg-type]
        yield c


@pytest.fixture
def tokens(ctx: object) -> dict[str, str]:
    """One API token per role, for users named after it ('technician1', ...)."""
    from factory.identity.service import add_user
    from factory.kernel.db.engine import session_scope

    with session_scope(ctx.engine) as s:  # type: ignore[attr-defined]
        return {role: add_user(s, f"{role}1", role)[1] for role in ROLES}


# ---------------------------------------------------------------- switches
# One snmpsim per test module that asks for it; every test gets its switches reset to the fixture files.


@pytest.fixture(scope="module")
def snmpsim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpSim]:
    yield from switch_simulator(tmp_path_factory.mktemp("snmpsim"))


@pytest.fixture
def sim(snmpsim_server: SnmpSim) -> SnmpSim:
    """The shared simulator with every switch reset to its fixture file."""
    return reset_switches(snmpsim_server)


@pytest.fixture
def ctx(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """An AppContext on a fresh database with a site key; env set so the CLI sees the same."""
    from factory.kernel.config import Settings
    from factory.kernel.context import AppContext
    from factory.kernel.site_keys import init_keys

    home = tmp_path / "home"
    monkeypatch.setenv("FACTORY_HOME", str(home))
    monkeypatch.setenv("FACTORY_DATABASE_URL", database_url)
    context = AppContext(Settings(home=home, database_url=database_url, site_name="test-site"))
    init_keys(context.settings)
    yield context
    context.engine.dispose()
