"""The served site the technicians' page journeys share (one per test module): a temporary
FACTORY_HOME on a copy of the migrated SQLite template, the site key, one user per role plus a
second technician (the destruction witness), and a browser. tests/web/conftest.py makes them
fixtures of every web test: tech_site, tech_browser, tech_page."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from factory.identity.service import add_user, set_password
from factory.intake.views import get_device
from factory.kernel.config import Settings
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.site_keys import init_keys
from harness.browser import chromium, new_page, served
from harness.web import PASSWORD, make_users


@dataclass
class Site:
    ctx: AppContext
    base: str

    def state(self, serial: str) -> str | None:
        with session_scope(self.ctx.engine) as s:
            return get_device(s, serial).state


@pytest.fixture(scope="module")
def tech_site(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("tech-site")
    shutil.copyfile(sqlite_template, root / "factory.db")
    ctx = AppContext(Settings(home=root / "home", database_url=f"sqlite:///{root / 'factory.db'}", site_name="web"))
    init_keys(ctx.settings)
    make_users(ctx)
    with session_scope(ctx.engine) as s:
        add_user(s, "technician2", "technician")
        set_password(s, "technician2", PASSWORD)
    try:
        with served(create_app(ctx)) as base:
            yield Site(ctx, base)
    finally:
        ctx.engine.dispose()


@pytest.fixture(scope="module")
def tech_browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def tech_page(tech_browser: Any, tech_site: Site) -> Iterator[Any]:
    with new_page(tech_browser, tech_site.base) as p:
        yield p
