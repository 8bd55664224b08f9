"""The agent shortens the GIL's switch interval while it runs and gives the process its own back.

Why it does: dozens of job threads each wait for the GIL after every database round trip (see
``AGENT_SWITCH_INTERVAL``). Tests run agents inside the test process, so the old value must return.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from factory.kernel.context import AppContext
from factory.line.agent import AGENT_SWITCH_INTERVAL, LineAgentProcess, SimulationOptions
from factory.line.bench_config import simulated_config


@pytest.fixture
def default_interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # CPython's default, whatever an earlier test left
    yield 0.005
    sys.setswitchinterval(before)


def test_the_agent_runs_with_short_gil_turns_and_restores_the_process_value(
    ctx: AppContext, default_interval: float
) -> None:
    agent = LineAgentProcess(ctx, simulated_config("1x1", agent="switch"), simulation=SimulationOptions(tablets=False))
    agent.start()
    try:
        assert sys.getswitchinterval() == pytest.approx(AGENT_SWITCH_INTERVAL)
    finally:
        agent.stop(drain_seconds=5)
    assert sys.getswitchinterval() == pytest.approx(default_interval)
