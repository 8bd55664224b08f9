"""The Tech Bar's contingency pool: stocked per site and kind, the stock level and its low-stock
flag, and a walk-in swap hands out only a pooled spare (which leaves the pool)."""

from __future__ import annotations

import pytest
from harness.custody_data import accept, allocated, issue_first, officer, pooled, ready
from harness.domain import receive, state_of, verifier

from factory.custody.service import create_pool, stock_spare, walk_in_swap, withdraw_spare
from factory.custody.views import pool_levels
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import Conflict, GuardRefused, InvalidInput, NotFound


def _levels(ctx) -> dict[str, tuple[int, bool]]:
    with session_scope(ctx.engine) as s:
        return {f"{p.site}/{p.kind}": (p.in_stock, p.low) for p in pool_levels(s)}


def test_stock_level_low_warning_and_swap_from_the_pool(ctx) -> None:
    pooled(ctx, "SP-1")
    pooled(ctx, "SP-2")
    assert _levels(ctx) == {"test-site/laptop": (2, False)}  # low-stock level 1
    pc = officer(ctx)
    issue_first(ctx, "OLD-1", pc)
    with session_scope(ctx.engine) as s:
        walk_in_swap(s, staff_number=pc, faulty_serial="OLD-1", spare_serial="SP-1", fault="no wifi",
                     acceptance=accept(), actor="tech.one", verifier=verifier(ctx))  # fmt: skip
    assert state_of(ctx, "SP-1") == "issued"
    assert _levels(ctx) == {"test-site/laptop": (1, True)}  # at the level: the board warns


def test_stocking_refusals(ctx) -> None:
    with session_scope(ctx.engine) as s:
        create_pool(s, site="HQ", kind="laptop", low_stock_level=2, actor="tech.one")
    with pytest.raises(Conflict, match="already has a contingency pool"), session_scope(ctx.engine) as s:
        create_pool(s, site="HQ", kind="laptop", low_stock_level=2, actor="tech.one")
    with pytest.raises(InvalidInput, match="not a device kind"), session_scope(ctx.engine) as s:
        create_pool(s, site="HQ", kind="toaster", low_stock_level=2, actor="tech.one")
    receive(ctx, "USED-1")
    with pytest.raises(GuardRefused, match="USED-1 is received: only a ready device"), session_scope(ctx.engine) as s:
        stock_spare(s, site="HQ", serial="USED-1", actor="tech.one")
    ready(ctx, "TAB-1", kind="tablet")
    with pytest.raises(NotFound, match="no contingency pool of tablet"), session_scope(ctx.engine) as s:
        stock_spare(s, site="HQ", serial="TAB-1", actor="tech.one")
    officer(ctx, "PC9")
    allocated(ctx, "ALLOC-1", "PC9")
    with pytest.raises(GuardRefused, match="ALLOC-1 is allocated"), session_scope(ctx.engine) as s:
        stock_spare(s, site="HQ", serial="ALLOC-1", actor="tech.one")
    ready(ctx, "OK-1")
    with session_scope(ctx.engine) as s:
        stock_spare(s, site="HQ", serial="OK-1", actor="tech.one")
    with pytest.raises(Conflict, match="already in a contingency pool"), session_scope(ctx.engine) as s:
        stock_spare(s, site="HQ", serial="OK-1", actor="tech.one")
    with session_scope(ctx.engine) as s:
        withdraw_spare(s, serial="OK-1", reason="screen scratched", actor="tech.one")
    with pytest.raises(NotFound, match="not in a contingency pool"), session_scope(ctx.engine) as s:
        withdraw_spare(s, serial="OK-1", reason="again", actor="tech.one")
