"""The waste transfer note's rules: what both parties sign at collection, every statutory field
present (with the carrier's registration and the recycler's permit), a signature of each party's
own, and batteries only under a hazardous EWC code with a hazardous waste consignment note."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from factory.custody.documents import Upload, sha256_hex
from factory.custody.models import DisposalBatch
from factory.kernel import clock
from factory.kernel.clock import format_utc
from factory.kernel.errors import GuardRefused, InvalidInput
from factory.kernel.models.device import DeviceKind

BATTERY_KINDS = frozenset({DeviceKind.LAPTOP.value, DeviceKind.TABLET.value, DeviceKind.VEHICLE_TABLET.value})


@dataclass(frozen=True)
class WasteTransfer:
    """What the two parties sign at collection (the waste transfer note fields)."""

    containment: str
    place: str
    transferor_name: str
    transferor_address: str
    transferor_signature: Upload
    transferee_signature: Upload
    hierarchy_declaration: bool
    carrier_name: str  # who carries the waste away (often the recycler itself)
    carrier_registration: str  # the carrier's waste carrier registration number, e.g. CBDU123456
    recycler_permit: str  # the recycler's environmental permit (or exemption) number
    hazardous_note_reference: str | None = None
    collected_at: datetime | None = None


def is_hazardous(ewc_code: str) -> bool:
    """An EWC code marked hazardous ends with an asterisk ("16 02 13*")."""
    return ewc_code.strip().endswith("*")


def refuse_batteries_unless_hazardous(batch: DisposalBatch, what: str) -> None:
    """:raises GuardRefused: the batch's EWC code is not hazardous (batteries are hazardous waste)."""
    if not is_hazardous(batch.ewc_code):
        raise GuardRefused(
            f"{what}, and disposal batch {batch.id}'s EWC code '{batch.ewc_code}' is not a hazardous code: "
            "batteries go in a batch with a hazardous code such as '16 02 13*' or '20 01 35*'"
        )


def checked_transfer(batch: DisposalBatch, transfer: WasteTransfer) -> tuple[str | None, str]:
    """The hazardous note reference (if any) and the collection time, once every field checks out.

    :raises InvalidInput: a missing field, the same signature image for both parties, or a
        collection time without a time zone or in the future.
    :raises GuardRefused: no waste hierarchy declaration; batteries under a non-hazardous EWC code
        or without a hazardous waste consignment note reference.
    """
    fields = {
        "containment": transfer.containment,
        "place of transfer": transfer.place,
        "transferor name": transfer.transferor_name,
        "transferor address": transfer.transferor_address,
        "carrier name": transfer.carrier_name,
        "carrier registration number": transfer.carrier_registration,
        "recycler permit number": transfer.recycler_permit,
    }
    missing = [k for k, v in fields.items() if not (v or "").strip()]
    if missing:
        raise InvalidInput(f"the waste transfer note needs: {', '.join(missing)}")
    if sha256_hex(transfer.transferor_signature.content) == sha256_hex(transfer.transferee_signature.content):
        raise InvalidInput("the transferor's and the recycler's signatures are the same image: each signs their own")
    if not transfer.hierarchy_declaration:
        raise GuardRefused("the transferor must declare that the waste hierarchy was applied")
    if batch.contains_batteries:
        refuse_batteries_unless_hazardous(batch, f"disposal batch {batch.id} contains batteries")
    hazardous = (transfer.hazardous_note_reference or "").strip() or None
    if batch.contains_batteries and hazardous is None:
        raise GuardRefused(
            f"disposal batch {batch.id} contains batteries: a hazardous waste consignment note reference is required"
        )
    moment = transfer.collected_at or clock.now()
    if moment.tzinfo is None or moment > clock.now() + timedelta(minutes=5):
        raise InvalidInput("the collection time must carry a time zone and not be in the future")
    return hazardous, format_utc(moment)
