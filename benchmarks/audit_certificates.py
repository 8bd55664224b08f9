"""Signed certificates for ``benchmarks/audit.py``'s load, made fast from one real certificate."""

from __future__ import annotations

import base64
import hashlib
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the tests' harness
from harness.bench_certificate import bench_context

from imaging import signing
from imaging.certificate import build_certificate, dumps_envelope
from imaging.result import CommandRecord, EraseResult, Level, MediaIdentity, Technique, VerificationResult, VerifyMode

WHEN = datetime(2024, 1, 1, 10, 0, 10, tzinfo=UTC)  # the date the bench people signed for


class CertificateFactory:
    """Signed envelopes made fast: the RFC 8785 bytes of one real certificate, built by the
    project's builder with marker values, are cut at the markers; each certificate fills them in
    (the markers are plain ASCII values, so member order and escaping are unchanged), then is
    hashed and signed for real. Envelopes are laid out exactly as ``dumps_envelope`` lays them out."""

    MARKERS = {
        "certificate_id": "00000000-0000-4000-8000-00000000c1d0",
        "issued_at": "2000-01-01T00:00:01Z",
        "device_serial": "MARKER-DEVICE-SERIAL",
        "asset_tag": "MARKER-ASSET-TAG",
        "medium_serial": "MARKER-MEDIUM-SERIAL",
        "entry_hash": "e" * 64,
        "sequence": "987654321012345",
        "digest": "d" * 64,
        "signature": "S" * 88,
    }

    def __init__(self, private_key: Any, site: str) -> None:
        self.key = private_key
        self.fingerprint = signing.key_fingerprint(private_key.public_key())
        m = self.MARKERS
        doc = build_certificate(
            _erase_result(m["medium_serial"]),
            bench_context(
                site,
                m["device_serial"],
                asset_tag=m["asset_tag"],
                custody=(m["entry_hash"], int(m["sequence"])),
                when=WHEN,
            ),
            certificate_id=uuid.UUID(m["certificate_id"]),
            issued_at=datetime.fromisoformat(m["issued_at"]),
        )
        fields = ("certificate_id", "issued_at", "device_serial", "asset_tag", "medium_serial", "entry_hash")
        self.canonical = _Template(
            rfc8785.dumps(doc).decode("utf-8"), {m[f]: f for f in fields} | {m["sequence"]: "sequence"}
        )
        envelope = {
            "format": "device-factory-certificate",
            "schema_version": doc["schema_version"],  # the envelope's version must be its certificate's
            "certificate": doc,
            "signature": {
                "algorithm": "Ed25519",
                "key_fingerprint": self.fingerprint,
                "digest_sha256": m["digest"],
                "value": m["signature"],
            },
        }
        self.envelope = _Template(
            dumps_envelope(envelope).decode("utf-8"),
            {m[f]: f for f in fields} | {m["sequence"]: "sequence", m["digest"]: "digest", m["signature"]: "signature"},
        )

    def make(self, values: dict[str, str]) -> tuple[str, str]:
        """(envelope text, digest) for one certificate."""
        payload = self.canonical.fill(values).encode("utf-8")
        digest = hashlib.sha256(payload).hexdigest()
        sig = base64.b64encode(self.key.sign(payload)).decode("ascii")
        return self.envelope.fill({**values, "digest": digest, "signature": sig}), digest


class _Template:
    def __init__(self, text: str, markers: dict[str, str]) -> None:
        self.parts: list[str] = []
        self.names: list[str] = []
        rest = text
        while True:
            hits = [(rest.find(marker), marker) for marker in markers if marker in rest]
            if not hits:
                break
            at, marker = min(hits)
            self.parts.append(rest[:at])
            self.names.append(markers[marker])
            rest = rest[at + len(marker) :]
        self.parts.append(rest)
        missing = set(markers.values()) - set(self.names)
        if missing:
            raise RuntimeError(f"template lost markers {missing}")

    def fill(self, values: dict[str, str]) -> str:
        out = [self.parts[0]]
        for name, part in zip(self.names, self.parts[1:], strict=True):
            out.append(values[name])
            out.append(part)
        return "".join(out)


def _erase_result(medium_serial: str) -> EraseResult:
    size = 256 * 10**9
    out = "\n".join(
        ["/dev/sda:", "", "ATA device, with non-removable media", "\tModel Number:       Samsung SSD 870 EVO 250GB"]
        + [f"\tSecurity: supported enhanced erase, {i * 2}min for SECURITY ERASE UNIT" for i in range(1, 12)]
    )
    return EraseResult(
        ok=True,
        media=MediaIdentity(
            path="/dev/sda", target_kind="block", media_type="sata-ssd", size_bytes=size,
            logical_sector_size=512, physical_sector_size=4096, model="Samsung SSD 870 EVO 250GB",
            serial=medium_serial, manufacturer="Samsung", transport="sata", rotational=False,
        ),
        level_requested=Level.PURGE, level_achieved=Level.PURGE, method="ata-sanitize-crypto",
        technique=Technique.CRYPTO_ERASE, pattern=None, pattern_seed_hex=None, passes=1, bytes_written=0,
        first_lba=0, last_lba=size // 512 - 1,
        started_at="2024-01-01T10:00:00Z", ended_at="2024-01-01T10:00:09Z",
        verification=VerificationResult(
            mode=VerifyMode.SAMPLE, expected_pattern="vendor-zeros", seed_hex="5eed" * 8, bytes_read=size // 10,
            coverage=0.1043081283569336, subsections=1000, locations=2000, mismatches=0, passed=True,
        ),
        commands=(
            CommandRecord(argv=("hdparm", "-I", "/dev/sda"), returncode=0, stdout=out, stderr="",
                          started_at="2024-01-01T09:59:58Z", ended_at="2024-01-01T09:59:59Z"),
            CommandRecord(argv=("hdparm", "--yes-i-know-what-i-am-doing", "--sanitize-crypto-scramble", "/dev/sda"),
                          returncode=0, stdout="/dev/sda:\n", stderr="", started_at="2024-01-01T10:00:00Z",
                          ended_at="2024-01-01T10:00:09Z"),
        ),
        tool_version="1.0.0", tool_code_sha256="ab" * 32,
    )  # fmt: skip
