"""Pluggable erase methods, one module each. Each answers ``supports(probe)``; the planner asks
them in order and takes the first that can reach the requested level."""

from __future__ import annotations

from imaging.methods.ata_sanitize import AtaSanitize
from imaging.methods.ata_secure_erase import AtaSecureErase
from imaging.methods.base import EraseMethod, FirmwareContext, FirmwareExpectation, FirmwareMethod, Support
from imaging.methods.nvme_format import NvmeFormat
from imaging.methods.nvme_sanitize import NvmeSanitize
from imaging.methods.overwrite import OverwriteMethod

__all__ = [
    "DEFAULT_OVERWRITE",
    "EraseMethod",
    "FirmwareContext",
    "FirmwareExpectation",
    "FirmwareMethod",
    "OverwriteMethod",
    "Support",
    "firmware_methods",
    "methods_for_choice",
]


def firmware_methods() -> list[FirmwareMethod]:
    """Firmware methods in order of preference: sanitize before format, crypto before block."""
    return [
        NvmeSanitize("crypto"),
        NvmeSanitize("block"),
        NvmeFormat(2),
        NvmeFormat(1),
        AtaSanitize("crypto"),
        AtaSanitize("block"),
        AtaSecureErase(enhanced=True),
        AtaSecureErase(enhanced=False),
    ]


# The overwrite ``auto`` falls back to: a keyed AES-CTR stream (its key recorded on the certificate)
# that a medium cannot fake by dropping writes and reading back zeros, as it can a zeros overwrite.
DEFAULT_OVERWRITE = "random"


def methods_for_choice(choice: str, overwrite: str = DEFAULT_OVERWRITE) -> list[EraseMethod]:
    """Candidate methods for an operator's choice, in order of preference; ``overwrite`` is the
    pattern ``auto`` overwrites with where no firmware method applies (zeros only when asked)."""
    if choice == "auto":
        return [*firmware_methods(), OverwriteMethod(overwrite)]
    if choice in ("zeros", "ones", "random"):
        return [OverwriteMethod(choice)]
    chosen: list[EraseMethod] = [m for m in firmware_methods() if m.choice == choice]
    if not chosen:
        raise ValueError(f"unknown method {choice!r}")
    return chosen
