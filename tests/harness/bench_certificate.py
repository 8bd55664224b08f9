"""The certificate context of a laptop wiped on a bench, for tests and benchmarks that need a real
signed certificate but no particular people, device or place (``tests/imaging/test_certificate.py``
keeps its own, whose every value its assertions read)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from imaging.certificate import CertificateContext, DataBackedUp, Destination, DeviceInfo, MediaSource, Person


def bench_context(
    site: str,
    serial: str,
    *,
    model: tuple[str, str] = ("Dell", "Latitude 5440"),
    asset_tag: str | None = None,
    custody: tuple[str, int] = ("a" * 64, 1),
    when: datetime | None = None,
) -> CertificateContext:
    """The context of laptop ``serial`` (``model``: manufacturer and model) sanitised at ``site``,
    the organisation of the same name, extending custody entry ``custody`` (its hash and sequence),
    by a bench technician and checked by a validator at ``when`` (now unless given)."""
    technician = Person(
        name="Bench Tech",
        title="Technician",
        organisation=site,
        location=site,
        contact="tech@example.invalid",
        date=when or datetime.now(UTC),
    )
    return CertificateContext(
        organisation=site,
        site=site,
        device=DeviceInfo(model[0], model[1], serial_number=serial, kind="laptop", asset_tag=asset_tag),
        media_source=MediaSource.USER,
        destination=Destination.INTERNAL_REUSE,
        data_backed_up=DataBackedUp.NO,
        sanitised_by=technician,
        validated_by=replace(technician, name="Bench Validator", title="Validator"),
        custody_previous_entry_sha256=custody[0],
        custody_sequence=custody[1],
        pre_sanitisation_confidentiality="OFFICIAL",
        reason_for_sanitisation="returned by its officer",
    )
