"""The waste transfer note's rules: what both parties sign at collection, every statutory field
present (Waste (England and Wales) Regulations 2011 reg. 35; in Scotland the Duty of Care
(Scotland) Regulations 2014), a signature of each party's own, an EWC code that is a real List of
Wastes entry for whole discarded equipment, and a consignment note exactly when that code is hazardous.

Whether WEEE is hazardous depends on its hazardous components, not on holding a battery: the List
of Wastes' note to 16 02 13*/20 01 35* counts only batteries "mentioned in 16 06 and marked as
hazardous" (lead, NiCd, mercury); lithium-ion is 16 06 05, not hazardous. A laptop with an LED
backlight and a lithium-ion battery is 16 02 14; one with a mercury (CCFL) backlight is 16 02 13*.
The classification is the transferor's; the sources are in tests/custody/WASTE_RULES.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from factory.custody.documents import Upload, sha256_hex
from factory.custody.models import DisposalBatch
from factory.kernel import clock
from factory.kernel.clock import format_utc
from factory.kernel.errors import GuardRefused, InvalidInput
from factory.kernel.models.device import DeviceKind

BATTERY_KINDS = frozenset({DeviceKind.LAPTOP.value, DeviceKind.TABLET.value, DeviceKind.VEHICLE_TABLET.value})

# The List of Wastes entries for whole discarded electrical equipment (a batch holds whole devices):
# chapter 16 for business waste, chapter 20 for "similar institutional" municipal waste.
DEVICE_WASTE_CODES: dict[str, str] = {
    "16 02 14": "discarded equipment other than those mentioned in 16 02 09 to 16 02 13",
    "16 02 13*": "discarded equipment containing hazardous components other than those mentioned in 16 02 09 to "
    "16 02 12",
    "20 01 36": "discarded electrical and electronic equipment other than those mentioned in 20 01 21, 20 01 23 and "
    "20 01 35",
    "20 01 35*": "discarded electrical and electronic equipment other than those mentioned in 20 01 21 and 20 01 23 "
    "containing hazardous components",
}
_CODE = re.compile(r"(\d{2})(\d{2})(\d{2})(\*?)")
# England and Wales (Hazardous Waste Regulations 2005 reg. 34): six letters or digits (England since
# April 2016: of the producer's name; Wales: the NRW premises code), '/', five of the producer's
# choosing, and on a few occasions one more letter. Scotland: SEPA sells the codes (SA/SB/SC...).
_ENGLAND_WALES_CONSIGNMENT = re.compile(r"[A-Z0-9]{6}/[A-Z0-9]{5}[A-Z]?")
_SEPA_CONSIGNMENT = re.compile(r"S[A-C] ?\d{4,10}")
# The EA and NRW register (one register format): CBDU upper tier, CBDL lower tier, then digits.
_ENGLAND_WALES_CARRIER = re.compile(r"CBD([UL])\d{1,7}")


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
    recycler_permit: str  # the recycler's environmental permit (or registered exemption) number
    hazardous_note_reference: str | None = None  # the consignment note code, for hazardous waste only
    collected_at: datetime | None = None


@dataclass(frozen=True)
class CheckedTransfer:
    """The transfer's values once every rule holds, normalised as the note shows them."""

    consignment_code: str | None
    collected_at: str
    carrier_registration: str


def is_hazardous(ewc_code: str) -> bool:
    """An EWC code marked hazardous ends with an asterisk ("16 02 13*")."""
    return ewc_code.strip().endswith("*")


def checked_ewc_code(raw: str) -> str:
    """The code as the List of Wastes writes it ("160214" and "16-02-14" become "16 02 14").

    :raises InvalidInput: not six digits, not an entry for whole discarded electrical equipment,
        or a real entry with its asterisk missing or added (the asterisk is part of the code).
    """
    text = (raw or "").strip()
    found = _CODE.fullmatch(re.sub(r"[\s.-]", "", text))
    if found is None:
        raise InvalidInput(f"EWC code '{text}' must look like '16 02 14' (with '*' if hazardous)")
    code = f"{found[1]} {found[2]} {found[3]}{found[4]}"
    if code in DEVICE_WASTE_CODES:
        return code
    other = code.removesuffix("*") if found[4] else f"{code}*"
    if other in DEVICE_WASTE_CODES:
        kind = "a hazardous" if is_hazardous(other) else "a non-hazardous"
        raise InvalidInput(f"EWC code '{code}' is not in the List of Wastes: {kind} entry is '{other}'")
    choices = ", ".join(DEVICE_WASTE_CODES)
    raise InvalidInput(
        f"EWC code '{code}' is not an entry for whole discarded electrical equipment: use one of {choices}"
    )


def carrier_tier(registration: str) -> str | None:
    """'upper tier' or 'lower tier' for an England or Wales registration; None for another register's."""
    found = _ENGLAND_WALES_CARRIER.fullmatch(registration)
    if found is None:
        return None
    return "upper tier" if found[1] == "U" else "lower tier"


def checked_carrier_registration(raw: str) -> str:
    """The registration as the register writes it ("cbdu 123456" becomes "CBDU123456").

    A number that starts like the EA and NRW register's (CB...) must be one of them; SEPA's and
    NIEA's registrations are taken as given (their formats are theirs).

    :raises InvalidInput: a CB... number that is not CBDU or CBDL followed by digits.
    """
    text = (raw or "").strip()
    compact = re.sub(r"\s", "", text).upper()
    if not compact.startswith("CB"):
        return text
    if _ENGLAND_WALES_CARRIER.fullmatch(compact) is None:
        raise InvalidInput(
            f"carrier registration number '{text}' is not one of the Environment Agency's or Natural Resources "
            "Wales' register: CBDU (upper tier) or CBDL (lower tier) followed by digits"
        )
    return compact


def checked_consignment_code(batch: DisposalBatch, raw: str | None) -> str | None:
    """The consignment note code: required for a hazardous code, refused for a non-hazardous one.

    :raises GuardRefused: the batch's EWC code is hazardous and no consignment note code is given.
    :raises InvalidInput: a consignment note code for non-hazardous waste, or one not in the
        England and Wales (ABCDEF/12345) or SEPA (SA..., SB..., SC...) format.
    """
    code = re.sub(r"\s*/\s*", "/", (raw or "").strip().upper()) or None
    if not is_hazardous(batch.ewc_code):
        if code is not None:
            raise InvalidInput(
                f"disposal batch {batch.id}'s EWC code '{batch.ewc_code}' is not hazardous waste: a hazardous waste "
                "consignment note is only for hazardous waste, leave it empty"
            )
        return None
    if code is None:
        raise GuardRefused(
            f"disposal batch {batch.id}'s EWC code '{batch.ewc_code}' is hazardous waste: a hazardous waste "
            "consignment note code is required"
        )
    if not (_ENGLAND_WALES_CONSIGNMENT.fullmatch(code) or _SEPA_CONSIGNMENT.fullmatch(code)):
        raise InvalidInput(
            f"consignment note code '{code}' must be six letters or digits, '/', five more (England and Wales, "
            "e.g. NORTHE/00001) or a SEPA code (SA, SB or SC and digits)"
        )
    return code


def checked_transfer(batch: DisposalBatch, transfer: WasteTransfer) -> CheckedTransfer:
    """The consignment note code (if any), the collection time and the carrier's registration,
    once every field checks out.

    :raises InvalidInput: a missing field, the same signature image for both parties, a malformed
        carrier registration or consignment note code, a consignment note for non-hazardous
        waste, or a collection time without a time zone or in the future.
    :raises GuardRefused: no waste hierarchy declaration, or a hazardous EWC code without a
        hazardous waste consignment note code.
    """
    _require_fields(transfer)
    if sha256_hex(transfer.transferor_signature.content) == sha256_hex(transfer.transferee_signature.content):
        raise InvalidInput("the transferor's and the recycler's signatures are the same image: each signs their own")
    if not transfer.hierarchy_declaration:
        raise GuardRefused("the transferor must declare that the waste hierarchy was applied")
    registration = checked_carrier_registration(transfer.carrier_registration)
    consignment = checked_consignment_code(batch, transfer.hazardous_note_reference)
    moment = transfer.collected_at or clock.now()
    if moment.tzinfo is None or moment > clock.now() + timedelta(minutes=5):
        raise InvalidInput("the collection time must carry a time zone and not be in the future")
    return CheckedTransfer(consignment, format_utc(moment), registration)


def _require_fields(transfer: WasteTransfer) -> None:
    """:raises InvalidInput: a statutory field of the note is empty."""
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
