"""Custodians (people and organisations) and locations."""

from __future__ import annotations

from enum import StrEnum

from sqlmodel import Field, SQLModel, UniqueConstraint


class CustodianKind(StrEnum):
    FACTORY = "factory"
    OFFICER = "officer"
    TECHNICIAN = "technician"
    COURIER = "courier"
    SCHOOL = "school"
    RECYCLER = "recycler"
    VEHICLE = "vehicle"
    CONTRACTOR = "contractor"
    ORGANISATION = "organisation"
    SUPPLIER = "supplier"


class Custodian(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("kind", "reference", name="uq_custodian_kind_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    reference: str = Field(max_length=128)  # staff number, fleet number, company number, ...
    name: str = Field(default="", max_length=200)
    address: str = Field(default="", max_length=500)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.reference}"


class Location(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=64)
    name: str = Field(default="", max_length=200)
    address: str = Field(default="", max_length=500)
