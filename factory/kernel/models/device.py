"""Devices and the storage media recorded inside them."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel, UniqueConstraint


class DeviceKind(StrEnum):
    LAPTOP = "laptop"
    TABLET = "tablet"
    VEHICLE_TABLET = "vehicle-tablet"
    DESKTOP = "desktop"


class MediaType(StrEnum):
    HDD = "hdd"
    SATA_SSD = "sata-ssd"
    NVME = "nvme"
    EMMC = "emmc"
    UFS = "ufs"
    USB = "usb"
    SD = "sd"


class Device(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    serial: str = Field(index=True, unique=True, max_length=128)
    asset_tag: str | None = Field(default=None, unique=True, max_length=64)
    make: str = Field(default="", max_length=128)
    model: str = Field(default="", max_length=128)
    kind: str = Field(max_length=32)
    role: str | None = Field(default=None, max_length=64)
    # None until the first custody entry ("receive") exists; only lifecycle.change_state writes it.
    state: str | None = Field(default=None, index=True, max_length=32)
    custodian: str = Field(default="", max_length=200)
    location: str = Field(default="", max_length=200)
    # Ledger sequence of the latest event after which the device may hold someone's data
    # (received used, returned, undeliverable). None: never held user data (new stock).
    user_data_since_seq: int | None = Field(default=None)
    # Ledger sequence of the start_sanitise entry that opened the latest erase round.
    erase_round_seq: int | None = Field(default=None)
    created_at: str = Field(max_length=32)
    updated_at: str = Field(max_length=32)


class StorageMedium(SQLModel, table=True):
    __tablename__ = "storage_medium"
    __table_args__ = (UniqueConstraint("device_id", "serial", name="uq_medium_device_serial"),)

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    serial: str = Field(index=True, max_length=128)
    model: str = Field(default="", max_length=128)
    media_type: str = Field(max_length=16)
    capacity_bytes: int = Field(default=0, sa_type=BigInteger)
