"""The Tech Bar's contingency pool: ready spares kept per site and kind for walk-in swaps.

A technician stocks a ready device into the pool of its kind at the site; a walk-in swap may hand
out only a spare that is stocked in a pool (``take_for_swap``), which takes it out. A spare may
also be withdrawn with a reason. The stock level and the low-stock warning are read in views.py.
Stocking does not move the device (it stays ``ready``): the pool says which ready devices are
kept for swaps. Members' statuses are in statuses.py.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from factory.custody.errors import RecordNotFound
from factory.custody.models import Allocation, ContingencyPool, PoolMember
from factory.custody.outcome import Outcome, saved
from factory.custody.statuses import IN_POOL, OPEN_ALLOCATION, PoolStep, change_status
from factory.intake.views import get_device
from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, GuardRefused, InvalidInput
from factory.kernel.lifecycle.states import State
from factory.kernel.models.device import Device, DeviceKind

MAX_LOW_STOCK = 1000


def create_pool(
    session: Session, *, site: str, kind: str, low_stock_level: int, actor: str
) -> Outcome[ContingencyPool]:
    """A pool for one kind of device at one site.

    :raises InvalidInput: no site, an unknown kind, or a low-stock level out of 0..1000.
    :raises Conflict: the site already has a pool of that kind.
    """
    where, what = (site or "").strip(), (kind or "").strip()
    if not where or len(where) > 64:
        raise InvalidInput("a contingency pool names its site (at most 64 characters)")
    if what not in {k.value for k in DeviceKind}:
        raise InvalidInput(f"'{what[:40]}' is not a device kind")
    if not 0 <= low_stock_level <= MAX_LOW_STOCK:
        raise InvalidInput(f"the low-stock level must be between 0 and {MAX_LOW_STOCK}")
    if _pool(session, where, what) is not None:
        raise Conflict(f"site {where} already has a contingency pool of {what} devices")
    pool = ContingencyPool(
        site=where, kind=what, low_stock_level=low_stock_level, created_by=actor, created_at=utc_now()
    )
    return saved(session, pool)


def _pool(session: Session, site: str, kind: str) -> ContingencyPool | None:
    return session.exec(
        select(ContingencyPool).where(ContingencyPool.site == site, ContingencyPool.kind == kind)
    ).first()


def stocked_member(session: Session, device: Device) -> PoolMember | None:
    """The device's place in a pool, if it is stocked in one."""
    return session.exec(
        select(PoolMember).where(PoolMember.device_id == device.id, col(PoolMember.status).in_(IN_POOL))
    ).first()


def stock_spare(session: Session, *, site: str, serial: str, actor: str) -> Outcome[PoolMember]:
    """Put a ready device into its site's pool of its kind.

    :raises NotFound: no such device, or no pool of its kind at the site.
    :raises Conflict: already in a pool, or allocated to someone.
    :raises GuardRefused: the device is not ready (provisioned and on the shelf).
    """
    device = get_device(session, serial)
    pool = _pool(session, (site or "").strip(), device.kind)
    if pool is None:
        raise RecordNotFound(f"site {site} has no contingency pool of {device.kind} devices")
    if stocked_member(session, device) is not None:
        raise Conflict(f"device {device.serial} is already in a contingency pool")
    if device.state != State.READY.value:
        raise GuardRefused(f"device {device.serial} is {device.state}: only a ready device can be a spare")
    allocation = session.exec(
        select(Allocation).where(Allocation.device_id == device.id, col(Allocation.status).in_(OPEN_ALLOCATION))
    ).first()
    if allocation is not None:
        raise Conflict(f"device {device.serial} is allocated (allocation {allocation.id}): release it first")
    member = PoolMember(pool_id=pool.id or 0, device_id=device.id or 0, added_by=actor, added_at=utc_now())
    change_status(member, PoolStep.STOCK)
    return saved(session, member)


def withdraw_spare(session: Session, *, serial: str, reason: str, actor: str) -> Outcome[PoolMember]:
    """Take a spare out of its pool (to allocate it elsewhere, or found faulty).

    :raises NotFound: no such device, or it is not in a pool.
    :raises InvalidInput: no reason.
    """
    device = get_device(session, serial)
    member = stocked_member(session, device)
    if member is None:
        raise RecordNotFound(f"device {device.serial} is not in a contingency pool")
    if not (reason or "").strip():
        raise InvalidInput("withdrawing a spare from the pool needs a reason")
    change_status(member, PoolStep.WITHDRAW)
    member.left_at, member.left_reason = utc_now(), f"{reason.strip()[:150]} ({actor})"
    return saved(session, member)


def take_for_swap(session: Session, spare: Device) -> ContingencyPool:
    """The walk-in swap's spare leaves its pool; the pool it came from.

    :raises GuardRefused: the spare is not stocked in a contingency pool.
    """
    member = stocked_member(session, spare)
    if member is None:
        raise GuardRefused(
            f"spare {spare.serial} is not in a contingency pool: a walk-in swap hands out a spare from the pool"
        )
    change_status(member, PoolStep.SWAP_OUT)
    member.left_at, member.left_reason = utc_now(), "walk-in swap"
    session.add(member)
    pool = session.get(ContingencyPool, member.pool_id)
    assert pool is not None
    return pool
