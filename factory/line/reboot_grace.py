"""Expected reboots on switch-port slots: a link down/up on the device's port while a step
reboots it is part of the flow, not the device leaving.

A step that reboots the device (a hostname change on Windows, a kernel update) first calls
:func:`expect_reboot` with the slot and a grace period; the window is stored on the slot, so any
process serving the switch's events sees it. A link-down (or the occupant's MAC leaving) inside the
window keeps the slot and its job; the device must be back (link-up, or its MAC seen again) before
the window closes, else the job fails with that reason through the controller's removal path.
"""

from __future__ import annotations

import time

from sqlmodel import Session

from factory.kernel.errors import InvalidInput
from factory.line.models import Slot
from factory.line.slots import lock_slot

DEFAULT_GRACE_SECONDS = 300.0
MAX_GRACE_SECONDS = 3600.0


def expect_reboot(session: Session, slot_code: str, seconds: float = DEFAULT_GRACE_SECONDS) -> float:
    """Open the slot's reboot window for ``seconds``; the epoch it closes at.

    :raises InvalidInput: a grace period outside 0-3600 s.
    """
    if not 0 < seconds <= MAX_GRACE_SECONDS:
        raise InvalidInput(f"reboot grace {seconds} s is outside 0-{MAX_GRACE_SECONDS:g} s")
    slot = lock_slot(session, slot_code)
    slot.reboot_until = time.time() + seconds
    slot.link_down_at = None
    session.add(slot)
    return slot.reboot_until


def in_window(slot: Slot, now: float) -> bool:
    return slot.reboot_until is not None and now <= slot.reboot_until


def went_down(slot: Slot, now: float) -> float | None:
    """The link dropped: inside the window, note it and return the seconds left for the device to
    come back; outside it, None (the device left)."""
    if not in_window(slot, now):
        return None
    if slot.link_down_at is None:
        slot.link_down_at = now
    return max(0.0, (slot.reboot_until or now) - now)


def came_back(slot: Slot) -> bool:
    """The device answered again (link up, MAC seen): True if it was down in a reboot."""
    was_down = slot.link_down_at is not None
    slot.link_down_at = None
    return was_down


def overdue(slot: Slot, now: float) -> str | None:
    """Why the job fails, if the device went down in its reboot and the window closed without it."""
    if slot.link_down_at is None or slot.reboot_until is None or now <= slot.reboot_until:
        return None
    grace = slot.reboot_until - slot.link_down_at
    return f"device did not come back within {grace:.0f} s of its expected reboot (link still down)"
