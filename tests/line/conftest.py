"""Fixtures of the line tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.line_sites import ONE_SWITCH, switch_site_file

from factory.kernel.context import AppContext
from factory.line.bench_config import load_line_config
from factory.line.controller import Controller


@pytest.fixture
def controller(ctx: AppContext, tmp_path: Path) -> Iterator[Controller]:
    config = load_line_config(switch_site_file(tmp_path, ONE_SWITCH))
    ctl = Controller(ctx, config)  # the events below are the ones the switch poller submits
    ctl.start()
    try:
        yield ctl
    finally:
        ctl.stop(drain_seconds=5)
