"""Job-log lines, batched by the code that writes them.

A unit of work (one transaction of the controller, a job runner, a technician's action, the
provisioner's log sink) gathers its lines in a :class:`JobLogBuffer` and inserts them together,
in order, in one statement (not one INSERT ... RETURNING per line), inside its own transaction:
so a rollback drops them with everything else, and nothing else in the process pays for them
(no listeners on the ``Session`` class). The job rows exist already: their ids are known.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, insert
from sqlmodel import Session

from factory.kernel.clock import utc_now
from factory.kernel.db.engine import session_scope
from factory.line.models import JobLog

_LOG = JobLog.__table__  # type: ignore[attr-defined]


class JobLogBuffer:
    """Lines for one transaction, inserted by :meth:`flush` (in the order they were added)."""

    def __init__(self) -> None:
        self._rows: list[dict[str, object]] = []

    def add(self, job_id: int, message: str, level: str = "info", at: str | None = None) -> None:
        self._rows.append({"job_id": job_id, "at": at or utc_now(), "level": level, "message": message})

    def take(self) -> list[dict[str, object]]:
        """The buffered rows, for the caller to write (with a custody entry); the buffer is emptied."""
        rows, self._rows = self._rows, []
        return rows

    def extend(self, rows: list[dict[str, object]]) -> None:
        """Take over rows another buffer gave up (``take``), after this buffer's own."""
        self._rows.extend(rows)

    def flush(self, session: Session) -> None:
        """Insert what is buffered in ``session``'s transaction, in one statement."""
        rows = self.take()
        if rows:
            session.connection().execute(insert(_LOG), rows)

    def __len__(self) -> int:
        return len(self._rows)


@contextmanager
def job_log_batch(session: Session, logs: JobLogBuffer | None = None) -> Iterator[JobLogBuffer]:
    """The caller's buffer if it passed one (it flushes it), else one of our own, flushed when
    the block ends without an error; an error drops its lines, as the rollback drops the rest."""
    if logs is not None:
        yield logs
        return
    own = JobLogBuffer()
    yield own
    own.flush(session)


@contextmanager
def logged_scope(engine: Engine) -> Iterator[tuple[Session, JobLogBuffer]]:
    """One transaction (``session_scope``) with a job-log buffer, flushed just before the commit."""
    with session_scope(engine) as session:
        logs = JobLogBuffer()
        yield session, logs
        logs.flush(session)
