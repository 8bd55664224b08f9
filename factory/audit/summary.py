"""The auditor's summary of a refresh wave or a date range: certificates counted by method and
level, the exceptions, and every certificate with its digest; rendered as a PDF by ``summary_pdf``.

Everything is read from the evidence tables as they are: certificates by their indexed columns
(which ``check_certificate`` holds equal to the signed documents), failures from the custody
ledger (the ``fail`` entries out of ``sanitising``), exceptions from ``exceptions``: departures
without a verified certificate, failed erases not yet followed by a re-erase, and consignments
overdue or missing a scan, as they stand when the summary is made (a wave's: those of its devices
and its consignments' devices).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlmodel import Session, col, select

from factory.audit.certificate_check import SiteKeyList
from factory.audit.errors import AuditRequestInvalid
from factory.audit.exceptions import Violation, certificates_by_wave, uncertified_departures
from factory.audit.open_failures import OpenFailure, failures_without_reerase
from factory.audit.search import CertificateQuery, Outcome, _bound_text, search_certificates
from factory.custody.views import ConsignmentException, consignment_items, get_consignment
from factory.custody.views import exception_report as consignment_exceptions
from factory.kernel import clock
from factory.kernel.clock import format_utc
from factory.kernel.models.certificate import Certificate


@dataclass(frozen=True)
class SummaryCertificate:
    certificate_id: str
    device_serial: str
    medium_serial: str
    issued_at: str
    method: str
    level: str
    digest_sha256: str


@dataclass(frozen=True)
class Summary:
    scope: str  # what the summary covers, in words: "wave W-1" or "2026-01-01 to 2026-02-01"
    generated_at: str
    certificates: list[SummaryCertificate]
    failures: int  # failed or unknown erase outcomes in the range (a date range only)
    exceptions: list[str] = field(default_factory=list)  # one line each

    @property
    def by_method_and_level(self) -> list[tuple[str, str, int]]:
        counts = Counter((c.method, c.level) for c in self.certificates)
        return [(method, level, n) for (method, level), n in sorted(counts.items())]

    @property
    def by_level(self) -> dict[str, int]:
        return dict(sorted(Counter(c.level for c in self.certificates).items()))


def _rows(
    session: Session, ids: list[str] | None, issued_from: datetime | None, issued_to: datetime | None
) -> list[SummaryCertificate]:
    stmt = select(Certificate).order_by(col(Certificate.issued_at), col(Certificate.id))
    if ids is not None:
        stmt = stmt.where(col(Certificate.id).in_(ids or [""]))
    if issued_from is not None:  # the stored text compared at whole seconds, as search does
        stmt = stmt.where(Certificate.issued_at >= _bound_text(issued_from, round_up=True))
    if issued_to is not None:
        stmt = stmt.where(Certificate.issued_at < _bound_text(issued_to, round_up=True))
    return [
        SummaryCertificate(c.id, c.device_serial, c.medium_serial, c.issued_at, c.method, c.level, c.digest_sha256)
        for c in session.exec(stmt).all()
    ]


def _failures(session: Session, issued_from: datetime | None, issued_to: datetime | None) -> int:
    query = CertificateQuery(issued_from=issued_from, issued_to=issued_to, outcome=Outcome.FAILED, limit=500)
    total = 0
    while True:
        page = search_certificates(session, query)
        total += len(page.items)
        if page.next_cursor is None:
            return total
        query = replace(query, cursor=page.next_cursor)


def summarise(
    session: Session,
    keys: SiteKeyList,
    *,
    wave: str | None = None,
    issued_from: datetime | None = None,
    issued_to: datetime | None = None,
) -> Summary:
    """The summary of one wave (its devices' current certificates) or of a date range.

    :raises AuditRequestInvalid: neither or both given, or an unknown wave.
    """
    if (wave is None) == (issued_from is None and issued_to is None):
        raise AuditRequestInvalid("a summary covers a wave or a date range (from and/or to), not both or neither")
    now = format_utc(clock.now())
    open_now = _OpenExceptions.read(session, keys)
    if wave is not None:
        [found] = certificates_by_wave(session, wave) or [None]
        if found is None:
            raise AuditRequestInvalid(f"no wave '{wave[:64]}' with allocated devices")
        ids = [cid for d in found.devices for cid in d.certificate_ids]
        uncovered = [
            f"no certificate from the latest erase: {d.device_serial} ({d.state})"
            for d in found.devices
            if d.held_user_data and not d.certificate_ids
        ]
        serials = {d.device_serial for d in found.devices}
        return Summary(f"wave {wave}", now, _rows(session, ids, None, None), 0, uncovered + open_now.lines(serials))
    scope = f"{_day(issued_from) if issued_from else 'the start'} to {_day(issued_to) if issued_to else 'now'}"
    rows = _rows(session, None, issued_from, issued_to)
    return Summary(scope, now, rows, _failures(session, issued_from, issued_to), open_now.lines(None))


@dataclass(frozen=True)
class _OpenExceptions:
    """The exception report's open items, as lines for the summary."""

    departures: list[Violation]
    failures: list[OpenFailure]
    consignments: list[ConsignmentException]
    carried: dict[str, set[str]]  # consignment reference -> the serials it carries

    @classmethod
    def read(cls, session: Session, keys: SiteKeyList) -> _OpenExceptions:
        consignments = consignment_exceptions(session)
        carried = {
            ref: {device.serial for _item, device in consignment_items(session, get_consignment(session, ref))}
            for ref in {c.reference for c in consignments}
        }
        return cls(uncertified_departures(session, keys), failures_without_reerase(session), consignments, carried)

    def lines(self, serials: set[str] | None) -> list[str]:
        """Every open item, or (a wave's summary) those naming one of ``serials``; a consignment
        problem naming no device counts for a wave when one of its devices is the wave's."""

        def ours(serial: str | None) -> bool:
            return serials is None or serial in serials

        return [
            *(_departure(v) for v in self.departures if ours(v.device_serial)),
            *(_open_failure(f) for f in self.failures if ours(f.device_serial)),
            *(
                f"consignment {c.reference} {c.problem.replace('_', ' ')}: {c.detail}"
                for c in self.consignments
                if ours(c.device_serial) or (c.device_serial is None and self.carried[c.reference] & (serials or set()))
            ),
        ]


def _day(moment: datetime) -> str:
    return format_utc(moment)[:16].replace("T", " ") + " UTC"


def _open_failure(f: OpenFailure) -> str:
    return f"failed erase without a re-erase: {f.device_serial} at {f.failed_at}: {f.reason or 'no reason recorded'}"


def _departure(v: Violation) -> str:
    return f"uncertified departure: {v.device_serial} '{v.event}' at {v.occurred_at}: {'; '.join(v.problems)}"
