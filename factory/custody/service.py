"""The custody area's writes: every step of every hand-off workflow, for the API, pages and CLI.

Each step is defined in its workflow module (one per workflow) and re-exported here, so other
areas and ``api/`` import ``factory.custody.service`` (writes) and ``factory.custody.views``
(reads) only. Every custody step returns an ``Outcome`` (the record it wrote or moved, the
ledger entries it appended, and the acceptance or document it produced); registering people,
parties and waves returns the row.
"""

from __future__ import annotations

from factory.custody.acceptance import Acceptance, wrong_pins_counted
from factory.custody.allocation import allocate, mark_returned, release
from factory.custody.bulk_import import MAX_BYTES as MAX_IMPORT_BYTES
from factory.custody.bulk_import import ImportKind, ImportReport, import_csv
from factory.custody.consignments import create_consignment, record_shielding
from factory.custody.courier_transit import deliver, hand_over, record_failed_delivery, return_to_factory
from factory.custody.destruction import request_destruction, witness_destruction
from factory.custody.disposal import (
    add_device,
    close_batch,
    collect,
    open_batch,
    record_recycler_certificate,
    remove_device,
)
from factory.custody.documents import MAX_DOCUMENT_BYTES, DocumentKind, Upload, store_document
from factory.custody.issue import approve_exception, issue_device, request_exception
from factory.custody.outcome import Outcome
from factory.custody.people import party_label, register_officer, register_party, register_vehicle
from factory.custody.personalisation import import_at_needs, record_personalisation, set_at_needs
from factory.custody.pool import create_pool, stock_spare, withdraw_spare
from factory.custody.redistribution import redistribute
from factory.custody.swap import walk_in_swap
from factory.custody.triage import triage
from factory.custody.vehicle_builds import build_for_vehicle, remove_build
from factory.custody.vehicle_swap import Fitter, replace_tablet
from factory.custody.vehicles import decommission_vehicle, install_tablet
from factory.custody.waste_note import WasteTransfer
from factory.custody.waves import create_wave

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_IMPORT_BYTES",
    "Acceptance",
    "DocumentKind",
    "Fitter",
    "ImportKind",
    "ImportReport",
    "Outcome",
    "Upload",
    "WasteTransfer",
    "add_device",
    "allocate",
    "approve_exception",
    "build_for_vehicle",
    "close_batch",
    "collect",
    "create_consignment",
    "create_pool",
    "create_wave",
    "decommission_vehicle",
    "deliver",
    "hand_over",
    "import_at_needs",
    "import_csv",
    "install_tablet",
    "issue_device",
    "mark_returned",
    "open_batch",
    "party_label",
    "record_failed_delivery",
    "record_personalisation",
    "record_recycler_certificate",
    "record_shielding",
    "redistribute",
    "register_officer",
    "register_party",
    "register_vehicle",
    "release",
    "remove_build",
    "remove_device",
    "replace_tablet",
    "request_destruction",
    "request_exception",
    "return_to_factory",
    "set_at_needs",
    "stock_spare",
    "store_document",
    "triage",
    "walk_in_swap",
    "withdraw_spare",
    "witness_destruction",
    "wrong_pins_counted",
]
