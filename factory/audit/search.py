"""Searching erase outcomes: signed certificates (successes) and failed erase rounds.

Stored certificates are successes by construction (imaging refuses to build one for anything
else). Failures are read from the evidence, not from the bench line's operational job table: a
failed or unknown erase is the custody entry ``fail`` out of ``sanitising``, and its evidence
carries the reason. Failures have no medium, level, method or destination of their own, so a
query filtering on those returns certificates only.

Pagination is keyset, newest first, on ``(time, outcome rank, key)``: the cursor names the last
row returned, so pages stay stable while new rows arrive and cost the same at any depth.
Times are compared as the stored UTC text; bounds are whole seconds, ``from`` inclusive and
``to`` exclusive (a bare date as ``to`` means the end of that day).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlmodel import Session

from factory.audit.errors import AuditRequestInvalid
from factory.audit.search_cursor import decode_cursor, encode_cursor
from factory.audit.search_reader import AsyncSearchReader
from factory.kernel.context import AppContext
from factory.kernel.db.engine import read_scope
from factory.kernel.db.select_rows import select_rows
from factory.kernel.lifecycle.states import Event, State

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    ANY = "any"


# Position of each outcome in the newest-first order when two rows share a timestamp.
_RANK = {Outcome.SUCCESS: 0, Outcome.FAILED: 1}


@dataclass(frozen=True)
class CertificateQuery:
    device_serial: str | None = None
    media_serial: str | None = None
    asset_tag: str | None = None
    issued_from: datetime | None = None  # inclusive
    issued_to: datetime | None = None  # exclusive
    method: str | None = None
    level: str | None = None
    destination: str | None = None
    site: str | None = None  # certificates signed by one of the site's keys (site_key registry)
    wave: str | None = None  # outcomes of devices allocated to the wave
    outcome: Outcome = Outcome.SUCCESS
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    @classmethod
    def from_text(cls, *, issued_from: str | None, issued_to: str | None, **fields: Any) -> CertificateQuery:
        """A query from user-typed bounds (ISO dates or date-times), as the CLI and the API take them."""
        return cls(issued_from=parse_bound(issued_from), issued_to=parse_bound(issued_to, upper=True), **fields)

    @property
    def index_bounded(self) -> bool:
        """Certificates only, filtered by an indexed serial or asset tag: the rows read are one
        device's certificates, a few index probes however large the tables grow. Failures are not:
        they are found through the failure index, which is walked whatever the device."""
        # Plain comparisons, not any() over a tuple: this runs on every API search.
        pinned = self.device_serial is not None or self.media_serial is not None or self.asset_tag is not None
        return pinned and self.outcome == Outcome.SUCCESS

    @property
    def certificate_only(self) -> bool:
        return not (self.method is None and self.level is None and self.destination is None and self.site is None)


@dataclass(frozen=True)
class ErasureOutcome:
    outcome: str
    at: str
    device_serial: str
    asset_tag: str | None
    medium_serial: str | None = None
    certificate_id: str | None = None
    level: str | None = None
    method: str | None = None
    destination: str | None = None
    digest_sha256: str | None = None
    erase_round_seq: int | None = None
    custody_seq: int | None = None  # failures: the ledger entry that records the failure
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def sort_key(self) -> tuple[str, int, str | int]:
        if self.outcome == Outcome.SUCCESS:
            return (self.at, _RANK[Outcome.SUCCESS], self.certificate_id or "")
        return (self.at, _RANK[Outcome.FAILED], self.custody_seq or 0)


@dataclass(frozen=True)
class SearchPage:
    items: list[ErasureOutcome]
    next_cursor: str | None


def parse_bound(text: str | None, *, upper: bool = False) -> datetime | None:
    """An ISO date or date-time (UTC when no offset is given); a bare upper date covers its day."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day + timedelta(days=1) if upper else day, time(), tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise AuditRequestInvalid(f"'{value}' is not an ISO 8601 date or date-time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def search_certificates(reader: Session | Connection, query: CertificateQuery) -> SearchPage:
    """One page of outcomes, newest first. ``reader``: a session or a plain (read-only) connection."""
    cursor = _checked_cursor(query)
    rows: list[ErasureOutcome] = []
    if query.outcome in (Outcome.SUCCESS, Outcome.ANY):
        rows += _certificates(reader, query, cursor)
    if query.outcome in (Outcome.FAILED, Outcome.ANY) and not query.certificate_only:
        rows += _failures(reader, query, cursor)
    return _page(rows, query.limit)


def _checked_cursor(query: CertificateQuery) -> tuple[str, int, str | int] | None:
    """The query's decoded cursor, once its bounds are checked.

    :raises AuditRequestInvalid: a limit out of range, an empty period or a foreign cursor.
    """
    if not 1 <= query.limit <= MAX_LIMIT:
        raise AuditRequestInvalid(f"limit must be between 1 and {MAX_LIMIT}")
    if query.issued_from and query.issued_to and query.issued_from >= query.issued_to:
        raise AuditRequestInvalid("'from' must be earlier than 'to'")
    return decode_cursor(query.cursor, _RANK.values()) if query.cursor else None


def _page(rows: list[ErasureOutcome], limit: int) -> SearchPage:
    rows.sort(key=lambda r: r.sort_key, reverse=True)
    page = rows[:limit]
    more = len(rows) > limit
    return SearchPage(items=page, next_cursor=encode_cursor(page[-1].sort_key) if more else None)


def search_json(ctx: AppContext, query: CertificateQuery) -> bytes:
    """One page of ``search_certificates`` as JSON bytes: the API's hot path.

    orjson writes the dataclasses field by field, in the order they are declared (the API's
    ``CertificatePage`` declares the same order): no per-item dicts, no re-validation.

    :raises AuditRequestInvalid: as ``search_certificates``.
    """
    with _read_connection(ctx) as conn:
        page = search_certificates(conn, query)
    return orjson.dumps(page)


async def search_json_async(reader: AsyncSearchReader, query: CertificateQuery) -> bytes:
    """``search_json`` for an index-bounded query (certificates only), awaiting PostgreSQL on the
    event loop instead of blocking it: the same SELECT, the same page, the same bytes.

    :raises AuditRequestInvalid: as ``search_certificates``.
    """
    if not query.index_bounded:
        raise ValueError("only an index-bounded search reads on the event loop")
    cursor = _checked_cursor(query)
    if _serial_only(query):
        found = await reader.batched(_BY_SERIALS_SQL, query.device_serial, query.limit + 1, key_column=2)  # type: ignore[arg-type]
    else:
        sql, params = _certificate_select(query, cursor)
        found = await reader.rows(sql, params)
    return _certificate_page_json(found, query.limit)


# ErasureOutcome's fields in declaration order: the keys orjson writes for one, and so the keys
# (in that order) of the dicts _certificate_page_json writes in its place.
_OUTCOME_FIELDS = tuple(f.name for f in fields(ErasureOutcome))
_SUCCESS = Outcome.SUCCESS.value


def _certificate_page_json(rows: list[tuple[Any, ...]], limit: int) -> bytes:
    """``orjson.dumps(_page(_certificate_outcomes(rows), limit))``, the same bytes, without a
    frozen dataclass per row: building one (13 guarded attribute sets) cost more than encoding it,
    on the API's hottest read. Certificates only (an index-bounded search finds nothing else), so
    their order is ``_page``'s: (issued_at, id), newest first."""
    rows = sorted(rows, key=lambda r: (r[1], r[0]), reverse=True)
    page = rows[:limit]
    # The values in field order, as _certificate_outcomes names them; custody_seq and reason are None.
    values = ((_SUCCESS, r[1], r[2], r[3], r[4], r[0], r[5], r[6], r[7], r[8], r[9], None, None) for r in page)
    items = [dict(zip(_OUTCOME_FIELDS, v, strict=True)) for v in values]
    last = page[-1] if len(rows) > limit else None
    next_cursor = encode_cursor((last[1], _RANK[Outcome.SUCCESS], last[0])) if last is not None else None
    return orjson.dumps({"items": items, "next_cursor": next_cursor})


def _serial_only(query: CertificateQuery) -> bool:
    """The audit API's hottest search: one device's first page, by serial alone. Such searches
    arriving together share one SELECT (``_BY_SERIALS_SQL``). A NUL goes the single way, to be
    refused on its own rather than fail the requests batched with it."""
    serial = query.device_serial
    return (
        serial is not None
        and "\x00" not in serial
        and query.media_serial is None
        and query.asset_tag is None
        and query.issued_from is None
        and query.issued_to is None
        and query.wave is None
        and query.cursor is None
        and not query.certificate_only
        and query.outcome == Outcome.SUCCESS
    )


@contextmanager
def _read_connection(ctx: AppContext) -> Iterator[Connection]:
    """A plain connection for a search's one or two SELECTs: no ORM session; on PostgreSQL
    autocommit, so the hot path pays no BEGIN/ROLLBACK round trips; on SQLite a read-only unit
    (a WAL snapshot), which never waits for the write lock, since it may run on the event loop."""
    if ctx.settings.is_sqlite:
        with read_scope(ctx.engine) as conn:
            yield conn
        return
    with ctx.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


def _bound_text(moment: datetime, *, round_up: bool) -> str:
    """Whole-second prefix of the stored UTC text; comparing against it is exact at that grain."""
    moment = moment.astimezone(UTC)
    if round_up and moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


# The SQL is assembled from these fixed fragments (values are always bound parameters): search by
# serial is the audit API's hot path, and plain text skips building and compiling an expression
# tree per request (``select_rows`` hands it to the driver as it is). Every filter has an index:
# device_serial, medium_serial, asset_tag, and (issued_at, id) for the keyset order; failures use
# the partial index on event = 'fail'.
_WAVE_DEVICES = "SELECT a.device_id FROM allocation a JOIN wave w ON w.id = a.wave_id WHERE w.name = :wave"
_CERT_SQL = (
    "SELECT id, issued_at, device_serial, asset_tag, medium_serial, level, method, destination, "
    "digest_sha256, erase_round_seq FROM certificate"
)
_CERT_FILTERS = (
    ("device_serial", "device_serial = :device_serial"),
    ("media_serial", "medium_serial = :media_serial"),
    ("asset_tag", "asset_tag = :asset_tag"),
    ("method", "method = :method"),
    ("level", "level = :level"),
    ("destination", "destination = :destination"),
    ("site", "key_fingerprint IN (SELECT k.fingerprint FROM site_key k WHERE k.site = :site)"),
    ("wave", f"device_id IN ({_WAVE_DEVICES})"),
)
# Several devices' first pages in one statement: each serial's newest certificates, as
# ``_CERT_SQL`` filtered by device_serial would give them (one index probe per serial).
_BY_SERIALS_SQL = (
    "SELECT c.* FROM unnest(CAST(:keys AS text[])) AS s(serial) CROSS JOIN LATERAL ("
    f"{_CERT_SQL} WHERE device_serial = s.serial ORDER BY issued_at DESC, id DESC LIMIT :limit) AS c"
)
_FAIL_SQL = (
    "SELECT e.seq, e.occurred_at, e.device_serial, e.evidence, d.asset_tag "
    "FROM custody_entry e JOIN device d ON d.id = e.device_id"
)
_FAIL_FILTERS = (
    ("device_serial", "e.device_serial = :device_serial"),
    ("asset_tag", "d.asset_tag = :asset_tag"),
    ("media_serial", "e.device_id IN (SELECT m.device_id FROM storage_medium m WHERE m.serial = :media_serial)"),
    ("wave", f"e.device_id IN ({_WAVE_DEVICES})"),
)
# Literal, not bound, so the planner can match the partial index's predicate.
_FAIL_FIXED = f"e.event = '{Event.FAIL.value}' AND e.from_state = '{State.SANITISING.value}'"

Reader = Session | Connection


def _where(
    query: CertificateQuery,
    filters: tuple[tuple[str, str], ...],
    at_col: str,
    key_col: str,
    rank: int,
    cursor: tuple[str, int, str | int] | None,
) -> tuple[list[str], dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": query.limit + 1}
    for name, clause in filters:
        value = getattr(query, name)
        if value is not None:
            clauses.append(clause)
            params[name] = value
    if query.issued_from is not None:
        clauses.append(f"{at_col} >= :t_from")
        params["t_from"] = _bound_text(query.issued_from, round_up=True)
    if query.issued_to is not None:
        clauses.append(f"{at_col} < :t_to")
        params["t_to"] = _bound_text(query.issued_to, round_up=True)
    if cursor is not None:
        # Rows strictly after the cursor in (time, rank, key) descending order.
        at, cursor_rank, key = cursor
        params["c_at"] = at
        if rank < cursor_rank:
            clauses.append(f"{at_col} <= :c_at")
        elif rank > cursor_rank:
            clauses.append(f"{at_col} < :c_at")
        else:
            clauses.append(f"({at_col} < :c_at OR ({at_col} = :c_at AND {key_col} < :c_key))")
            params["c_key"] = key
    return clauses, params


def _certificates(
    reader: Reader, query: CertificateQuery, cursor: tuple[str, int, str | int] | None
) -> list[ErasureOutcome]:
    sql, params = _certificate_select(query, cursor)
    return _certificate_outcomes(select_rows(reader, sql, params))


def _certificate_select(
    query: CertificateQuery, cursor: tuple[str, int, str | int] | None
) -> tuple[str, dict[str, Any]]:
    rank = _RANK[Outcome.SUCCESS]
    if cursor is not None and cursor[1] == rank and not isinstance(cursor[2], str):
        raise AuditRequestInvalid("cursor is not valid for this search")
    clauses, params = _where(query, _CERT_FILTERS, "issued_at", "id", rank, cursor)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"{_CERT_SQL}{where} ORDER BY issued_at DESC, id DESC LIMIT :limit", params


def _certificate_outcomes(rows: list[tuple[Any, ...]]) -> list[ErasureOutcome]:
    return [
        ErasureOutcome(
            outcome=Outcome.SUCCESS.value,
            at=r[1],
            device_serial=r[2],
            asset_tag=r[3],
            medium_serial=r[4],
            certificate_id=r[0],
            level=r[5],
            method=r[6],
            destination=r[7],
            digest_sha256=r[8],
            erase_round_seq=r[9],
        )
        for r in rows
    ]


def _failures(
    reader: Reader, query: CertificateQuery, cursor: tuple[str, int, str | int] | None
) -> list[ErasureOutcome]:
    rank = _RANK[Outcome.FAILED]
    if cursor is not None and cursor[1] == rank and not isinstance(cursor[2], int):
        raise AuditRequestInvalid("cursor is not valid for this search")
    clauses, params = _where(query, _FAIL_FILTERS, "e.occurred_at", "e.seq", rank, cursor)
    where = " AND ".join([_FAIL_FIXED, *clauses])
    sql = f"{_FAIL_SQL} WHERE {where} ORDER BY e.occurred_at DESC, e.seq DESC LIMIT :limit"
    out = []
    for seq, occurred_at, device_serial, evidence_text, asset_tag in select_rows(reader, sql, params):
        evidence = orjson.loads(evidence_text)
        reason = evidence.get("reason") if isinstance(evidence, dict) else None
        out.append(
            ErasureOutcome(
                outcome=Outcome.FAILED.value,
                at=occurred_at,
                device_serial=device_serial,
                asset_tag=asset_tag,
                custody_seq=seq,
                reason=str(reason) if reason is not None else None,
            )
        )
    return out
