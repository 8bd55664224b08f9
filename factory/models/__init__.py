"""SQLModel tables, one module per domain area. Importing this package registers them all."""

from factory.models.certificate import Certificate
from factory.models.custody import CustodyEntry
from factory.models.device import Device, StorageMedium
from factory.models.parties import Custodian, Location
from factory.models.users import ApiToken, User

__all__ = [
    "ApiToken",
    "Certificate",
    "Custodian",
    "CustodyEntry",
    "Device",
    "Location",
    "StorageMedium",
    "User",
]
