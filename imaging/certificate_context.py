"""What a certificate says that the erase engine cannot know (who, where, for whom, what next),
and the one spelling of times and enum values the certificate format allows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from imaging.certificate_envelope import SCHEMA_VERSION
from imaging.certificate_errors import CertificateRefusedError


class MediaSource(StrEnum):
    """Whose medium it is (NIST form: "media source")."""

    USER = "user"
    HOST = "host"


class Destination(StrEnum):
    INTERNAL_REUSE = "internal_reuse"
    EXTERNAL_REUSE = "external_reuse"
    RECYCLING = "recycling"
    MANUFACTURER = "manufacturer"
    OTHER = "other"


class DataBackedUp(StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Person:
    """Someone who sanitised or validated. Their signature is the site key's, their identity is here."""

    name: str
    title: str
    organisation: str
    location: str
    contact: str
    date: datetime  # timezone-aware; recorded in UTC
    account: str | None = None  # the signed-in account that acted (None: no account, e.g. a loose-media wipe)


@dataclass(frozen=True)
class DeviceInfo:
    """The host device the medium came from (the laptop or tablet, not the disk)."""

    manufacturer: str
    model: str
    serial_number: str
    kind: str  # laptop, tablet, phone, desktop, loose-media, ...
    asset_tag: str | None = None  # organisation's property number


@dataclass(frozen=True)
class CertificateContext:
    """What the certificate needs that the erase engine cannot know."""

    organisation: str
    site: str
    device: DeviceInfo
    media_source: MediaSource
    destination: Destination
    data_backed_up: DataBackedUp
    sanitised_by: Person
    validated_by: Person
    destination_detail: str | None = None  # required when destination is OTHER
    pre_sanitisation_confidentiality: str | None = None  # the data classification (required since v2)
    post_sanitisation_confidentiality: str | None = None
    custody_previous_entry_sha256: str | None = None  # hex SHA-256 of the ledger entry this extends
    custody_sequence: int | None = None
    # Schema version 2: why the medium was sanitised, and the bench agent or host that ran the tool.
    reason_for_sanitisation: str = ""
    tool_agent: str | None = None


class IssuingContext(Protocol):
    """What every certificate type names of who issues it and for which device."""

    @property
    def organisation(self) -> str: ...

    @property
    def site(self) -> str: ...

    @property
    def device(self) -> DeviceInfo: ...


def document_head(
    certificate_type: str,
    context: IssuingContext,
    standards: dict[str, Any],
    certificate_id: uuid.UUID | None,
    issued_at: datetime | None,
) -> dict[str, Any]:
    """The members every certificate type opens with, in the format's order (a new id and the
    current time unless given)."""
    device = context.device
    return {
        "schema_version": SCHEMA_VERSION,
        "certificate_type": certificate_type,
        "certificate_id": str(certificate_id or uuid.uuid4()),
        "issued_at": utc_iso(issued_at or datetime.now(UTC), "issued_at"),
        "standards": standards,
        "organisation": {"name": context.organisation, "site": context.site},
        "device": {
            "manufacturer": device.manufacturer,
            "model": device.model,
            "serial_number": device.serial_number,
            "asset_tag": device.asset_tag,
            "kind": device.kind,
        },
    }


def enum_value(enum_type: type[StrEnum], value: object) -> str:
    """The enum's wire value; a bare string from a caller is accepted only if it is a member."""
    try:
        return enum_type(value).value
    except ValueError as exc:
        raise CertificateRefusedError(f"{value!r} is not a {enum_type.__name__}") from exc


def utc_iso(moment: datetime, name: str) -> str:
    """``moment`` as the format writes every time: ISO 8601 in UTC with a ``Z``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CertificateRefusedError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def normalised_utc(text: str, name: str) -> str:
    """The engine's UTC time in this format's single spelling (``...Z``); the instant is unchanged."""
    return utc_iso(parse_utc(text, name), name)


def parse_utc(text: str, name: str) -> datetime:
    """An ISO 8601 time that must be in UTC; anything else refuses the certificate."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise CertificateRefusedError(f"{name} {text!r} is not an ISO 8601 time") from exc
    if moment.utcoffset() != timedelta(0):
        raise CertificateRefusedError(f"{name} {text!r} is not in UTC")
    return moment
