"""A step's closing writes held over to commit with the next step's start.

A step ends in a transaction (its row, its custody entry, for the erase step the certificates)
and the next step starts in another (its marks, its custody entry). Written together they are one
transaction fewer per step boundary, one set of round trips and one wait for the ledger's lock.
The runner (``job_runner.JobRunner``) keeps the rules that make that safe:

* only the next step's first transaction takes a held-over end, after its ownership check;
* anything else the runner does next (hold the job, fail it, stop it) first commits the held-over
  end in a transaction of its own, as if it had never been held;
* if the held-over end itself fails, it is dropped and the job fails with its reason, exactly as
  when it ran alone; if it was written but the rest of that transaction failed (the next step's
  start refused), it is handed back, so it is committed on its own before the job fails: a
  device erased and verified keeps its certificates. Not when the commit itself failed: its
  outcome is unknown (a database failover), and a certificate must not be signed twice; the job
  fails as it did when the end's own commit failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from factory.line.models import Job

EndWrites = Callable[[Session, Job], None]


@dataclass(frozen=True)
class HeldEnd:
    """The end of the step at ``index`` in the plan, to be written by ``write``."""

    index: int
    write: EndWrites


class CarriedEnd:
    """At most one held-over step end (the runner is one thread, its steps one after another)."""

    def __init__(self) -> None:
        self._held: HeldEnd | None = None

    @property
    def pending(self) -> bool:
        return self._held is not None

    def hold(self, index: int, write: EndWrites) -> None:
        if self._held is not None:
            raise RuntimeError(f"step {self._held.index}'s end is still held over")
        self._held = HeldEnd(index, write)

    def take(self) -> HeldEnd | None:
        held, self._held = self._held, None
        return held

    def give_back(self, held: HeldEnd) -> None:
        """The transaction that wrote ``held`` did not commit: it is pending again."""
        self._held = held
