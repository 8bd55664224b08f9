"""Request and response models of the custody workflow API.

A request body's fields are the custody step's keyword arguments (``StepIn.args()``), so a
route passes them on without naming each one again; documents and acceptances arrive as base64
JSON and are handed on as the service's ``Upload`` and ``Acceptance``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from api.schemas.common import CustodyEntryPublic
from factory.custody.models import AllocationChannel
from factory.custody.service import Acceptance, Upload
from factory.kernel import limits
from factory.kernel.errors import InvalidInput
from factory.kernel.models.parties import CustodianKind

Name = Field(min_length=1, max_length=limits.PARTY)
Serial = Field(min_length=1, max_length=limits.SERIAL)


class UploadIn(BaseModel):
    media_type: str = Field(min_length=1, max_length=64)
    content_base64: str = Field(min_length=4, max_length=28 * 2**20)
    filename: str = Field(default="", max_length=limits.PARTY)

    def to_upload(self) -> Upload:
        """:raises InvalidInput: the content is not valid base64."""
        try:
            content = base64.b64decode(self.content_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(f"document '{self.filename or self.media_type}' is not valid base64") from exc
        return Upload(content=content, media_type=self.media_type, filename=self.filename)


class AcceptanceIn(BaseModel):
    name: str = Name
    signature: UploadIn | None = None
    pin: str | None = Field(default=None, min_length=4, max_length=8)

    def to_acceptance(self) -> Acceptance:
        return Acceptance(
            name=self.name, signature=self.signature.to_upload() if self.signature else None, pin=self.pin
        )


def _arg(value: object) -> object:
    if isinstance(value, UploadIn):
        return value.to_upload()
    if isinstance(value, AcceptanceIn):
        return value.to_acceptance()
    return value


class StepIn(BaseModel):
    """A request body whose fields are a custody step's keyword arguments."""

    def args(self) -> dict[str, Any]:
        """The fields as the step takes them (uploads decoded, acceptances built).

        :raises InvalidInput: a document is not valid base64.
        """
        return {name: _arg(getattr(self, name)) for name in type(self).model_fields}


class OfficerIn(StepIn):
    staff_number: str = Field(min_length=1, max_length=32)
    name: str = Name
    team: str = Field(default="", max_length=limits.PARTY)
    at_profile: str = Field(default="", max_length=limits.PARTY)
    pin: str | None = Field(default=None, min_length=4, max_length=8)


class VehicleIn(StepIn):
    fleet_number: str = Field(min_length=1, max_length=32)
    registration: str = Field(default="", max_length=32)
    description: str = Field(default="", max_length=limits.PARTY)


class BuildIn(StepIn):
    serial: str = Serial  # the vehicle tablet to build for the vehicle in the path


class PartyIn(StepIn):
    kind: CustodianKind
    reference: str = Field(min_length=1, max_length=limits.REFERENCE)
    name: str = Name
    address: str = Field(default="", max_length=limits.REASON)


class WaveIn(StepIn):
    name: str = Field(min_length=1, max_length=64)
    cohort: str = Field(default="", max_length=limits.PARTY)
    target_devices: int = Field(default=0, ge=0, le=1_000_000)
    courier_cap_percent: int = Field(default=25, ge=0, le=25)


class AllocateIn(StepIn):
    serial: str = Serial
    staff_number: str | None = Field(default=None, max_length=32)
    fleet_number: str | None = Field(default=None, max_length=32)
    channel: AllocationChannel | None = None
    wave: str | None = Field(default=None, max_length=64)


class ReasonIn(StepIn):
    reason: str = Field(min_length=1, max_length=limits.REASON)


class ExceptionIn(ReasonIn):
    allocation_id: int


class IssueIn(StepIn):
    acceptance: AcceptanceIn
    old_serial: str | None = Field(default=None, max_length=limits.SERIAL)
    approval_id: int | None = None


class SwapIn(StepIn):
    staff_number: str = Field(min_length=1, max_length=32)
    faulty_serial: str = Serial
    spare_serial: str = Serial
    fault: str = Field(min_length=1, max_length=limits.REASON)
    acceptance: AcceptanceIn
    wave: str | None = Field(default=None, max_length=64)


class InstallIn(StepIn):
    installer_name: str = Name
    installer_company: str = Name
    installed_on: date
    job_sheet: UploadIn | None = None


class DecommissionIn(StepIn):
    removed_by: str = Name


class ConsignmentIn(StepIn):
    allocation_ids: list[int] = Field(min_length=1, max_length=500)
    courier: str = Name
    recipient_name: str = Name
    recipient_address: str = Field(min_length=1, max_length=limits.REASON)
    seal_numbers: list[str] = Field(min_length=1, max_length=50)
    # staff number -> reference of the officer's formal shielding (for officers not recorded yet)
    shielding: dict[str, str] = Field(default_factory=dict, max_length=500)


class ScanIn(StepIn):
    scanned_serials: list[str] = Field(min_length=1, max_length=500)
    scanned_seals: list[str] = Field(min_length=1, max_length=50)


class DeliveryIn(StepIn):
    recipient_name: str = Name
    signature: UploadIn
    delivered_at: datetime | None = None
    scanned_serials: list[str] | None = Field(default=None, max_length=500)
    scanned_seals: list[str] = Field(min_length=1, max_length=50)
    # one old device per new one, same officer; none for a device under an approved exception
    old_serials: list[str] = Field(default_factory=list, max_length=500)


class TransferIn(StepIn):
    organisation_reference: str = Field(min_length=1, max_length=limits.REFERENCE)
    serials: list[str] = Field(min_length=1, max_length=500)


class BatchIn(StepIn):
    recycler_reference: str = Field(min_length=1, max_length=limits.REFERENCE)
    description: str = Field(min_length=1, max_length=limits.REASON)
    ewc_code: str = Field(min_length=1, max_length=16)
    sic_code: str = Field(min_length=1, max_length=16)


class CollectIn(StepIn):
    containment: str = Field(min_length=1, max_length=limits.PARTY)
    place: str = Field(min_length=1, max_length=limits.REASON)
    transferor_name: str = Name
    transferor_address: str = Field(min_length=1, max_length=limits.REASON)
    transferor_signature: UploadIn
    transferee_signature: UploadIn
    hierarchy_declaration: bool
    carrier_name: str = Field(min_length=1, max_length=limits.PARTY)
    carrier_registration: str = Field(min_length=1, max_length=64)
    recycler_permit: str = Field(min_length=1, max_length=64)
    hazardous_note_reference: str | None = Field(default=None, max_length=64)
    collected_at: datetime | None = None


class RecyclerCertificateIn(StepIn):
    serials: list[str] = Field(min_length=1, max_length=5000)
    reference: str | None = Field(default=None, max_length=limits.REFERENCE)
    document: UploadIn | None = None


class DestructionIn(StepIn):
    serial: str = Serial
    method: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=limits.REASON)
    evidence: UploadIn


class EntriesOut(BaseModel):
    entries: list[CustodyEntryPublic]
    details: dict[str, Any] = Field(default_factory=dict)


class RecordOut(BaseModel):
    id: int | str
    details: dict[str, Any] = Field(default_factory=dict)
