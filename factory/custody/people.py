"""People and parties devices are handed to: vehicles (fleet number), officers (staff number, team, assistive-technology
needs, acceptance PIN) and organisations kept in the shared custodian table (couriers,
schools and other external organisations, recyclers, installing contractors).

An officer's assistive-technology profile is given in words or JSON and stored structured
(``at_needs.py``): a word that names no known feature is refused, never kept as text nothing reads.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlmodel import Session, select

from factory.custody.at_needs import parse as parse_at_needs
from factory.custody.models import Officer, Vehicle
from factory.custody.outcome import stored
from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, InvalidInput
from factory.kernel.models.parties import Custodian, CustodianKind

_STAFF_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")
_FLEET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")
_PIN = re.compile(r"^\d{4,8}$")
# scrypt cost: about 50 ms per check, so a stolen table cannot be brute-forced over 10^4-10^8 PINs cheaply.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def officer_label(officer: Officer) -> str:
    return f"officer:{officer.staff_number}"


def party_label(party: Custodian) -> str:
    return f"{party.kind}:{party.reference}"


def _required(value: str, what: str, limit: int) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"{what} must not be empty")
    if len(text) > limit or not text.isprintable():
        raise InvalidInput(f"{what} is longer than {limit} characters or has unprintable characters")
    return text


def _optional(value: str, what: str, limit: int) -> str:
    text = (value or "").strip()
    return _required(text, what, limit) if text else ""


def hash_pin(pin: str) -> str:
    if not _PIN.match(pin or ""):
        raise InvalidInput("a PIN is 4 to 8 digits")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def pin_matches(officer: Officer, pin: str) -> bool:
    if not officer.pin_hash or not pin:
        return False
    _scheme, salt_hex, digest_hex = officer.pin_hash.split("$")
    digest = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt_hex), **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


def register_officer(
    session: Session,
    *,
    staff_number: str,
    name: str,
    team: str = "",
    at_profile: str = "",
    pin: str | None = None,
) -> Officer:
    number = (staff_number or "").strip()
    if not _STAFF_NUMBER.match(number):
        raise InvalidInput(f"staff number '{number[:40]}' must be 1-32 letters, digits or '-'")
    if session.exec(select(Officer).where(Officer.staff_number == number)).first():
        raise Conflict(f"officer {number} is already registered")
    needs = parse_at_needs(_optional(at_profile, "assistive-technology profile", 500))
    officer = Officer(
        staff_number=number,
        name=_required(name, "officer name", 200),
        team=_optional(team, "team", 200),
        at_profile=needs.summary()[:200],
        at_needs=needs.to_json(),
        pin_hash=hash_pin(pin) if pin else None,
        created_at=utc_now(),
    )
    return stored(session, officer)


def register_party(session: Session, *, kind: CustodianKind, reference: str, name: str, address: str = "") -> Custodian:
    ref = _required(reference, "reference", 128)
    if session.exec(select(Custodian).where(Custodian.kind == str(kind), Custodian.reference == ref)).first():
        raise Conflict(f"{kind} {ref} is already registered")
    party = Custodian(
        kind=str(kind),
        reference=ref,
        name=_required(name, f"{kind} name", 200),
        address=_optional(address, f"{kind} address", 500),
    )
    return stored(session, party)


def vehicle_label(vehicle: Vehicle) -> str:
    return f"vehicle:{vehicle.fleet_number}"


def register_vehicle(session: Session, *, fleet_number: str, registration: str = "", description: str = "") -> Vehicle:
    number = (fleet_number or "").strip()
    if not _FLEET.match(number):
        raise InvalidInput(f"fleet number '{number[:40]}' must be 1-32 letters, digits or '-'")
    if session.exec(select(Vehicle).where(Vehicle.fleet_number == number)).first():
        raise Conflict(f"vehicle {number} is already registered")
    vehicle = Vehicle(
        fleet_number=number,
        registration=(registration or "").strip()[:32],
        description=(description or "").strip()[:200],
        created_at=utc_now(),
    )
    return stored(session, vehicle)
