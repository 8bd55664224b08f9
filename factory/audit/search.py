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

import base64
import binascii
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, or_, select
from sqlmodel import Session

from factory.errors import InvalidInput
from factory.lifecycle.states import Event, State
from factory.models.certificate import Certificate
from factory.models.custody import CustodyEntry
from factory.models.device import Device, StorageMedium

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
    outcome: Outcome = Outcome.SUCCESS
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    @property
    def certificate_only(self) -> bool:
        return any(v is not None for v in (self.method, self.level, self.destination))


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
        raise InvalidInput(f"'{value}' is not an ISO 8601 date or date-time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def search_certificates(session: Session, query: CertificateQuery) -> SearchPage:
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    if query.issued_from and query.issued_to and query.issued_from >= query.issued_to:
        raise InvalidInput("'from' must be earlier than 'to'")
    cursor = _decode_cursor(query.cursor) if query.cursor else None
    rows: list[ErasureOutcome] = []
    if query.outcome in (Outcome.SUCCESS, Outcome.ANY):
        rows += _certificates(session, query, cursor)
    if query.outcome in (Outcome.FAILED, Outcome.ANY) and not query.certificate_only:
        rows += _failures(session, query, cursor)
    rows.sort(key=lambda r: r.sort_key, reverse=True)
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return SearchPage(items=page, next_cursor=_encode_cursor(page[-1].sort_key) if more else None)


def _bound_text(moment: datetime, *, round_up: bool) -> str:
    """Whole-second prefix of the stored UTC text; comparing against it is exact at that grain."""
    moment = moment.astimezone(UTC)
    if round_up and moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _time_filters(column: Any, query: CertificateQuery) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if query.issued_from is not None:
        out.append(column >= _bound_text(query.issued_from, round_up=True))
    if query.issued_to is not None:
        out.append(column < _bound_text(query.issued_to, round_up=True))
    return out


def _after_cursor(
    at_col: Any, key_col: Any, rank: int, cursor: tuple[str, int, str | int] | None
) -> list[ColumnElement[bool]]:
    """Rows strictly after the cursor in (time, rank, key) descending order."""
    if cursor is None:
        return []
    at, cursor_rank, key = cursor
    if rank < cursor_rank:
        return [at_col <= at]
    if rank > cursor_rank:
        return [at_col < at]
    return [or_(at_col < at, and_(at_col == at, key_col < key))]


_CERT_COLUMNS = (
    Certificate.id,
    Certificate.issued_at,
    Certificate.device_serial,
    Certificate.asset_tag,
    Certificate.medium_serial,
    Certificate.level,
    Certificate.method,
    Certificate.destination,
    Certificate.digest_sha256,
    Certificate.erase_round_seq,
)


def _certificates(
    session: Session, query: CertificateQuery, cursor: tuple[str, int, str | int] | None
) -> list[ErasureOutcome]:
    c = Certificate
    conditions: list[ColumnElement[bool]] = []
    for column, value in (
        (c.device_serial, query.device_serial),
        (c.medium_serial, query.media_serial),
        (c.asset_tag, query.asset_tag),
        (c.method, query.method),
        (c.level, query.level),
        (c.destination, query.destination),
    ):
        if value is not None:
            conditions.append(column == value)
    conditions += _time_filters(c.issued_at, query)
    if cursor is not None and cursor[1] == _RANK[Outcome.SUCCESS] and not isinstance(cursor[2], str):
        raise InvalidInput("cursor is not valid for this search")
    conditions += _after_cursor(c.issued_at, c.id, _RANK[Outcome.SUCCESS], cursor)
    stmt = (
        select(*_CERT_COLUMNS)
        .where(*conditions)
        .order_by(c.issued_at.desc(), c.id.desc())  # type: ignore[attr-defined]
        .limit(query.limit + 1)
    )
    return [
        ErasureOutcome(
            outcome=Outcome.SUCCESS.value,
            at=r.issued_at,
            device_serial=r.device_serial,
            asset_tag=r.asset_tag,
            medium_serial=r.medium_serial,
            certificate_id=r.id,
            level=r.level,
            method=r.method,
            destination=r.destination,
            digest_sha256=r.digest_sha256,
            erase_round_seq=r.erase_round_seq,
        )
        for r in session.execute(stmt)
    ]


def _failures(
    session: Session, query: CertificateQuery, cursor: tuple[str, int, str | int] | None
) -> list[ErasureOutcome]:
    e = CustodyEntry
    conditions: list[ColumnElement[bool]] = [e.event == Event.FAIL.value, e.from_state == State.SANITISING.value]
    if query.device_serial is not None:
        conditions.append(e.device_serial == query.device_serial)
    if query.asset_tag is not None:
        conditions.append(e.device_id.in_(select(Device.id).where(Device.asset_tag == query.asset_tag)))  # type: ignore[attr-defined, arg-type]
    if query.media_serial is not None:
        holders = select(StorageMedium.device_id).where(StorageMedium.serial == query.media_serial)
        conditions.append(e.device_id.in_(holders))  # type: ignore[attr-defined]
    conditions += _time_filters(e.occurred_at, query)
    if cursor is not None and cursor[1] == _RANK[Outcome.FAILED] and not isinstance(cursor[2], int):
        raise InvalidInput("cursor is not valid for this search")
    conditions += _after_cursor(e.occurred_at, e.seq, _RANK[Outcome.FAILED], cursor)
    stmt = (
        select(e.seq, e.occurred_at, e.device_serial, e.evidence, e.prev_hash, Device.asset_tag)
        .join(Device, Device.id == e.device_id)  # type: ignore[arg-type]
        .where(*conditions)
        .order_by(e.occurred_at.desc(), e.seq.desc())  # type: ignore[attr-defined]
        .limit(query.limit + 1)
    )
    out = []
    for r in session.execute(stmt):
        evidence = orjson.loads(r.evidence)
        reason = evidence.get("reason") if isinstance(evidence, dict) else None
        out.append(
            ErasureOutcome(
                outcome=Outcome.FAILED.value,
                at=r.occurred_at,
                device_serial=r.device_serial,
                asset_tag=r.asset_tag,
                custody_seq=r.seq,
                reason=str(reason) if reason is not None else None,
            )
        )
    return out


def _encode_cursor(key: tuple[str, int, str | int]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode("ascii").rstrip("=")


def _decode_cursor(text: str) -> tuple[str, int, str | int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        at, rank, key = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidInput("cursor is not valid (it must come from a previous page)") from exc
    if not isinstance(at, str) or rank not in _RANK.values() or not isinstance(key, str | int):
        raise InvalidInput("cursor is not valid (it must come from a previous page)")
    return at, rank, key
