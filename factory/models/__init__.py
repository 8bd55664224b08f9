"""SQLModel tables, one module per domain area. Importing this package registers them all."""

from factory.models.certificate import Certificate
from factory.models.custody import CustodyEntry
from factory.models.custody_workflows import (
    AcceptanceRecord,
    Allocation,
    Approval,
    Consignment,
    ConsignmentItem,
    DestructionRecord,
    DisposalBatch,
    DisposalItem,
    EvidenceDocument,
    Officer,
    Transfer,
    TransferItem,
    Vehicle,
    Wave,
)
from factory.models.device import Device, StorageMedium
from factory.models.line import Bench, Job, JobLog, JobStep, LineAgent, Slot
from factory.models.parties import Custodian, Location
from factory.models.service_env import DeviceImage, ServiceEndpoint
from factory.models.users import ApiToken, User
from factory.models.web import WebSession

__all__ = [
    "AcceptanceRecord",
    "Allocation",
    "ApiToken",
    "Approval",
    "Bench",
    "Certificate",
    "Consignment",
    "ConsignmentItem",
    "Custodian",
    "CustodyEntry",
    "DestructionRecord",
    "Device",
    "DeviceImage",
    "DisposalBatch",
    "DisposalItem",
    "EvidenceDocument",
    "Job",
    "JobLog",
    "JobStep",
    "LineAgent",
    "Location",
    "Officer",
    "ServiceEndpoint",
    "Slot",
    "StorageMedium",
    "Transfer",
    "TransferItem",
    "User",
    "Vehicle",
    "Wave",
    "WebSession",
]
