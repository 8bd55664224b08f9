"""Lifecycle state and event constants, with named groups.

Each state says what the device is doing while in it; each event names the step that moves it
(``table.py`` says from where to where). The groups name the kinds of state: stable (nothing is
working on the device), in progress (a line job is), failure, and terminal (it never changes again).
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    RECEIVED = "received"
    """Booked into the factory's custody and waiting: for triage, an erase, or (new stock) provisioning."""
    QUARANTINED = "quarantined"
    """Held aside (damaged, suspect, unidentified media) until triage releases it or it is destroyed."""
    SANITISED = "sanitised"
    """Every medium erased and certified in the latest round; next: provisioning, redistribution or disposal."""
    READY = "ready"
    """Provisioned and on the shelf: a spare waiting to be allocated (or swapped out at the counter)."""
    ALLOCATED = "allocated"
    """Promised to a person or vehicle; waiting to be issued, dispatched or installed."""
    RETURNED = "returned"
    """Back from its user (or undeliverable): it may hold their data, so it must be erased before reuse."""
    AWAITING_DISPOSAL = "awaiting_disposal"
    """Sanitised and in a disposal batch, waiting for the recycler to collect it."""
    WITH_RECYCLER = "with_recycler"
    """Collected by the recycler (WEEE); out of the factory until its disposal is confirmed."""
    SANITISING = "sanitising"
    """An erase round is open: its media are being erased and verified on a bench or over the network."""
    PROVISIONING = "provisioning"
    """Being built for issue: image deployed, configured and checked by the provisioning run."""
    SANITISE_FAILED = "sanitise_failed"
    """The erase round failed or its outcome is unknown: only a new erase or destruction may follow."""
    PROVISION_FAILED = "provision_failed"
    """Provisioning failed; it may be provisioned again or re-sanitised."""
    ISSUED = "issued"
    """In the hands of its user (officer or staff), out of the factory."""
    IN_TRANSIT = "in_transit"
    """With a courier on its way to its user; delivered, undeliverable or lost next."""
    INSTALLED = "installed"
    """Fitted in a vehicle, out of the factory."""
    REDISTRIBUTED = "redistributed"
    """Left for good, certified, to another organisation for reuse (terminal)."""
    DISPOSED = "disposed"
    """Recycled: the recycler confirmed its disposal (terminal)."""
    DESTROYED = "destroyed"
    """Physically destroyed, witnessed by a second person (terminal)."""
    LOST = "lost"
    """Reported lost while out of the factory (terminal)."""


class Event(StrEnum):
    RECEIVE = "receive"
    ENROL_IN_FIELD = "enrol_in_field"  # first record of a device already with its officer (bulk import only)
    RECORD_MEDIA = "record_media"  # media of an in-field device recorded when it came back (no state change)
    QUARANTINE = "quarantine"
    TRIAGE = "triage"
    START_SANITISE = "start_sanitise"
    SANITISED = "sanitised"
    FAIL = "fail"
    START_PROVISION = "start_provision"
    PROVISIONED = "provisioned"
    DEPLOY_IMAGE = "deploy_image"  # a golden image written and read back while provisioning (no state change)
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
