"""Reads of the contingency pool: stock level per site and kind with its low-stock flag, and the
spares on the shelf (re-exported by views.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from factory.custody.models import ContingencyPool, PoolMember
from factory.custody.statuses import IN_POOL
from factory.kernel.models.device import Device


@dataclass(frozen=True)
class PoolLevel:
    site: str
    kind: str
    in_stock: int
    low_stock_level: int
    low: bool  # at or below the level: the board and the swap page warn
    spares: list[str]  # serials on the shelf, oldest first (hand those out first)


def pool_levels(session: Session, site: str | None = None) -> list[PoolLevel]:
    """Every pool (of one site, if given) with its stock now."""
    query = select(ContingencyPool).order_by(col(ContingencyPool.site), col(ContingencyPool.kind))
    if site is not None:
        query = query.where(ContingencyPool.site == site)
    out = []
    for pool in session.exec(query).all():
        spares = list(
            session.exec(
                select(Device.serial)
                .join(PoolMember, col(PoolMember.device_id) == col(Device.id))
                .where(PoolMember.pool_id == pool.id, col(PoolMember.status).in_(IN_POOL))
                .order_by(col(PoolMember.id))
            ).all()
        )
        out.append(
            PoolLevel(
                pool.site, pool.kind, len(spares), pool.low_stock_level, len(spares) <= pool.low_stock_level, spares
            )
        )
    return out


def low_pools(session: Session) -> list[PoolLevel]:
    """The pools at or below their low-stock level (the board's warning)."""
    return [p for p in pool_levels(session) if p.low]


__all__ = ["PoolLevel", "low_pools", "pool_levels"]
