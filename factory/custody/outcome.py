"""The one return shape of the custody steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlmodel import Session

from factory.custody.models import AcceptanceRecord, EvidenceDocument
from factory.kernel.models.custody_entry import CustodyEntry

R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """What a custody step leaves behind: the record it wrote or moved, and the ledger entries.

    ``record`` is the row the step is about (the allocation issued, the consignment handed over,
    the disposal batch collected, ...); ``entries`` are the custody entries it appended, in order
    (empty for steps that change no device, such as opening a batch).
    """

    record: R
    entries: list[CustodyEntry] = field(default_factory=list)
    acceptance: AcceptanceRecord | None = None  # the officer's acceptance (issue, swap)
    document: EvidenceDocument | None = None  # the paper the step produced (transfer note)
    handed_over: str | None = None  # serial of the device that reached its officer (issue, swap)


def stored(session: Session, record: R) -> R:
    """Add a new record to the session and flush, so its id is assigned and constraints are checked
    now (a duplicate is refused inside the step that made it); the record itself back."""
    session.add(record)
    session.flush()
    return record


def saved(session: Session, record: R, entries: list[CustodyEntry] | None = None, **extra: Any) -> Outcome[R]:
    """The step's record stored (``stored``) and its ledger entries: the step's outcome."""
    return Outcome(stored(session, record), entries or [], **extra)
