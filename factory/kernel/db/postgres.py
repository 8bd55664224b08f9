"""PostgreSQL engines whose pooled connections are checked for life without a round trip.

SQLAlchemy's ``pool_pre_ping`` sends a query on every checkout: on a small indexed read (the
audit API's search by serial) that round trip costs as much as the query itself. A server that
closes a connection (restart, ``pg_terminate_backend``, idle timeout) first sends it an error
and then end-of-file, so an idle pooled connection whose socket has become readable is dead:
checkout discards it and SQLAlchemy opens another, at the cost of one ``poll()`` with a zero
timeout. Connections are also recycled hourly, which covers middleboxes that drop idle
connections silently. A connection lost mid-query still fails that query, as it would with
pre-ping, and SQLAlchemy then invalidates the rest of the pool.
"""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError

POOL_RECYCLE_SECONDS = 3600


def postgres_engine(url: str, **kwargs: Any) -> Engine:
    engine = create_engine(url, pool_recycle=POOL_RECYCLE_SECONDS, **kwargs)
    event.listen(engine, "checkout", _refuse_dead_connection)
    return engine


def _refuse_dead_connection(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    if dbapi_conn.closed or dbapi_conn.broken:
        raise DisconnectionError("pooled connection is closed")
    # Nothing is owed to an idle connection: anything to read is the server's goodbye.
    # (poll, not select: select() refuses descriptors above 1023, which a busy process reaches.)
    poller = select.poll()
    poller.register(dbapi_conn.pgconn.socket, select.POLLIN)
    if poller.poll(0):
        raise DisconnectionError("the server closed the pooled connection while it was idle")
