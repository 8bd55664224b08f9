"""A signed certificate laid out for an auditor: sections of labelled facts read from the document.

Reads both schema versions (a version 1 certificate simply has fewer facts: a missing member shows
as "not recorded") and both certificate types. Values are taken from the signed document only, so
what the page says is what the signature covers; the raw signed JSON stays one link away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from imaging.certificate import Destination, document_field
from imaging.result import Level

NOT_RECORDED = "not recorded"
# What the search form offers for its level and destination filters ("" is any).
LEVEL_CHOICES = ["", *(level.value for level in Level)]
DESTINATION_CHOICES = ["", *(d.value for d in Destination)]


@dataclass(frozen=True)
class Section:
    key: str  # stable id for the page's anchors and tests
    title: str
    facts: list[tuple[str, str]]  # (label, value as text)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return NOT_RECORDED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2%}"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _facts(doc: Mapping[str, Any], rows: list[tuple[str, tuple[str, ...]]]) -> list[tuple[str, str]]:
    return [(label, _text(document_field(doc, *path))) for label, path in rows]


def _person(doc: Mapping[str, Any], role: str, *path: str) -> str:
    who = document_field(doc, *path)
    if not isinstance(who, Mapping):
        return NOT_RECORDED
    account = f" (account {who['account']})" if who.get("account") else ""
    return f"{who.get('name')}{account}, {who.get('title')}, {who.get('organisation')}; {role} {who.get('date')}"


def _device(doc: Mapping[str, Any]) -> Section:
    rows = [
        ("Serial number", ("device", "serial_number")),
        ("Asset tag", ("device", "asset_tag")),
        ("Manufacturer", ("device", "manufacturer")),
        ("Model", ("device", "model")),
        ("Kind", ("device", "kind")),
        ("Organisation", ("organisation", "name")),
        ("Site", ("organisation", "site")),
    ]
    return Section("device", "Device", _facts(doc, rows))


def _medium(doc: Mapping[str, Any]) -> Section:
    rows = [
        ("Serial number", ("media", "serial_number")),
        ("Model", ("media", "model")),
        ("Media type", ("media", "media_type")),
        ("Interface", ("media", "transport")),
        ("Capacity (bytes)", ("media", "size_bytes")),
        ("Firmware revision", ("media", "firmware_revision")),
        ("Sanitize capabilities (as probed)", ("media", "sanitize_capabilities")),
        ("Media source", ("media", "source")),
    ]
    return Section("medium", "Medium", _facts(doc, rows))


def _method(doc: Mapping[str, Any]) -> Section:
    rows = [
        ("Standard", ("standards", "sanitisation")),
        ("Techniques per", ("standards", "techniques")),
        ("Level achieved", ("sanitisation", "level_achieved")),
        ("Level requested", ("sanitisation", "level_requested")),
        ("Method", ("sanitisation", "method")),
        ("IEEE 2883 technique", ("sanitisation", "ieee2883", "technique")),
        ("IEEE 2883 clause", ("sanitisation", "ieee2883", "clause")),
        ("Pattern", ("sanitisation", "pattern")),
        ("Pattern key (hex)", ("sanitisation", "pattern_seed_hex")),
        ("Started", ("sanitisation", "started_at")),
        ("Ended", ("sanitisation", "ended_at")),
        ("Reason for sanitisation", ("reason_for_sanitisation",)),
        ("Data classification", ("confidentiality", "pre_sanitisation")),
        ("Crypto erase: key destroyed", ("sanitisation", "crypto_erase", "key_destroyed")),
        ("Crypto erase: encrypted from first use", ("sanitisation", "crypto_erase", "encrypted_from_first_use")),
        ("Tool", ("tool", "name")),
        ("Tool version", ("tool", "version")),
        ("Run by (bench agent)", ("tool", "agent")),
    ]
    facts = _facts(doc, rows)
    commands = document_field(doc, "sanitisation", "commands") or []
    for index, command in enumerate(commands if isinstance(commands, list) else [], start=1):
        if isinstance(command, Mapping):
            status = command.get("status") if isinstance(command.get("status"), Mapping) else None
            exit_status = f"exit {command.get('returncode')}"
            outcome = f"{status.get('outcome')}: {status.get('detail')}" if status else exit_status
            facts.append((f"Command {index}", f"{' '.join(map(str, command.get('argv') or []))} — {outcome}"))
    return Section("method", "Method and standard", facts)


def _verification(doc: Mapping[str, Any]) -> Section:
    rows = [
        ("Passed", ("verification", "passed")),
        ("Mode", ("verification", "mode")),
        ("Expected", ("verification", "expected_pattern")),
        ("Coverage", ("verification", "coverage")),
        ("Bytes read", ("verification", "bytes_read")),
        ("Locations", ("verification", "locations")),
        ("Mismatches", ("verification", "mismatches")),
        ("Sample seed", ("verification", "seed_hex")),
    ]
    return Section("verification", "Verification", _facts(doc, rows))


def _validation(doc: Mapping[str, Any]) -> Section:
    rows = [
        ("Result", ("validation", "result")),
        ("Method", ("validation", "method")),
        ("Criteria", ("validation", "criteria")),
        ("Sample", ("validation", "sample")),
    ]
    facts = _facts(doc, rows)
    facts.append(("Validated by", _person(doc, "validated", "validation", "validated_by")))
    return Section("validation", "Validation", facts)


def _people(doc: Mapping[str, Any]) -> Section:
    facts = [
        ("Sanitised by", _person(doc, "sanitised", "personnel", "sanitised_by")),
        ("Validated by", _person(doc, "validated", "personnel", "validated_by")),
    ]
    return Section("people", "People", facts)


def _custody(doc: Mapping[str, Any]) -> Section:
    rows = [
        ("Custody entry (sequence)", ("custody", "sequence")),
        ("Entry it extends (SHA-256)", ("custody", "previous_entry_sha256")),
        ("Destination", ("destination", "category")),
        ("Destination detail", ("destination", "detail")),
        ("Data backed up", ("data_backed_up",)),
        ("Residual risk", ("residual_risk",)),
    ]
    return Section("custody", "Custody link and destination", _facts(doc, rows))


def _destruction(doc: Mapping[str, Any]) -> Section:
    rows = [
        ("IEEE 2883 Destruct technique", ("destruction", "technique")),
        ("Method", ("destruction", "method")),
        ("Particle size (mm)", ("destruction", "particle_size_mm")),
        ("Machine", ("destruction", "machine")),
        ("Destroyed at", ("destruction", "destroyed_at")),
        ("Photo digests (SHA-256)", ("destruction", "photo_sha256")),
    ]
    facts = _facts(doc, rows)
    facts.append(("Requested by", _person(doc, "requested", "personnel", "requested_by")))
    facts.append(("Witnessed by", _person(doc, "witnessed", "personnel", "witnessed_by")))
    return Section("destruction", "Destruction", facts)


_SANITISATION: tuple[Callable[[Mapping[str, Any]], Section], ...] = (
    _device,
    _medium,
    _method,
    _verification,
    _validation,
    _people,
    _custody,
)
_DESTRUCTION: tuple[Callable[[Mapping[str, Any]], Section], ...] = (_device, _medium, _destruction, _custody)


def certificate_sections(doc: Mapping[str, Any]) -> list[Section]:
    """The sections an auditor reads, in order, for a (signed) certificate document."""
    builders = _DESTRUCTION if doc.get("certificate_type") == "destruction" else _SANITISATION
    return [build(doc) for build in builders]
