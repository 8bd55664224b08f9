"""What the factory learns about a device in its service environment, and what was put on it.

``ServiceEndpoint``: how to reach a device booted into the service environment, with the SSH host
key pinned the first time it came up (a later, different key is refused, never re-learned).
``DeviceImage``: each golden image deployed onto a device (name, version, digest), newest last.
``BootToken``: a one-time token put on one network boot's kernel command line (only its SHA-256 is
stored), bound to the MAC that booted and short-lived; the enrolment it authorises uses it up.
``Enrolment``: what a network-booted service environment reported about itself (identity, disks,
the host key it made for that boot) and what the controller decided, kept as evidence.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Text
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


class BootToken(SQLModel, table=True):
    __tablename__ = "boot_token"

    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(max_length=64, unique=True)
    mac: str = Field(max_length=17, index=True)  # the NIC whose iPXE request the token was issued to
    issued_at: str = Field(max_length=32)
    expires_at: str = Field(max_length=32)
    used_at: str | None = Field(default=None, max_length=32)


class Enrolment(SQLModel, table=True):
    __tablename__ = "enrolment"

    id: int | None = Field(default=None, primary_key=True)
    boot_token_id: int = Field(foreign_key="boot_token.id", unique=True)  # one enrolment per boot
    device_id: int | None = Field(default=None, foreign_key="device.id", index=True)
    mac: str = Field(max_length=17, index=True)
    address: str = Field(max_length=64)  # where the service environment posted from
    dmi_serial: str = Field(default="", max_length=128)
    vendor: str = Field(default="", max_length=128)
    model: str = Field(default="", max_length=128)
    host_key_fingerprint: str = Field(max_length=128)
    report: str = Field(sa_column=Column(Text, nullable=False))  # the report as received (canonical JSON)
    outcome: str = Field(max_length=16)  # accepted, quarantined, refused
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    received_at: str = Field(max_length=32)
