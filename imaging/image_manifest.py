"""The manifest of a golden image: what it is, and the digest its deployed content must have.

A manifest is a JSON object, kept beside the image as ``<image>.manifest.json`` or handed over
directly::

    {"name": "win11-police", "version": "2025.06.1", "format": "zstd",
     "size_bytes": 34359738368, "sha256": "<64 hex>", "compressed_sha256": "<64 hex, optional>",
     "piece_bytes": 4194304, "pieces_sha256": "<64 hex, optional>"}

``size_bytes``, ``sha256`` and ``pieces_sha256`` describe the *uncompressed* content, which is what
lands on the disk. ``pieces_sha256`` (with its ``piece_bytes``) is the same content's digest taken
piece by piece (``piece_digest``), which a deploy can compute on more than one core; a manifest
without it (written before it existed) is checked against ``sha256`` alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from imaging.deploy_source import looks_like_zstd, measure_image
from imaging.errors import ImagingError
from imaging.piece_digest import PIECE_BYTES

MANIFEST_SUFFIX = ".manifest.json"
# The smallest piece a manifest may name. Every piece is a hash call and a 32-byte digest held until
# the end: a 1-byte piece would turn a 32 GiB deploy into 34 billion of each. 64 KiB keeps a slot's
# pieces to 128 and the digests to 0.05% of the content.
MIN_PIECE_BYTES = 64 << 10
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ImagingError):
    """The manifest is missing, not valid JSON or lacks a valid field."""


class ImageFormat(StrEnum):
    RAW = "raw"
    ZSTD = "zstd"


@dataclass(frozen=True)
class ImageManifest:
    name: str
    version: str
    format: ImageFormat
    size_bytes: int  # of the uncompressed content
    sha256: str  # lowercase hex, of the uncompressed content
    compressed_sha256: str | None = None  # lowercase hex, of the zstd file as stored
    piece_bytes: int | None = None  # the pieces of ``pieces_sha256``
    pieces_sha256: str | None = None  # lowercase hex, of the uncompressed content piece by piece

    def __post_init__(self) -> None:
        for field_name in ("name", "version"):
            value = getattr(self, field_name)
            if not isinstance(value, str) or not value.strip():
                raise ManifestError(f"manifest {field_name} must be a non-empty string")
        try:
            object.__setattr__(self, "format", ImageFormat(self.format))
        except ValueError as exc:
            raise ManifestError(f"manifest format must be one of {[f.value for f in ImageFormat]}") from exc
        if isinstance(self.size_bytes, bool) or not isinstance(self.size_bytes, int) or self.size_bytes <= 0:
            raise ManifestError("manifest size_bytes must be a positive integer")
        if not isinstance(self.sha256, str) or not _HEX64.fullmatch(self.sha256):
            raise ManifestError("manifest sha256 must be 64 lowercase hex digits")
        if self.compressed_sha256 is not None:
            if self.format is not ImageFormat.ZSTD:
                raise ManifestError("manifest compressed_sha256 is only meaningful for a zstd image")
            if not isinstance(self.compressed_sha256, str) or not _HEX64.fullmatch(self.compressed_sha256):
                raise ManifestError("manifest compressed_sha256 must be 64 lowercase hex digits")
        self._check_pieces()

    def _check_pieces(self) -> None:
        if (self.piece_bytes is None) != (self.pieces_sha256 is None):
            raise ManifestError("manifest piece_bytes and pieces_sha256 go together: both or neither")
        if self.piece_bytes is None:
            return
        if isinstance(self.piece_bytes, bool) or not isinstance(self.piece_bytes, int):
            raise ManifestError("manifest piece_bytes must be an integer")
        if self.piece_bytes < MIN_PIECE_BYTES:
            raise ManifestError(f"manifest piece_bytes must be at least {MIN_PIECE_BYTES} (64 KiB)")
        if not isinstance(self.pieces_sha256, str) or not _HEX64.fullmatch(self.pieces_sha256):
            raise ManifestError("manifest pieces_sha256 must be 64 lowercase hex digits")

    @property
    def content_digest(self) -> str:
        """The digest a deploy checks its content against (``expected_content_digest``)."""
        return expected_content_digest(self.sha256, self.pieces_sha256)

    @property
    def content_digest_described(self) -> str:
        """What ``content_digest`` is, in a failure reason's words."""
        return "SHA-256" if self.piece_bytes is None else f"SHA-256 of its {self.piece_bytes}-byte pieces"

    @classmethod
    def from_dict(cls, data: Any) -> ImageManifest:
        if not isinstance(data, dict):
            raise ManifestError("manifest must be a JSON object")
        known = {f.name for f in fields(cls)}
        if missing := sorted({"name", "version", "format", "size_bytes", "sha256"} - data.keys()):
            raise ManifestError(f"manifest lacks {', '.join(missing)}")
        if unknown := sorted(data.keys() - known):
            raise ManifestError(f"manifest has unknown fields {', '.join(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["format"] = self.format.value
        for optional in ("compressed_sha256", "piece_bytes", "pieces_sha256"):
            if out[optional] is None:
                del out[optional]
        return out


def expected_content_digest(sha256: str, pieces_sha256: str | None) -> str:
    """The one rule for which digest deployed content must match: the pieces digest where the
    manifest has one (it is what a deploy computes then), else the plain SHA-256."""
    return pieces_sha256 if pieces_sha256 is not None else sha256


def manifest_path_for(image_path: str | Path) -> Path:
    return Path(f"{image_path}{MANIFEST_SUFFIX}")


def load_manifest(path: str | Path) -> ImageManifest:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"manifest {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    return ImageManifest.from_dict(data)


def save_manifest(manifest: ImageManifest, path: str | Path) -> None:
    Path(path).write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build_manifest(image_path: str | Path, *, name: str, version: str) -> ImageManifest:
    """Describe an image by streaming it once (format from its magic bytes): for publishing images."""
    compressed = looks_like_zstd(str(image_path))
    measured = measure_image(str(image_path), compressed=compressed, piece_bytes=PIECE_BYTES)
    if measured.size == 0:
        raise ManifestError(f"image {image_path} is empty")
    fmt = ImageFormat.ZSTD if compressed else ImageFormat.RAW
    return ImageManifest(
        name,
        version,
        fmt,
        measured.size,
        measured.sha256,
        measured.compressed_sha256,
        piece_bytes=PIECE_BYTES,
        pieces_sha256=measured.pieces_sha256,
    )
