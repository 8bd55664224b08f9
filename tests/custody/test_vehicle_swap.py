"""Replacing a faulty in-vehicle tablet: out and in in one change (both entries or neither)."""

from __future__ import annotations

from datetime import date

import pytest
from harness.custody_data import entry_count, ledger_ok, ready
from harness.domain import state_of, verifier

from factory.custody.service import Fitter, allocate, install_tablet, register_vehicle, replace_tablet
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused

FITTER = Fitter("Sam Fitter", "Fleet Fit Ltd", date(2026, 1, 5))


def _installed(ctx) -> None:
    for serial in ("T-OLD", "T-NEW", "T-SPARE"):
        ready(ctx, serial, kind="vehicle-tablet")
    with session_scope(ctx.engine) as s:
        register_vehicle(s, fleet_number="FL-7")
        first = allocate(s, serial="T-OLD", fleet_number="FL-7", actor="tech.one").record.id or 0
        allocate(s, serial="T-NEW", fleet_number="FL-7", actor="tech.one")
    check = verifier(ctx)
    with session_scope(ctx.engine) as s:
        install_tablet(s, allocation_id=first, installer_name="Sam", installer_company="Fleet Fit Ltd",
                       installed_on=date(2026, 1, 2), actor="tech.one", verifier=check)  # fmt: skip


def _replace(ctx, faulty: str, replacement: str) -> None:
    check = verifier(ctx)
    with session_scope(ctx.engine) as s:
        replace_tablet(s, fleet_number="FL-7", faulty_serial=faulty, replacement_serial=replacement,
                       fault="touch screen dead", fitter=FITTER, actor="tech.one", verifier=check)  # fmt: skip


def test_replacement_is_one_step_and_refusals_write_nothing(ctx) -> None:
    _installed(ctx)
    before = entry_count(ctx)
    with pytest.raises(GuardRefused, match="T-SPARE is not allocated to vehicle FL-7"):
        _replace(ctx, "T-OLD", "T-SPARE")
    with pytest.raises(GuardRefused, match="T-NEW is not installed in vehicle FL-7"):
        _replace(ctx, "T-NEW", "T-OLD")
    assert entry_count(ctx) == before and state_of(ctx, "T-OLD") == "installed"
    _replace(ctx, "T-OLD", "T-NEW")
    assert (state_of(ctx, "T-OLD"), state_of(ctx, "T-NEW")) == ("returned", "installed")
    assert entry_count(ctx) == before + 2 and ledger_ok(ctx)
