"""Certificate building, signing, verification and tamper detection.

The builders at the top (``make_result``, ``make_context``, ``signed_envelope``) are imported by
the other certificate test modules.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785

from imaging import signing
from imaging.certificate import (
    CertificateContentError,
    CertificateContext,
    CertificateRefusedError,
    DataBackedUp,
    Destination,
    DeviceInfo,
    MediaSource,
    Person,
    build_certificate,
    canonical_bytes,
    dumps_envelope,
    load_envelope,
    sign_certificate,
    verify_certificate,
)
from imaging.result import (
    CommandRecord,
    EraseResult,
    HiddenAreaStatus,
    Level,
    MediaIdentity,
    Technique,
    VerificationResult,
    VerifyMode,
)

SIGNING_KEY = signing.generate_private_key()
CERT_ID = uuid.UUID("0b6f9a52-3c1e-4d7a-9f20-5e8c2a1b7d43")
ISSUED_AT = datetime(2025, 3, 4, 10, 15, 0, tzinfo=UTC)


MEDIA = MediaIdentity(
    path="/dev/nvme0n1",
    target_kind="block",
    media_type="nvme",
    size_bytes=256 * 1024 * 1024,
    logical_sector_size=512,
    physical_sector_size=4096,
    model="Samsung SSD 980 500GB",
    serial="S64DNX0R123456",
    manufacturer="Samsung",
    transport="nvme",
    rotational=False,
)
COMMANDS = (
    CommandRecord(
        argv=("nvme", "sanitize", "/dev/nvme0n1", "--sanact=4"),
        returncode=0,
        stdout="NVMe Sanitize: success\n",
        stderr="",
        started_at="2025-03-04T09:58:01Z",
        ended_at="2025-03-04T09:58:02Z",
    ),
    CommandRecord(
        argv=("nvme", "sanitize-log", "/dev/nvme0n1", "-o", "json"),
        returncode=0,
        stdout='{"sstat": 257, "sprog": 65535}\n',
        stderr="warning: caf\u00e9 \x1b[0m\n",
        started_at="2025-03-04T10:03:40Z",
        ended_at="2025-03-04T10:03:41Z",
    ),
)
VERIFICATION = VerificationResult(
    mode=VerifyMode.SAMPLE,
    expected_pattern="vendor-zeros",
    seed_hex="9f86d081884c7d65",
    bytes_read=28_000_000,
    coverage=0.10430812835693359,
    subsections=1000,
    locations=2002,
    mismatches=0,
    first_mismatch_offset=None,
    passed=True,
)


def make_result(**changes: Any) -> EraseResult:
    result = EraseResult(
        ok=True,
        media=MEDIA,
        level_requested=Level.PURGE,
        level_achieved=Level.PURGE,
        method="nvme-sanitize-crypto",
        technique=Technique.CRYPTO_ERASE,
        pattern=None,
        pattern_seed_hex=None,
        passes=1,
        bytes_written=0,
        first_lba=0,
        last_lba=256 * 1024 * 2 - 1,
        started_at="2025-03-04T09:58:01.125000+00:00",
        ended_at="2025-03-04T10:03:44Z",
        commands=COMMANDS,
        hidden_areas=HiddenAreaStatus(
            hpa_present_before=False, hpa_present_after=False, dco_present=None, note="NVMe: no HPA/DCO"
        ),
        verification=VERIFICATION,
        tool_name="device-factory-imaging",
        tool_version="0.1.0",
        tool_code_sha256="a" * 64,
        residual_risk=("firmware erase trusted as reported", "over-provisioned area not read back"),
        firmware_revision="2B2QEXM7",
        sanitize_capabilities=("nvme-sanitize-crypto-erase", "nvme-format-crypto-erase"),
    )
    return dataclasses.replace(result, **changes)


def make_person(name: str, title: str) -> Person:
    first, last = name.split()[0], name.split()[-1]
    return Person(
        name=name,
        title=title,
        organisation="Example Constabulary",
        location="Build room 2, Hendon",
        contact=f"{name.split()[0].lower()}@example.police.uk",
        date=datetime(2025, 3, 4, 11, 0, tzinfo=timezone(timedelta(hours=1))),
        account=(first[0] + last).lower(),
    )


def make_context(**changes: Any) -> CertificateContext:
    context = CertificateContext(
        organisation="Example Constabulary",
        site="Hendon device factory",
        device=DeviceInfo(
            manufacturer="Dell",
            model="Latitude 7440",
            serial_number="8XK2Q93",
            kind="laptop",
            asset_tag="EC-04711",
        ),
        media_source=MediaSource.HOST,
        destination=Destination.INTERNAL_REUSE,
        data_backed_up=DataBackedUp.NO,
        sanitised_by=make_person("Alex Morgan", "Device technician"),
        validated_by=make_person("Sam Patel", "Sanitisation supervisor"),
        pre_sanitisation_confidentiality="OFFICIAL-SENSITIVE",
        post_sanitisation_confidentiality="OFFICIAL",
        custody_previous_entry_sha256="b" * 64,
        custody_sequence=42,
        reason_for_sanitisation="returned by its officer",
        tool_agent="bench-agent-3",
    )
    return dataclasses.replace(context, **changes)


def signed_envelope(result: EraseResult | None = None, key: Any = SIGNING_KEY) -> dict[str, Any]:
    doc = build_certificate(result or make_result(), make_context(), certificate_id=CERT_ID, issued_at=ISSUED_AT)
    return sign_certificate(doc, key)


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every scalar position in a JSON value (list items included), as a tuple of keys/indexes."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaf_paths(item, (*path, index))
    else:
        yield path


def get_at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def set_at(value: Any, path: tuple[Any, ...], new: Any) -> None:
    get_at(value, path[:-1])[path[-1]] = new


def altered(value: Any) -> Any:
    """A different JSON value of a plausible kind (so the change is not just a type error)."""
    if isinstance(value, bool):
        return not value
    if value is None:
        return "x"
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 1e-9
    if isinstance(value, str):
        return value + " " if value else "x"
    raise AssertionError(f"unexpected leaf {value!r}")


def each_changed(envelope: dict[str, Any], paths: Iterable[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    """A copy of ``envelope`` per path, with that one leaf of its certificate ``altered``."""
    for path in paths:
        tampered = copy.deepcopy(envelope)
        set_at(tampered["certificate"], path, altered(get_at(tampered["certificate"], path)))
        yield tampered


def each_removed(envelope: dict[str, Any], paths: Iterable[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    """A copy of ``envelope`` per path, with that one member of its certificate removed."""
    for path in paths:
        tampered = copy.deepcopy(envelope)
        del get_at(tampered["certificate"], path[:-1])[path[-1]]
        yield tampered


def reload(envelope: dict[str, Any], tmp_path) -> dict[str, Any]:
    path = tmp_path / "cert.json"
    path.write_bytes(dumps_envelope(envelope))
    return load_envelope(path)


# --- building -----------------------------------------------------------------------------------

NIST_FIELDS = [
    ("device", "manufacturer"),
    ("device", "model"),
    ("device", "serial_number"),
    ("device", "asset_tag"),
    ("media", "manufacturer"),
    ("media", "model"),
    ("media", "serial_number"),
    ("media", "media_type"),
    ("media", "source"),
    ("confidentiality", "pre_sanitisation"),
    ("confidentiality", "post_sanitisation"),
    ("sanitisation", "level_achieved"),
    ("sanitisation", "technique"),
    ("tool", "name"),
    ("tool", "version"),
    ("verification", "mode"),
    ("destination", "category"),
    ("data_backed_up",),
    *[
        ("personnel", role, attr)
        for role in ("sanitised_by", "validated_by")
        for attr in ("name", "title", "organisation", "location", "contact", "date")
    ],
]


def test_certificate_carries_nist_form_fields_and_engine_evidence():
    doc = build_certificate(make_result(), make_context(), certificate_id=CERT_ID, issued_at=ISSUED_AT)
    for path in NIST_FIELDS:
        assert get_at(doc, path) not in (None, ""), path
    assert doc["schema_version"] == 2
    assert doc["certificate_id"] == str(CERT_ID)
    assert doc["issued_at"] == "2025-03-04T10:15:00Z"
    assert doc["sanitisation"]["level_requested"] == "purge"
    assert doc["sanitisation"]["started_at"] == "2025-03-04T09:58:01.125000Z"  # +00:00 spelt Z
    assert doc["sanitisation"]["technique"] == "crypto erase"
    assert doc["sanitisation"]["block_range"] == {"first_lba": 0, "last_lba": 524287, "sector_size": 512}
    assert doc["sanitisation"]["commands"][0]["argv"] == ["nvme", "sanitize", "/dev/nvme0n1", "--sanact=4"]
    assert doc["sanitisation"]["commands"][1]["stderr"] == "warning: caf\u00e9 \x1b[0m\n"
    assert doc["sanitisation"]["hidden_areas"]["hpa_present_before"] is False
    assert doc["verification"]["seed_hex"] == "9f86d081884c7d65"
    assert doc["verification"]["coverage"] == 0.10430812835693359
    assert doc["personnel"]["validated_by"]["date"] == "2025-03-04T10:00:00Z"  # +01:00 recorded as UTC
    assert doc["custody"] == {"previous_entry_sha256": "b" * 64, "sequence": 42}
    assert doc["residual_risk"] == [
        "firmware erase trusted as reported",
        "over-provisioned area not read back",
    ]


def test_certificate_ids_are_fresh_uuid4_by_default():
    first = build_certificate(make_result(), make_context())
    second = build_certificate(make_result(), make_context())
    assert uuid.UUID(first["certificate_id"]).version == 4
    assert first["certificate_id"] != second["certificate_id"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ok": False, "failure_reason": "I/O error at LBA 4096"}, "not ok: I/O error at LBA 4096"),
        ({"ok": False}, "not ok: no failure reason given"),
        ({"failure_reason": "short write"}, "ok but reports a failure"),
        ({"verification": None}, "no verification"),
        ({"level_achieved": None}, "achieved no sanitisation level"),
        ({"started_at": "2025-03-04T09:58:01"}, "not in UTC"),
        ({"ended_at": "yesterday"}, "not an ISO 8601 time"),
        ({"ended_at": "2025-03-04T09:00:00Z"}, "ended before it started"),
        ({"first_lba": 10, "last_lba": 9}, "invalid block range"),
        ({"technique": Technique.OVERWRITE, "bytes_written": 0}, "wrote no bytes"),
    ],
)
def test_unsuccessful_or_inconsistent_results_are_refused(changes, reason):
    with pytest.raises(CertificateRefusedError, match=reason):
        build_certificate(make_result(**changes), make_context())


@pytest.mark.parametrize(
    ("verification_changes", "reason"),
    [
        ({"passed": False, "mismatches": 3}, r"verification did not pass \(3 mismatches\)"),
        ({"passed": True, "mismatches": 1}, "marked passed but found 1 mismatches"),
        ({"coverage": float("nan")}, "coverage nan"),
        ({"coverage": 0.0}, "coverage 0.0"),
        ({"coverage": 1.5}, "coverage 1.5"),
    ],
)
def test_failed_or_unknown_verification_is_refused(verification_changes, reason):
    verification = dataclasses.replace(make_result().verification, **verification_changes)
    with pytest.raises(CertificateRefusedError, match=reason):
        build_certificate(make_result(verification=verification), make_context())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"organisation": " "}, "organisation is empty"),
        ({"validated_by": dataclasses.replace(make_person("A B", "t"), contact="")}, "validated_by.contact"),
        ({"destination": Destination.OTHER}, "needs destination_detail"),
        ({"destination": "landfill"}, "'landfill' is not a Destination"),
        ({"custody_previous_entry_sha256": "B" * 64}, "not 64 lowercase hex"),
        ({"custody_sequence": -1}, "negative"),
        ({"sanitised_by": dataclasses.replace(make_person("A B", "t"), date=datetime(2025, 1, 1))}, "aware"),
    ],
)
def test_incomplete_context_is_refused(changes, reason):
    with pytest.raises(CertificateRefusedError, match=reason):
        build_certificate(make_result(), make_context(**changes))


def test_values_canonical_json_cannot_carry_are_refused_at_build_time():
    bad_output = dataclasses.replace(make_result().commands[0], stdout="raw byte \udcff")
    with pytest.raises(CertificateContentError, match="not canonical-JSON encodable"):
        build_certificate(make_result(commands=(bad_output,)), make_context())
    with pytest.raises(CertificateContentError, match="safe integer"):
        build_certificate(make_result(bytes_written=2**60), make_context())


# --- signing and verification -------------------------------------------------------------------


def test_round_trip_through_a_file(tmp_path):
    envelope = signed_envelope()
    assert set(envelope) == {"format", "schema_version", "certificate", "signature"}
    assert envelope["format"] == "device-factory-certificate"
    loaded = reload(envelope, tmp_path)
    verified = verify_certificate(loaded, SIGNING_KEY.public_key())
    assert verified.certificate_id == str(CERT_ID)
    assert verified.key_fingerprint == signing.key_fingerprint(SIGNING_KEY.public_key())
    assert verified.certificate == envelope["certificate"]


def test_digest_and_signature_cover_rfc8785_bytes_of_the_certificate():
    envelope = signed_envelope()
    payload = rfc8785.dumps(envelope["certificate"])
    assert canonical_bytes(envelope["certificate"]) == payload
    assert envelope["signature"]["digest_sha256"] == hashlib.sha256(payload).hexdigest()
    import base64

    signing.verify(SIGNING_KEY.public_key(), payload, base64.b64decode(envelope["signature"]["value"]))


@pytest.mark.parametrize("coverage", [1.0, 0.1, 0.30000000000000004, 1e-7, 0.10430812835693359])
def test_float_coverage_survives_json_round_trip(coverage, tmp_path):
    verification = dataclasses.replace(make_result().verification, coverage=coverage)
    envelope = signed_envelope(make_result(verification=verification))
    verified = verify_certificate(reload(envelope, tmp_path), SIGNING_KEY.public_key())
    assert verified.certificate["verification"]["coverage"] == coverage
