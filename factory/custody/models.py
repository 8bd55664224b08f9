"""Tables behind the custody workflows: officers, vehicles, refresh waves, allocations,
consignments, acceptances, evidence documents, redistribution transfers, WEEE disposal batches,
destruction records, four-eyes approvals and the vehicle a new in-vehicle tablet is built for.

None of these rows changes a device's state: they hold the who/what/where that the custody
ledger entries point at (by id and by SHA-256), and the workflows in ``factory/custody/`` write
them in the same transaction as the ``change_state`` call they belong to. Allocations,
consignments and disposal batches have statuses; their tables are in ``statuses.py``.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, Column, LargeBinary, Text
from sqlmodel import Field, SQLModel, UniqueConstraint

# The status enums live with their transition tables; imported here for the column defaults.
from factory.custody.statuses import AllocationStatus, ConsignmentStatus, DisposalStatus, PoolMemberStatus


class CreatedRecord(SQLModel):
    """The columns of a custody record a person opens: its key, who created it and when.

    Not a table: allocations, evidence documents, consignments, transfers, disposal batches and
    contingency pools inherit these columns as the migrations made them (same names, types and
    lengths; only their place in the class changes, which the schema does not see).
    """

    id: int | None = Field(default=None, primary_key=True)
    created_by: str = Field(max_length=128)
    created_at: str = Field(max_length=32)


class Officer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    staff_number: str = Field(unique=True, max_length=32)
    name: str = Field(max_length=200)
    team: str = Field(default="", max_length=200)
    # The assistive-technology needs in words a person reads ("screen reader (NVDA), magnifier x2.0").
    at_profile: str = Field(default="", max_length=200)
    # The same needs structured (at_needs.AtNeeds as canonical JSON; "" for none): what the
    # personalise step applies and the issue guard checks the device's QA against.
    at_needs: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # scrypt$salt$hash of the acceptance PIN; None: the officer accepts by signature only.
    pin_hash: str | None = Field(default=None, max_length=255)
    created_at: str = Field(max_length=32)
    # Courier dispatch is only for officers formally shielding: the reference of that decision,
    # who recorded it and when. None: not recorded as shielding, so devices are issued in person.
    shielding_reference: str | None = Field(default=None, max_length=64)
    shielding_recorded_by: str | None = Field(default=None, max_length=128)
    shielding_recorded_at: str | None = Field(default=None, max_length=32)


class Vehicle(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    fleet_number: str = Field(unique=True, max_length=32)
    registration: str = Field(default="", max_length=32)
    description: str = Field(default="", max_length=200)
    created_at: str = Field(max_length=32)
    decommissioned_at: str | None = Field(default=None, max_length=32)


class Wave(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    cohort: str = Field(default="", max_length=200)  # station or unit
    target_devices: int = Field(default=0)
    courier_cap_percent: int = Field(default=25)
    created_at: str = Field(max_length=32)


class AllocationChannel(StrEnum):
    IN_PERSON = "in_person"
    COURIER = "courier"
    VEHICLE = "vehicle"
    IN_FIELD = "in_field"  # already with its officer when its record was imported: never handed over here


# The channels a device is allocated through; in_field allocations are made only by the import.
ALLOCATION_CHANNELS: tuple[AllocationChannel, ...] = (
    AllocationChannel.IN_PERSON,
    AllocationChannel.COURIER,
    AllocationChannel.VEHICLE,
)


class Allocation(CreatedRecord, table=True):
    device_id: int = Field(foreign_key="device.id", index=True)
    officer_id: int | None = Field(default=None, foreign_key="officer.id", index=True)
    vehicle_id: int | None = Field(default=None, foreign_key="vehicle.id", index=True)
    wave_id: int | None = Field(default=None, foreign_key="wave.id", index=True)
    channel: str = Field(max_length=16)
    status: str = Field(default=AllocationStatus.ALLOCATED.value, index=True, max_length=16)
    device_kind: str = Field(max_length=32)
    allocated_seq: int


class EvidenceDocument(CreatedRecord, table=True):
    """Bytes of a piece of evidence (PDF, photo, signature image); append-only."""

    __tablename__ = "evidence_document"

    kind: str = Field(index=True, max_length=32)
    media_type: str = Field(max_length=64)
    filename: str = Field(default="", max_length=200)
    sha256: str = Field(index=True, max_length=64)
    size_bytes: int = Field(sa_type=BigInteger)
    content: bytes = Field(sa_type=LargeBinary)


class AcceptanceRecord(SQLModel, table=True):
    """An officer's acceptance of a device; its canonical hash goes into the ledger. Append-only."""

    __tablename__ = "acceptance_record"

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    officer_id: int = Field(foreign_key="officer.id", index=True)
    accepted_name: str = Field(max_length=200)
    method: str = Field(max_length=16)  # "signature" or "pin"
    signature_document_id: int | None = Field(default=None, foreign_key="evidence_document.id")
    record_sha256: str = Field(unique=True, max_length=64)
    record: str  # the canonical JSON that record_sha256 covers
    accepted_at: str = Field(max_length=32)


class ApprovalKind(StrEnum):
    ISSUE_WITHOUT_EXCHANGE = "issue_without_exchange"


class Approval(SQLModel, table=True):
    """A four-eyes exception: requested by one user, approved by a different one, used once."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    allocation_id: int = Field(foreign_key="allocation.id", index=True)
    reason: str = Field(max_length=500)
    requested_by: str = Field(max_length=128)
    requested_at: str = Field(max_length=32)
    approved_by: str | None = Field(default=None, max_length=128)
    approved_at: str | None = Field(default=None, max_length=32)
    used_seq: int | None = Field(default=None)


class Consignment(CreatedRecord, table=True):
    reference: str = Field(unique=True, max_length=64)
    courier: str = Field(max_length=200)
    recipient_name: str = Field(max_length=200)
    recipient_address: str = Field(max_length=500)
    seal_numbers: str = Field(default="", max_length=500)  # comma-separated seal or bag numbers
    status: str = Field(default=ConsignmentStatus.OPEN.value, index=True, max_length=16)
    manifest_document_id: int | None = Field(default=None, foreign_key="evidence_document.id")
    handed_over_at: str | None = Field(default=None, max_length=32)
    delivered_at: str | None = Field(default=None, max_length=32)
    failed_at: str | None = Field(default=None, max_length=32)
    failure_reason: str | None = Field(default=None, max_length=500)
    returned_at: str | None = Field(default=None, max_length=32)
    pod_recipient_name: str | None = Field(default=None, max_length=200)
    pod_document_id: int | None = Field(default=None, foreign_key="evidence_document.id")


class ConsignmentItem(SQLModel, table=True):
    __tablename__ = "consignment_item"
    __table_args__ = (UniqueConstraint("consignment_id", "device_id", name="uq_consignment_device"),)

    id: int | None = Field(default=None, primary_key=True)
    consignment_id: int = Field(foreign_key="consignment.id", index=True)
    allocation_id: int = Field(foreign_key="allocation.id", index=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    handover_scanned_at: str | None = Field(default=None, max_length=32)
    delivery_scanned_at: str | None = Field(default=None, max_length=32)
    returned_at: str | None = Field(default=None, max_length=32)


class Transfer(CreatedRecord, table=True):
    """Redistribution of sanitised devices to an external organisation (e.g. a school)."""

    organisation_id: int = Field(foreign_key="custodian.id", index=True)
    note_document_id: int | None = Field(default=None, foreign_key="evidence_document.id")


class TransferItem(SQLModel, table=True):
    __tablename__ = "transfer_item"

    id: int | None = Field(default=None, primary_key=True)
    transfer_id: int = Field(foreign_key="transfer.id", index=True)
    device_id: int = Field(foreign_key="device.id", unique=True)


class DisposalBatch(CreatedRecord, table=True):
    __tablename__ = "disposal_batch"

    recycler_id: int = Field(foreign_key="custodian.id", index=True)
    status: str = Field(default=DisposalStatus.OPEN.value, index=True, max_length=16)
    description: str = Field(max_length=500)
    ewc_code: str = Field(max_length=16)
    sic_code: str = Field(max_length=16)
    contains_batteries: bool = Field(default=False)
    containment: str = Field(default="", max_length=200)
    place: str = Field(default="", max_length=500)
    hierarchy_declaration: bool = Field(default=False)
    collected_at: str | None = Field(default=None, max_length=32)
    transferor_name: str | None = Field(default=None, max_length=200)
    transferee_name: str | None = Field(default=None, max_length=200)
    hazardous_note_reference: str | None = Field(default=None, max_length=64)
    # Who carries the waste and under which registration, and the recycler's environmental permit:
    # both are on the waste transfer note (set at collection).
    carrier_name: str | None = Field(default=None, max_length=200)
    carrier_registration: str | None = Field(default=None, max_length=64)
    recycler_permit: str | None = Field(default=None, max_length=64)
    wtn_document_id: int | None = Field(default=None, foreign_key="evidence_document.id")
    recycler_certificate_ref: str | None = Field(default=None, max_length=128)
    recycler_certificate_document_id: int | None = Field(default=None, foreign_key="evidence_document.id")
    closed_at: str | None = Field(default=None, max_length=32)


class DisposalItem(SQLModel, table=True):
    __tablename__ = "disposal_item"
    __table_args__ = (UniqueConstraint("batch_id", "device_id", name="uq_disposal_batch_device"),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="disposal_batch.id", index=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    removed: bool = Field(default=False)
    collected_seq: int | None = Field(default=None)  # custody entry of the hand-off to the recycler
    disposed_seq: int | None = Field(default=None)


class DestructionRecord(SQLModel, table=True):
    """A destruction: requested with evidence by one user, witnessed by another."""

    __tablename__ = "destruction_record"

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    method: str = Field(max_length=64)
    reason: str = Field(max_length=500)
    requested_by: str = Field(max_length=128)
    requested_at: str = Field(max_length=32)
    evidence_document_id: int = Field(foreign_key="evidence_document.id")
    witnessed_by: str | None = Field(default=None, max_length=128)
    destroyed_seq: int | None = Field(default=None)


class ContingencyPool(CreatedRecord, table=True):
    """The Tech Bar's stock of ready spares of one kind at one site: walk-in swaps take from it."""

    __tablename__ = "contingency_pool"
    __table_args__ = (UniqueConstraint("site", "kind", name="uq_contingency_pool_site_kind"),)

    site: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    low_stock_level: int = Field(default=2)  # at or below this many spares the board warns


class PoolMember(SQLModel, table=True):
    """A ready device put into a pool; it leaves by a swap or by being withdrawn (statuses.py)."""

    __tablename__ = "pool_member"

    id: int | None = Field(default=None, primary_key=True)
    pool_id: int = Field(foreign_key="contingency_pool.id", index=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    status: str = Field(default=PoolMemberStatus.STOCKED.value, index=True, max_length=16)
    added_by: str = Field(max_length=128)
    added_at: str = Field(max_length=32)
    left_at: str | None = Field(default=None, max_length=32)
    left_reason: str | None = Field(default=None, max_length=200)


class Personalisation(SQLModel, table=True):
    """One personalisation run's QA result on an allocated device, for the officer's profile as
    it was then (``needs``, hashed in ``needs_digest``); the issue guard reads the latest pass."""

    id: int | None = Field(default=None, primary_key=True)
    allocation_id: int = Field(foreign_key="allocation.id", index=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    needs: str = Field(sa_column=Column(Text, nullable=False))
    needs_digest: str = Field(max_length=64)
    passed: bool
    missing: str = Field(sa_column=Column(Text, nullable=False))  # one finding per line
    detail: str = Field(sa_column=Column(Text, nullable=False))
    job_id: int | None = Field(default=None)
    recorded_by: str = Field(max_length=128)
    recorded_at: str = Field(max_length=32)


class VehicleBuild(CreatedRecord, table=True):
    """A vehicle tablet earmarked, before its build, for the vehicle it will be fitted in
    (``vehicle_builds.py``): the line provisions it with that vehicle's fleet number."""

    __tablename__ = "vehicle_build"

    device_id: int = Field(foreign_key="device.id", unique=True)
    vehicle_id: int = Field(foreign_key="vehicle.id", index=True)
