"""Devices already in the field: an officer's current device, recorded from the force's records so
the first refresh wave can exchange it one for one.

Those devices were never issued through this factory, yet every new device goes out only in
exchange for the officer's old one (``issue.py``, ``courier_transit.py``, ``swap.py``). Recording
one writes its first custody entry through the ``enrol_in_field`` edge (none -> issued, the officer
as custodian, the import's file digest and line as evidence, tainted at once so it is sanitised and
certified before any reuse) and an allocation in status ``issued`` for the officer, so every check
of "which device does this officer hold" sees it like any issued device. Only the bulk import
(``bulk_import.py``) records them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from factory.custody.lookups import get_officer
from factory.custody.models import Allocation, AllocationChannel
from factory.custody.people import officer_label
from factory.custody.statuses import AllocationStep, change_status
from factory.intake.service import FirstRecord, parse_media_spec, record_in_field
from factory.kernel.clock import utc_now
from factory.kernel.errors import InvalidInput
from factory.kernel.models.device import DeviceKind


@dataclass(frozen=True)
class ImportSource:
    """Where an imported row came from: the evidence its custody entry carries."""

    file_sha256: str
    line: int
    actor: str


def enrol_in_field(session: Session, row: dict[str, str], source: ImportSource) -> Allocation:
    """Record the row's device as already with its officer: the device, its media (if given), its
    ``enrol_in_field`` entry and its ``issued`` allocation. ``media`` is a list of
    ``TYPE:SERIAL[:CAPACITY[:MODEL]]`` specs separated by ``;`` or spaces.

    :raises NotFound: no officer with the row's staff number.
    :raises InvalidInput: no serial, an unknown kind, a vehicle tablet, a malformed media spec or
        the same medium twice.
    :raises DeviceAlreadyKnown: the serial or asset tag is already recorded.
    """
    officer = get_officer(session, row.get("staff_number", ""))
    kind = row.get("kind", "").lower()
    if kind == DeviceKind.VEHICLE_TABLET:
        raise InvalidInput("a vehicle tablet is fitted in a vehicle, not held by an officer: it is not imported here")
    media = [parse_media_spec(spec) for spec in row.get("media", "").replace(";", " ").split()]
    first = FirstRecord(
        serial=row.get("serial", ""),
        kind=kind,
        make=row.get("make", ""),
        model=row.get("model", ""),
        asset_tag=row.get("asset_tag") or None,
        media=media,
    )
    holder = officer_label(officer)
    evidence: dict[str, object] = {
        "officer": officer.staff_number,
        "import": {"file_sha256": source.file_sha256, "line": source.line},
        "imported_by": source.actor,
    }
    device, seq = record_in_field(session, first, holder=holder, actor=source.actor, evidence=evidence)
    allocation = Allocation(
        device_id=device.id or 0,
        officer_id=officer.id,
        channel=AllocationChannel.IN_FIELD.value,
        device_kind=device.kind,
        allocated_seq=seq,
        created_by=source.actor,
        created_at=utc_now(),
    )
    change_status(allocation, AllocationStep.ENROL)
    session.add(allocation)
    session.flush()
    return allocation
