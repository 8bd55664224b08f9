"""What the factory learns about a device in its service environment, and what was put on it.

``ServiceEndpoint``: how to reach a device booted into the service environment, with the SSH host
key pinned the first time it came up (a later, different key is refused, never re-learned).
``DeviceImage``: each golden image deployed onto a device (name, version, digest), newest last.
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel


class ServiceEndpoint(SQLModel, table=True):
    __tablename__ = "service_endpoint"

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", unique=True)
    address: str = Field(max_length=255)
    port: int = Field(default=22)
    username: str = Field(default="root", max_length=64)
    host_key: str = Field(max_length=1024)  # "ssh-ed25519 AAAA...", pinned at first contact
    host_key_fingerprint: str = Field(max_length=128)
    # The NIC's MAC (aa:bb:cc:dd:ee:ff): identifies the laptop when it appears on a bench switch port.
    mac: str | None = Field(default=None, max_length=17, index=True)
    recorded_at: str = Field(max_length=32)
    recorded_by: str = Field(max_length=64)


class DeviceImage(SQLModel, table=True):
    __tablename__ = "device_image"

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    image_name: str = Field(max_length=128)
    image_version: str = Field(max_length=64)
    image_sha256: str = Field(max_length=64)
    bytes_written: int = Field(default=0, sa_type=BigInteger)
    target: str = Field(default="", max_length=255)
    deployed_at: str = Field(max_length=32)
    deployed_by: str = Field(max_length=64)
