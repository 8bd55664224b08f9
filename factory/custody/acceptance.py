"""An officer's acceptance of a device (name plus signature image or PIN), stored as a record
whose canonical SHA-256 is written into the ledger entry of the hand-over.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlmodel import Session

from factory.custody.documents import DocumentKind, Upload, sha256_hex, store_document
from factory.custody.errors import WrongPin
from factory.custody.models import AcceptanceRecord, Officer
from factory.custody.outcome import stored
from factory.custody.people import pin_matches
from factory.identity.service import pin_allowed, pin_failed, pin_succeeded
from factory.kernel.canonical import canonical_bytes
from factory.kernel.clock import utc_now
from factory.kernel.errors import GuardRefused, InvalidInput
from factory.kernel.models.device import Device

# Ranks and titles an officer may put before their name when they type it ("PC Jane Smith").
_TITLES = frozenset(
    "pc dc pcso sc sgt ds dsgt insp di ci supt dsupt csupt ch det mr mrs ms miss mx dr constable sergeant "
    "inspector superintendent detective chief special".split()
)


def _name_words(name: str) -> list[str]:
    """A name as compared: case-folded words, dots and commas dropped, leading ranks and titles left out."""
    words = re.sub(r"[.,]", " ", name).casefold().split()
    while len(words) > 1 and words[0] in _TITLES:
        words = words[1:]
    return words


def names_match(typed: str, registered: str) -> bool:
    """Whether the name the officer typed is their registered name (case, spacing, dots and a
    leading rank or title aside): "PC jane  smith" is Jane Smith, "Alice Jonez" is not Alice Jones."""
    return bool(_name_words(typed)) and _name_words(typed) == _name_words(registered)


@dataclass(frozen=True)
class Acceptance:
    name: str
    signature: Upload | None = None  # a PNG/JPEG of the signature pad
    pin: str | None = None
    address: str | None = None  # where the PIN was typed (the client's address), for throttling


def acceptance_ref(record: AcceptanceRecord) -> dict[str, object]:
    """What a hand-over entry records about the acceptance: enough to find it and to check it."""
    return {"record_id": record.id, "sha256": record.record_sha256, "method": record.method}


def record_acceptance(
    session: Session,
    *,
    device: Device,
    officer: Officer,
    acceptance: Acceptance,
    context: dict[str, object],
    actor: str,
) -> AcceptanceRecord:
    """Check and store the acceptance.

    :raises InvalidInput: no name, or not exactly one of signature and PIN.
    :raises GuardRefused: the name typed is not the officer's, a PIN for an officer without one,
        or a wrong PIN (``WrongPin``).
    :raises Throttled: too many wrong PINs for this officer or from this address.
    """
    name = (acceptance.name or "").strip()
    if not name:
        raise InvalidInput("the officer's name is required to accept a device")
    _refuse_another_name(name, officer)
    if (acceptance.signature is None) == (acceptance.pin is None):
        raise InvalidInput("an acceptance carries either a signature or a PIN")
    record: dict[str, object] = {
        "device": device.serial,
        "officer": officer.staff_number,
        "accepted_name": name,
        "accepted_at": utc_now(),
        **context,
    }
    signature_id = None
    if acceptance.signature is not None:
        doc = store_document(session, DocumentKind.SIGNATURE, acceptance.signature, actor=actor)
        signature_id = doc.id
        record |= {"method": "signature", "signature_sha256": doc.sha256}
    else:
        if not officer.pin_hash:
            raise GuardRefused(f"officer {officer.staff_number} has no PIN set: accept with a signature")
        pin_allowed(session, officer.staff_number, acceptance.address)
        if not pin_matches(officer, acceptance.pin or ""):
            reason = f"the PIN does not match officer {officer.staff_number}'s"
            raise WrongPin(reason, officer.staff_number, acceptance.address)
        pin_succeeded(session, officer.staff_number)
        record["method"] = "pin"
    text = canonical_bytes(record)
    row = AcceptanceRecord(
        device_id=device.id or 0,
        officer_id=officer.id or 0,
        accepted_name=name,
        method=str(record["method"]),
        signature_document_id=signature_id,
        record_sha256=sha256_hex(text),
        record=text.decode("utf-8"),
        accepted_at=str(record["accepted_at"]),
    )
    return stored(session, row)


def _refuse_another_name(name: str, officer: Officer) -> None:
    if not names_match(name, officer.name):
        raise GuardRefused(
            f"the name typed, '{name[:80]}', is not the name registered for officer {officer.staff_number}: "
            "the officer types their own name to accept the device"
        )


@contextmanager
def wrong_pins_counted(session: Session) -> Iterator[None]:
    """Around a hand-over with an acceptance: a wrong PIN rolls the hand-over back, then is counted
    in a transaction of its own on the same session (so it is counted even though nothing else of
    the attempt is kept), and the refusal goes on to the caller."""
    try:
        yield
    except WrongPin as exc:
        session.rollback()
        pin_failed(session, exc.staff_number, exc.address)
        session.commit()
        raise
