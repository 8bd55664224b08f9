"""Devices over JSON: receive one (DeviceReceive), read one (DevicePublic); the device family
(DeviceBase -> DeviceStatus -> DevicePublic, audit's HistoryDevice) shares its fields."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import CertificateSummary, CustodyEntryPublic, MediumPublic
from factory.kernel import limits
from factory.kernel.models.device import DeviceKind, MediaType


class MediaIn(BaseModel):
    media_type: MediaType
    serial: str = Field(min_length=1, max_length=limits.SERIAL)
    capacity_bytes: int = Field(default=0, ge=0, le=limits.CAPACITY_BYTES)
    model: str = Field(default="", max_length=limits.MODEL)


class DeviceReceive(BaseModel):
    """A device booked in; its own validated fields (the read models below carry stored text)."""

    serial: str = Field(min_length=1, max_length=limits.SERIAL)
    kind: DeviceKind
    make: str = Field(default="", max_length=limits.MAKE)
    model: str = Field(default="", max_length=limits.MODEL)
    asset_tag: str | None = Field(default=None, min_length=1, max_length=limits.ASSET_TAG)
    from_custodian: str = Field(default="", max_length=limits.PARTY)
    location: str = Field(default="", max_length=limits.PARTY)
    new_stock: bool = False
    media: list[MediaIn] = Field(default_factory=list, max_length=limits.MEDIA_PER_DEVICE)


class DeviceBase(BaseModel):
    """What a device is."""

    serial: str
    asset_tag: str | None
    make: str
    model: str
    kind: str


class DeviceStatus(DeviceBase):
    """What a device is, where it stands and with whom."""

    state: str | None
    custodian: str
    location: str
    held_user_data: bool


class DevicePublic(DeviceStatus):
    role: str | None
    media: list[MediumPublic]
    certificates: list[CertificateSummary]
    history: list[CustodyEntryPublic]
