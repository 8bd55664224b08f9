"""The sections of a sanitisation certificate document (schema version 2), one builder each.

``certificate.build_certificate`` refuses what cannot be certified first; these functions only
turn a certifiable ``EraseResult`` and its ``CertificateContext`` into JSON members. Where a
member comes from is in ``docs/certificate-format.md``.
"""

from __future__ import annotations

from typing import Any

from imaging.certificate_context import CertificateContext, MediaSource, Person, enum_value, normalised_utc, utc_iso
from imaging.command_status import command_status
from imaging.ieee2883 import IEEE_STANDARD, NIST_STANDARD, method_standard
from imaging.result import EraseResult, Technique

VALIDATION_METHOD = (
    "acceptance review: the final completion status of every firmware operation, the read-back "
    "verification and the residual risks, against the site's acceptance rules"
)


def standards_section() -> dict[str, str]:
    return {"sanitisation": NIST_STANDARD, "techniques": IEEE_STANDARD}


def media_section(result: EraseResult, context: CertificateContext) -> dict[str, Any]:
    media = result.media
    return {
        "manufacturer": media.manufacturer,
        "model": media.model,
        "serial_number": media.serial,
        "media_type": media.media_type,
        "source": enum_value(MediaSource, context.media_source),
        "transport": media.transport,
        "rotational": media.rotational,
        "size_bytes": media.size_bytes,
        "logical_sector_size": media.logical_sector_size,
        "physical_sector_size": media.physical_sector_size,
        "path": media.path,
        "target_kind": media.target_kind,
        "firmware_revision": result.firmware_revision,
        "sanitize_capabilities": list(result.sanitize_capabilities),
    }


def sanitisation_section(result: EraseResult) -> dict[str, Any]:
    assert result.level_achieved is not None  # refused earlier otherwise
    hidden = result.hidden_areas
    return {
        "level_requested": result.level_requested.value,
        "level_achieved": result.level_achieved.value,
        "method": result.method,
        "technique": result.technique.value,
        "ieee2883": ieee2883_section(result),
        "pattern": result.pattern,
        "pattern_seed_hex": result.pattern_seed_hex,
        "passes": result.passes,
        "started_at": normalised_utc(result.started_at, "started_at"),
        "ended_at": normalised_utc(result.ended_at, "ended_at"),
        "bytes_written": result.bytes_written,
        "block_range": {
            "first_lba": result.first_lba,
            "last_lba": result.last_lba,
            "sector_size": result.media.logical_sector_size,
        },
        "hidden_areas": {
            "hpa_present_before": hidden.hpa_present_before,
            "hpa_present_after": hidden.hpa_present_after,
            "dco_present": hidden.dco_present,
            "native_max_sectors": hidden.native_max_sectors,
            "note": hidden.note,
        },
        "commands": [
            {
                "argv": list(cmd.argv),
                "returncode": cmd.returncode,
                "stdout": cmd.stdout,
                "stderr": cmd.stderr,
                "started_at": normalised_utc(cmd.started_at, "command started_at"),
                "ended_at": normalised_utc(cmd.ended_at, "command ended_at"),
                "status": command_status(cmd),
            }
            for cmd in result.commands
        ],
        "crypto_erase": crypto_erase_section(result),
    }


def ieee2883_section(result: EraseResult) -> dict[str, Any]:
    assert result.level_achieved is not None
    standard = method_standard(result.method)
    return {
        "category": result.level_achieved.value,
        "interface": standard.interface if standard else None,
        "technique": standard.technique if standard else None,
        "clause": standard.clause if standard else None,
    }


def crypto_erase_section(result: EraseResult) -> dict[str, Any] | None:
    """Provenance of a cryptographic erase (NIST SP 800-88 Rev. 2 asks for it); null otherwise.

    A drive that offers a cryptographic erase stores all user data under its media encryption key
    from manufacture: that is what the erase relies on, and what ``basis`` records, from the
    capabilities the drive advertised.
    """
    if result.technique is not Technique.CRYPTO_ERASE:
        return None
    standard = method_standard(result.method)
    advertised = [c for c in result.sanitize_capabilities if "crypto" in c]
    if standard is not None and standard.interface.startswith("platform"):  # a tablet's platform reset
        encryption = "the platform's encryption of user data, as the tablet reported it before the reset"
        basis = f"read before the reset: {', '.join(advertised)}" if advertised else "no encryption reported"
    else:
        encryption = "drive-managed media encryption (self-encrypting drive)"
        basis = (
            f"the firmware advertised {', '.join(advertised)}: user data is stored under the drive's "
            "media encryption key from manufacture"
            if advertised
            else "the firmware advertised no cryptographic erase capability when probed"
        )
    return {
        "encryption": encryption,
        "encrypted_from_first_use": bool(advertised),
        "basis": basis,
        "key_destroyed": standard.key_scope if standard else None,
    }


def verification_section(result: EraseResult) -> dict[str, Any]:
    verification = result.verification
    assert verification is not None  # refused earlier otherwise
    return {
        "mode": verification.mode.value,
        "expected_pattern": verification.expected_pattern,
        "seed_hex": verification.seed_hex,
        "bytes_read": verification.bytes_read,
        "coverage": verification.coverage,
        "subsections": verification.subsections,
        "locations": verification.locations,
        "mismatches": verification.mismatches,
        "first_mismatch_offset": verification.first_mismatch_offset,
        "passed": verification.passed,
    }


def validation_section(result: EraseResult, context: CertificateContext) -> dict[str, Any]:
    """NIST SP 800-88 Rev. 2 validation, kept apart from verification: how the organisation judged
    the outcome effective, on what sample, with what result, and who. Only an accepted outcome
    reaches a certificate (a rejected one is refused before this is built)."""
    check = result.verification
    assert check is not None
    criteria = [
        f"the {result.method} erase reported completion (each command's status is under sanitisation.commands)",
        "read-back verification passed with 0 mismatches",
        f"level achieved ({result.level_achieved}) meets the level requested ({result.level_requested})",
    ]
    return {
        "method": VALIDATION_METHOD,
        "criteria": criteria,
        "sample": (
            f"{check.mode.value} read-back of {check.bytes_read} bytes ({check.coverage:.2%} of the medium) "
            f"at {check.locations} locations, expected {check.expected_pattern}"
        ),
        "result": "accepted",
        "validated_by": person_section(context.validated_by, "validated_by"),
    }


def tool_section(result: EraseResult, context: CertificateContext) -> dict[str, Any]:
    return {
        "name": result.tool_name,
        "version": result.tool_version,
        "code_sha256": result.tool_code_sha256,
        "agent": context.tool_agent,
    }


def person_section(person: Person, role: str) -> dict[str, Any]:
    return {
        "name": person.name,
        "account": person.account,
        "title": person.title,
        "organisation": person.organisation,
        "location": person.location,
        "contact": person.contact,
        "date": utc_iso(person.date, f"{role}.date"),
    }
