"""Refresh waves: cohorts (a station or unit) with a target; their KPIs are in ``kpis.py``.

A wave's courier cap is at most 25%: courier dispatch is for officers formally shielding, at most
a quarter of the laptops issued in a wave (a wave may set a lower share, never a higher one).
"""

from __future__ import annotations

from sqlmodel import Session, select

from factory.custody.models import Wave
from factory.custody.outcome import stored
from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, InvalidInput

MAX_COURIER_CAP_PERCENT = 25


def create_wave(
    session: Session, *, name: str, cohort: str, target_devices: int, courier_cap_percent: int = 25
) -> Wave:
    """Register a refresh wave.

    :raises InvalidInput: a bad name, a negative target, or a cap outside 0-25.
    :raises Conflict: the name is taken.
    """
    text = (name or "").strip()
    if not text or len(text) > 64:
        raise InvalidInput("a wave name is 1-64 characters")
    if target_devices < 0:
        raise InvalidInput("a wave's target must not be negative")
    if not 0 <= courier_cap_percent <= MAX_COURIER_CAP_PERCENT:
        raise InvalidInput(f"the courier cap is a percentage from 0 to {MAX_COURIER_CAP_PERCENT}")
    if session.exec(select(Wave).where(Wave.name == text)).first():
        raise Conflict(f"wave {text} already exists")
    wave = Wave(
        name=text,
        cohort=(cohort or "").strip()[:200],
        target_devices=target_devices,
        courier_cap_percent=courier_cap_percent,
        created_at=utc_now(),
    )
    return stored(session, wave)
