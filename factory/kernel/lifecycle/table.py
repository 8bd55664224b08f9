"""The one flat transition table: every allowed edge of the device lifecycle, in one place.

Read a row as: on EVENT, a device in FROM moves to TO, provided the row's guard holds.
``None`` as FROM means "not yet in custody" (the first entry of a device's history).

Guards (see guards.py):
- CERTIFIED: every storage medium on the device has a valid, verified certificate from the
  latest erase round, and that round started after the device last held user data.
- CERTS_IF_USED: CERTIFIED, unless the device has never held user data (new stock).
- NEW_STOCK: the device has never held user data.
- TWO_PEOPLE: a second, different user witnessed (destruction).
- PAIRED: only as one half of an exchange or swap, in the same transaction.

Devices already in the field: the first refresh wave exchanges officers' current devices, which
were never issued through this factory. ``enrol_in_field`` is their first entry: (none) -> ``issued``,
with the officer as custodian and the import's evidence (officer, file digest and line, who imported).
It taints the device at once (``user_data_since_seq``), so when it comes back it must be sanitised
and certified before any reuse, like any returned device. Only the bulk import records it
(``factory/custody/in_field.py``; tests/test_architecture.py checks). An in-field device imported
without its media has them recorded when it comes back (``record_media``: the disks a network boot
found, the device staying where it is), so the erase round covers every disk found.

Failed or unknown erase outcomes (sanitise_failed) have exactly two exits: start_sanitise again,
or destroy. Nothing reaches redistributed / awaiting_disposal / disposed except through sanitised.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from factory.kernel.lifecycle.states import Event as E
from factory.kernel.lifecycle.states import State as S


class Guard(StrEnum):
    NONE = "none"
    CERTIFIED = "certified"
    CERTS_IF_USED = "certs_if_used"
    NEW_STOCK = "new_stock"
    TWO_PEOPLE = "two_people"
    PAIRED = "paired"


class Edge(NamedTuple):
    event: E
    source: S | None
    target: S
    guard: Guard = Guard.NONE


# fmt: off
TRANSITIONS: tuple[Edge, ...] = (
    # booking in and triage
    Edge(E.RECEIVE,              None,                 S.RECEIVED),
    Edge(E.ENROL_IN_FIELD,       None,                 S.ISSUED),         # already with its officer (import)
    Edge(E.RECORD_MEDIA,         S.ISSUED,             S.ISSUED),         # recorded, the device stays
    Edge(E.RECORD_MEDIA,         S.RETURNED,           S.RETURNED),
    Edge(E.QUARANTINE,           S.RECEIVED,           S.QUARANTINED),
    Edge(E.TRIAGE,               S.QUARANTINED,        S.RECEIVED),
    # sanitisation (a sanitise_failed device may only be re-sanitised or destroyed)
    Edge(E.START_SANITISE,       S.RECEIVED,           S.SANITISING),
    Edge(E.START_SANITISE,       S.RETURNED,           S.SANITISING),
    Edge(E.START_SANITISE,       S.SANITISE_FAILED,    S.SANITISING),
    Edge(E.START_SANITISE,       S.PROVISION_FAILED,   S.SANITISING),
    Edge(E.START_SANITISE,       S.READY,              S.SANITISING),
    Edge(E.SANITISED,            S.SANITISING,         S.SANITISED,         Guard.CERTIFIED),
    Edge(E.FAIL,                 S.SANITISING,         S.SANITISE_FAILED),
    # provisioning
    Edge(E.START_PROVISION,      S.SANITISED,          S.PROVISIONING,      Guard.CERTIFIED),
    Edge(E.START_PROVISION,      S.RECEIVED,           S.PROVISIONING,      Guard.NEW_STOCK),
    Edge(E.START_PROVISION,      S.PROVISION_FAILED,   S.PROVISIONING,      Guard.CERTS_IF_USED),
    Edge(E.DEPLOY_IMAGE,         S.PROVISIONING,       S.PROVISIONING),   # recorded, the device stays
    Edge(E.PROVISIONED,          S.PROVISIONING,       S.READY),
    Edge(E.FAIL,                 S.PROVISIONING,       S.PROVISION_FAILED),
    # allocation and hand-off to people
    Edge(E.ALLOCATE,             S.READY,              S.ALLOCATED),
    Edge(E.RELEASE,              S.ALLOCATED,          S.READY),
    Edge(E.ISSUE,                S.ALLOCATED,          S.ISSUED,            Guard.CERTS_IF_USED),
    Edge(E.DISPATCH,             S.ALLOCATED,          S.IN_TRANSIT,        Guard.CERTS_IF_USED),
    Edge(E.DELIVER,              S.IN_TRANSIT,         S.ISSUED),
    Edge(E.UNDELIVERABLE,        S.IN_TRANSIT,         S.RETURNED),
    Edge(E.INSTALL,              S.ALLOCATED,          S.INSTALLED,         Guard.CERTS_IF_USED),
    Edge(E.RETURN,               S.ISSUED,             S.RETURNED),
    Edge(E.RETURN,               S.INSTALLED,          S.RETURNED),
    # walk-in swap: one ready spare out, the faulty device back, in one transaction
    Edge(E.SWAP,                 S.READY,              S.ISSUED,            Guard.CERTS_IF_USED),
    Edge(E.SWAP,                 S.ISSUED,             S.RETURNED,          Guard.PAIRED),
    # leaving the factory for good
    Edge(E.REDISTRIBUTE,         S.SANITISED,          S.REDISTRIBUTED,     Guard.CERTIFIED),
    Edge(E.ADD_TO_DISPOSAL,      S.SANITISED,          S.AWAITING_DISPOSAL, Guard.CERTIFIED),
    Edge(E.REMOVE_FROM_DISPOSAL, S.AWAITING_DISPOSAL,  S.SANITISED),
    Edge(E.COLLECT,              S.AWAITING_DISPOSAL,  S.WITH_RECYCLER,     Guard.CERTIFIED),
    Edge(E.DISPOSE,              S.WITH_RECYCLER,      S.DISPOSED,          Guard.CERTIFIED),
    Edge(E.DESTROY,              S.SANITISE_FAILED,    S.DESTROYED,         Guard.TWO_PEOPLE),
    Edge(E.DESTROY,              S.RETURNED,           S.DESTROYED,         Guard.TWO_PEOPLE),
    Edge(E.DESTROY,              S.QUARANTINED,        S.DESTROYED,         Guard.TWO_PEOPLE),
    Edge(E.DESTROY,              S.SANITISED,          S.DESTROYED,         Guard.TWO_PEOPLE),
    Edge(E.REPORT_LOST,          S.ISSUED,             S.LOST),
    Edge(E.REPORT_LOST,          S.IN_TRANSIT,         S.LOST),
    Edge(E.REPORT_LOST,          S.INSTALLED,          S.LOST),
)
# fmt: on

# Events after which the device may hold someone's data, so it must be erased before reuse.
TAINTING_EVENTS: frozenset[tuple[E, S]] = frozenset(
    {
        (E.RETURN, S.RETURNED),
        (E.UNDELIVERABLE, S.RETURNED),
        (E.SWAP, S.RETURNED),
        (E.ENROL_IN_FIELD, S.ISSUED),  # recorded as already in use by its officer
    }
)

_INDEX: dict[tuple[E, S | None], Edge] = {(e.event, e.source): e for e in TRANSITIONS}
assert len(_INDEX) == len(TRANSITIONS), "duplicate (event, source) pair in TRANSITIONS"


def find_edge(event: E, source: S | None) -> Edge | None:
    return _INDEX.get((event, source))
