"""The line signs tree heads by itself on the site's schedule, so what it appends is covered by a
signed head without anyone running 'factory ledger head' (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness.bench_line import SLOT, Line, running_line
from harness.waiting import wait_until
from sqlmodel import select

from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.heads import HeadPolicy
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.models.ledger_tree import LedgerHead
from factory.line.bench_config import simulated_config
from factory.line.identify import Identity
from factory.line.scheduled_heads import ScheduledHeads
from factory.line.simulate import NoOpProvisioner


@pytest.fixture
def line(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[Line]:
    monkeypatch.setenv("FACTORY_HEAD_EVERY_ENTRIES", "3")
    monkeypatch.setattr("factory.line.scheduled_heads.LOOK_EVERY_SECONDS", 0.05)
    config = simulated_config("1x2", agent="heads-agent")
    yield from running_line(ctx, config, NoOpProvisioner(), disk_bytes=1 << 20, seed=5)


def _heads(ctx: AppContext) -> list[LedgerHead]:
    with session_scope(ctx.engine) as s:
        return list(s.exec(select(LedgerHead).order_by(LedgerHead.tree_size)).all())


def test_the_line_signs_heads_on_its_schedule(line: Line) -> None:
    line.sim.arrive(SLOT, Identity.RETURNED)
    line.wait_job()

    def tail_covered() -> int | None:
        report = verify_ledger(line.ctx.engine, keyring=line.ctx.site_keys.keyring())
        assert report.ok, report.reason
        return report.unsigned_tail if report.unsigned_tail < 3 else None  # None: keep waiting

    # The tail comes back under the site's count (3) without anyone asking for a head.
    assert wait_until(lambda: tail_covered() is not None and _heads(line.ctx), 10, 0.05, "a scheduled head")
    heads = _heads(line.ctx)
    assert {h.kind for h in heads} == {"scheduled"}
    assert heads[-1].tree_size >= 3


def test_nothing_is_signed_while_the_tail_is_under_the_policy(ctx: AppContext) -> None:
    heads = ScheduledHeads(ctx.engine, ctx.settings, HeadPolicy(every_entries=1000, every_seconds=3600))
    heads.tick()
    assert heads.signed == 0 and _heads(ctx) == []


def test_a_malformed_schedule_stops_the_line_at_start(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACTORY_HEAD_EVERY_SECONDS", "soon")
    with pytest.raises(ValueError, match="FACTORY_HEAD_EVERY_SECONDS"):
        ScheduledHeads(ctx.engine, ctx.settings)
