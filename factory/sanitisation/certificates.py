"""Building and signing sanitisation certificates, and checking them against the site's key.

No database here: :mod:`factory.sanitisation.service` stores what these functions sign. Every
path (the line, remote over SSH, ``factory wipe``) names its people through :func:`person`, so a
certificate says the same thing about who sanitised and validated whichever way it was made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from factory.kernel.config import Settings
from imaging import certificate as document
from imaging.certificate import DataBackedUp, Destination, DeviceInfo, MediaSource
from imaging.result import EraseResult

if TYPE_CHECKING:  # the standalone wipe signs with these helpers and must not load the ORM
    from factory.kernel.models.device import Device, StorageMedium


@dataclass(frozen=True)
class Staff:
    """Who sanitised or validated: a person, named by their signed-in ``account`` where they have
    one; empty fields default to the organisation and site (see :func:`person`)."""

    name: str
    title: str = "Bench technician"
    organisation: str = ""
    location: str = ""
    contact: str = ""
    account: str | None = None


def person(staff: Staff, site: str, when: datetime, organisation: str | None = None) -> document.Person:
    """The certificate's record of ``staff`` at ``site`` of ``organisation``, dated ``when``."""
    return document.Person(
        name=staff.name,
        title=staff.title,
        organisation=staff.organisation or organisation or site,
        location=staff.location or site,
        contact=staff.contact or f"{staff.name}@{site}",
        date=when,
        account=staff.account,
    )


def signed_in(account: str, title: str) -> Staff:
    """The person behind a signed-in account, as a certificate names them."""
    return Staff(account, title=title, account=account)


# Why a medium is sanitised, as the certificate states it (derived from the device's custody).
REASON_USED = "returned after use: the device held user data and leaves it behind before reuse or disposal"
REASON_HOST = "organisational host asset sanitised before reuse or disposal"


@dataclass(frozen=True)
class Signatories:
    """Everything a certificate states beyond the erase result and the device."""

    operator: Staff
    validator: Staff
    destination: Destination = Destination.INTERNAL_REUSE
    data_backed_up: DataBackedUp = DataBackedUp.UNKNOWN
    reason: str | None = None  # None: derived from the medium's source (REASON_USED / REASON_HOST)
    agent: str | None = None  # the bench agent or host that ran the tool


def job_signatories(
    started_by: str | None, approved_by: str | None, agent: str, destination: Destination
) -> Signatories:
    """Who a line job's certificates name: the person who started it and the one who approved it
    (or, without an approval, the starter as validator), with the bench agent as the tool. Only a
    simulated line runs without a person; its certificates then say so instead of naming one."""
    if started_by:
        operator = signed_in(started_by, "Bench technician (started the job)")
        approver = approved_by or started_by
        validator = signed_in(
            approver, "Validator (approved the job)" if approved_by else "Validator (started the job)"
        )
    else:
        operator = validator = Staff(f"agent:{agent}", title="Bench agent (simulation: no person recorded)")
    return Signatories(operator, validator, destination, agent=agent)


@dataclass(frozen=True)
class Issuer:
    """Who issues: the organisation and site from configuration, and the data classification."""

    organisation: str
    site: str
    classification: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Issuer:
        return cls(settings.organisation, settings.site_name, settings.data_classification)


def sign_erasure(
    result: EraseResult,
    device: DeviceInfo,
    media_source: MediaSource,
    signatories: Signatories,
    key: Ed25519PrivateKey,
    *,
    issuer: Issuer,
    issued_at: datetime,
    custody: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """The signed envelope for a verified erase; ``custody`` is (hash, seq) of the entry it extends.

    :raises imaging.certificate.CertificateError: the result is not a verified success, or the
        context is incomplete; nothing was signed.
    """
    site, organisation = issuer.site, issuer.organisation
    reason = signatories.reason or (REASON_USED if media_source == MediaSource.USER else REASON_HOST)
    context = document.CertificateContext(
        organisation=organisation,
        site=site,
        device=device,
        media_source=media_source,
        destination=signatories.destination,
        data_backed_up=signatories.data_backed_up,
        sanitised_by=person(signatories.operator, site, issued_at, organisation),
        validated_by=person(signatories.validator, site, issued_at, organisation),
        pre_sanitisation_confidentiality=issuer.classification,
        post_sanitisation_confidentiality="unclassified (no data remains)",
        custody_previous_entry_sha256=custody[0] if custody else None,
        custody_sequence=custody[1] if custody else None,
        reason_for_sanitisation=reason,
        tool_agent=signatories.agent,
    )
    return document.sign_certificate(document.build_certificate(result, context, issued_at=issued_at), key)


def device_info(device: Device) -> DeviceInfo:
    """How a certificate names a recorded device."""
    return DeviceInfo(
        manufacturer=device.make or "unknown",
        model=device.model or "unknown",
        serial_number=device.serial,
        kind=device.kind,
        asset_tag=device.asset_tag,
    )


def with_medium_serial(result: EraseResult, serial: str, model: str | None) -> EraseResult:
    """A file-backed or unlabelled target reports no serial; the certificate names the recorded one."""
    if result.media.serial == serial:
        return result
    media = replace(result.media, serial=serial, model=result.media.model or model or None)
    return replace(result, media=media)


def stored_columns(envelope: Mapping[str, Any], device: Device, medium: StorageMedium) -> dict[str, Any]:
    """The columns every stored certificate row has, sanitisation or destruction: its id, what it
    is of, its digest and key from the signed envelope, and the envelope text exactly as signed."""
    doc, signature = envelope["certificate"], envelope["signature"]
    return {
        "id": doc["certificate_id"],
        "device_id": device.id or 0,
        "medium_id": medium.id or 0,
        "device_serial": device.serial,
        "medium_serial": medium.serial,
        "digest_sha256": signature["digest_sha256"],
        "key_fingerprint": signature["key_fingerprint"],
        "issued_at": doc["issued_at"],
        "envelope": document.dumps_envelope(envelope).decode("utf-8"),
    }


__all__ = [
    "REASON_HOST",
    "REASON_USED",
    "Issuer",
    "Signatories",
    "Staff",
    "device_info",
    "job_signatories",
    "person",
    "sign_erasure",
    "signed_in",
    "stored_columns",
    "with_medium_serial",
]
