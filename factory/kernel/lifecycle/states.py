"""Lifecycle state and event constants, with named groups."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    RECEIVED = "received"
    QUARANTINED = "quarantined"
    SANITISED = "sanitised"
    READY = "ready"
    ALLOCATED = "allocated"
    RETURNED = "returned"
    AWAITING_DISPOSAL = "awaiting_disposal"
    WITH_RECYCLER = "with_recycler"
    SANITISING = "sanitising"
    PROVISIONING = "provisioning"
    SANITISE_FAILED = "sanitise_failed"
    PROVISION_FAILED = "provision_failed"
    ISSUED = "issued"
    IN_TRANSIT = "in_transit"
    INSTALLED = "installed"
    REDISTRIBUTED = "redistributed"
    DISPOSED = "disposed"
    DESTROYED = "destroyed"
    LOST = "lost"


class Event(StrEnum):
    RECEIVE = "receive"
    QUARANTINE = "quarantine"
    TRIAGE = "triage"
    START_SANITISE = "start_sanitise"
    SANITISED = "sanitised"
    FAIL = "fail"
    START_PROVISION = "start_provision"
    PROVISIONED = "provisioned"
    ALLOCATE = "allocate"
    RELEASE = "release"
    ISSUE = "issue"
    DISPATCH = "dispatch"
    DELIVER = "deliver"
    UNDELIVERABLE = "undeliverable"
    INSTALL = "install"
    RETURN = "return"
    SWAP = "swap"
    REDISTRIBUTE = "redistribute"
    ADD_TO_DISPOSAL = "add_to_disposal"
    COLLECT = "collect"
    REMOVE_FROM_DISPOSAL = "remove_from_disposal"
    DISPOSE = "dispose"
    DESTROY = "destroy"
    REPORT_LOST = "report_lost"


IN_FACTORY_STABLE: frozenset[State] = frozenset(
    {
        State.RECEIVED,
        State.QUARANTINED,
        State.SANITISED,
        State.READY,
        State.ALLOCATED,
        State.RETURNED,
        State.AWAITING_DISPOSAL,
    }
)
IN_PROGRESS: frozenset[State] = frozenset({State.SANITISING, State.PROVISIONING})
FAILURE: frozenset[State] = frozenset({State.SANITISE_FAILED, State.PROVISION_FAILED})
OUT_OF_FACTORY: frozenset[State] = frozenset({State.ISSUED, State.IN_TRANSIT, State.INSTALLED, State.WITH_RECYCLER})
TERMINAL: frozenset[State] = frozenset({State.REDISTRIBUTED, State.DISPOSED, State.DESTROYED, State.LOST})
STABLE: frozenset[State] = IN_FACTORY_STABLE | OUT_OF_FACTORY

GROUPS: dict[str, frozenset[State]] = {
    "stable": STABLE,
    "in_progress": IN_PROGRESS,
    "failure": FAILURE,
    "terminal": TERMINAL,
}
