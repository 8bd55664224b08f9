"""Which erase certificates a departure accepts: one rule for redistribution and disposal.

A certificate records the destination its erase was planned for (NIST SP 800-88: the sanitisation
chosen depends on where the medium goes next). Each destination exposes the medium to a wider
audience than the one before it:

    internal_reuse (stays with the force) < recycling (a licensed recycler) < external_reuse (the public)

**Rule:** a certificate serves a departure when it was made for that departure's destination or
for one with greater exposure. So redistribution to a school (external reuse) accepts only
``external_reuse`` certificates, and disposal to a recycler accepts ``recycling`` and
``external_reuse`` ones; ``internal_reuse`` certificates serve neither, and ``manufacturer`` and
``other`` certificates (no known exposure) serve no departure. The lifecycle guard proves each
certificate is genuine, current and verified; this check, made in the same transaction just
before the move, adds what it was made for.
"""

from __future__ import annotations

from sqlmodel import Session

from factory.kernel.errors import GuardRefused
from factory.kernel.lifecycle.guards import CertificateVerifier, require_certified
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.device import Device

EXPOSURE: dict[str, int] = {"internal_reuse": 1, "recycling": 2, "external_reuse": 3}
# The destination each departure is: a certificate must be made for it or for a wider exposure.
DEPARTURES: dict[str, str] = {"redistribute": "external_reuse", "dispose": "recycling"}


def certificate_serves(made_for: str, departure: str) -> bool:
    """Whether a certificate made for ``made_for`` serves ``departure`` (a key of DEPARTURES)."""
    return EXPOSURE.get(made_for, 0) >= EXPOSURE[DEPARTURES[departure]]


def require_fit_for(
    session: Session, device: Device, verifier: CertificateVerifier | None, departure: str
) -> list[Certificate]:
    """The device's current certificates, each genuine (the lifecycle guard) and made for a
    destination that serves the departure.

    :raises GuardRefused: a certificate is missing, does not verify, or was made for a
        destination with less exposure than the departure's.
    """
    certificates = require_certified(session, device, verifier)
    assert verifier is not None  # require_certified refuses without one
    for cert in certificates:
        made_for = str(verifier(cert.envelope).get("destination", {}).get("category"))
        if not certificate_serves(made_for, departure):
            raise GuardRefused(
                f"device {device.serial}: certificate {cert.id} was made for '{made_for}', which does not "
                f"serve '{departure}' (needs '{DEPARTURES[departure]}' or wider: see factory/custody/destinations.py)"
            )
    return certificates
