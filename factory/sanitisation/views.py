"""Reads over the sanitisation evidence: the certificates of a device, and of one erase round."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from factory.kernel.models.certificate import Certificate


def certificates_of(session: Session, device_id: int) -> Sequence[Certificate]:
    """Every certificate issued for ``device_id``, oldest first."""
    return session.exec(
        select(Certificate).where(Certificate.device_id == device_id).order_by(col(Certificate.issued_at))
    ).all()


def round_certificates(session: Session, device_id: int, round_seq: int) -> Sequence[Certificate]:
    """The certificates of the erase round opened by custody entry ``round_seq``."""
    return session.exec(
        select(Certificate).where(Certificate.device_id == device_id, Certificate.erase_round_seq == round_seq)
    ).all()
