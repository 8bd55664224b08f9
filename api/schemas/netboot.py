"""Network boot over JSON: what a service environment's enrolment agent posts, and the answer."""

from __future__ import annotations

from pydantic import BaseModel, Field

from factory.kernel import limits


class DiskIn(BaseModel):
    name: str = Field(min_length=1, max_length=limits.NAME)
    serial: str = Field(min_length=1, max_length=limits.SERIAL)
    model: str = Field(default="", max_length=limits.MODEL)
    size_bytes: int = Field(default=0, ge=0, le=limits.CAPACITY_BYTES)
    firmware: str = Field(default="", max_length=limits.NAME)
    transport: str = Field(default="", max_length=16)
    rotational: bool = False
    capabilities: list[str] = Field(default_factory=list, max_length=32)


class EnrolmentIn(BaseModel):
    """One boot's enrolment: the token from the kernel command line, identity, disks, host key."""

    token: str | None = Field(default=None, max_length=128)
    boot_mac: str = Field(min_length=11, max_length=17)
    serial: str = Field(min_length=1, max_length=limits.SERIAL)
    vendor: str = Field(default="", max_length=limits.MAKE)
    model: str = Field(default="", max_length=limits.MODEL)
    macs: list[str] = Field(default_factory=list, max_length=16)
    disks: list[DiskIn] = Field(default_factory=list, max_length=limits.MEDIA_PER_DEVICE)
    host_key: str = Field(min_length=10, max_length=1024)
    ssh_port: int = Field(default=22, ge=1, le=65535)


class EnrolmentPublic(BaseModel):
    outcome: str
    serial: str
    mac: str
    matched_by: str
    job: int
    job_status: str
    reason: str | None = None
