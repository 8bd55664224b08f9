"""Typed errors of intake (subclasses of the kernel's, so the API and CLI map them unchanged)."""

from __future__ import annotations

from factory.kernel.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated

__all__ = [
    "BootTokenForAnotherMac",
    "BootTokenRefused",
    "DeviceAlreadyKnown",
    "EnrolmentFromElsewhere",
    "HostKeyChanged",
    "ImageNotVerified",
    "InvalidInput",
    "NoEndpoint",
    "ServiceEnvironmentMissing",
    "UnknownDevice",
]


class UnknownDevice(NotFound):
    """No device has this serial."""


class DeviceAlreadyKnown(Conflict):
    """The serial (or asset tag) is already booked in: a device is received once."""


class NoEndpoint(NotFound):
    """The device has no service-environment endpoint recorded."""


class HostKeyChanged(Conflict):
    """The device offered a host key other than the one pinned at first contact; never re-learned."""


class ImageNotVerified(Conflict):
    """An image deploy that failed (or did not verify) is never recorded as imaged."""


class BootTokenRefused(Unauthenticated):
    """A network enrolment without a boot token, or with one that is unknown, used or expired."""


class BootTokenForAnotherMac(PermissionDenied):
    """The boot token was issued to another NIC's boot: it cannot enrol this one."""


class ServiceEnvironmentMissing(NotFound):
    """The service environment's kernel or initramfs is not installed where the controller serves it."""


class EnrolmentFromElsewhere(PermissionDenied):
    """An enrolment for a MAC posted from another address than the one the bench's DHCP leased it."""
