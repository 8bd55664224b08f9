"""Exception reports, re-derived from the evidence rather than from state columns.

``uncertified_departures`` must always be empty. It replays each device's custody entries and,
at every departure for reuse, redistribution or recycling, re-checks what the lifecycle guard
(``factory/kernel/lifecycle/guards.py``) enforced at the time: every medium recorded on the device has a
certificate from the erase round opened before that departure (and after the device last held
someone's data), the certificate verifies against the site key, names the device and medium,
extends the custody entry that opened that round, and was issued before the device left. The
guard is what keeps the list empty; this report is the independent proof that it did, and it
catches anything written around ``change_state`` (direct SQL, a restored backup, a bug).

The auditor's report also carries the courier consignments overdue (handed over, not delivered
within ``overdue_days``) or with a device missing a hand-over or delivery scan, as the custody
area's own consignment report finds them (``factory.custody.views``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, or_, select
from sqlmodel import Session

from factory.audit.certificate_check import CertificateCheck, SiteKeyList, check_certificate
from factory.audit.errors import AuditRequestInvalid
from factory.custody.models import Allocation, AllocationStatus, Wave
from factory.custody.views import DEFAULT_OVERDUE_DAYS, ConsignmentException
from factory.custody.views import exception_report as consignment_exceptions
from factory.kernel import clock
from factory.kernel.clock import format_utc
from factory.kernel.ledger.certificates import CertificateRowProblem, check_certificate_rows
from factory.kernel.lifecycle.states import OUT_OF_FACTORY, Event, State
from factory.kernel.lifecycle.table import TAINTING_EVENTS, TRANSITIONS, Guard
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device, StorageMedium

# Which departures need certificates, read from the transition table itself so the report
# follows the table: every certified edge except the in-factory ones (closing an erase round,
# starting to provision) always needs them; a "certified if used" edge needs them once the
# device has held someone's data.
_IN_FACTORY_WORK: frozenset[State] = frozenset({State.SANITISED, State.PROVISIONING})
ALWAYS_CERTIFIED: frozenset[tuple[str, str]] = frozenset(
    (e.event.value, e.target.value)
    for e in TRANSITIONS
    if e.guard is Guard.CERTIFIED and e.target not in _IN_FACTORY_WORK
)
CERTIFIED_IF_USED: frozenset[tuple[str, str]] = frozenset(
    (e.event.value, e.target.value)
    for e in TRANSITIONS
    if e.guard is Guard.CERTS_IF_USED and e.target not in _IN_FACTORY_WORK
)
# After these the device may hold someone's data.
TAINTING: frozenset[tuple[str, str]] = frozenset((e.value, s.value) for e, s in TAINTING_EVENTS)
_DEPARTURE_EVENTS = sorted({e for e, _ in ALWAYS_CERTIFIED | CERTIFIED_IF_USED})
_REPLAYED_EVENTS = sorted(
    {*_DEPARTURE_EVENTS, *(e for e, _ in TAINTING), Event.RECEIVE.value, Event.START_SANITISE.value}
)

# Out of the factory's custody: with a person, courier, vehicle or recycler; lost ones stay listed.
OUT_OF_FACTORY_STATES: tuple[str, ...] = tuple(sorted(s.value for s in OUT_OF_FACTORY))
OUT_OF_CUSTODY: tuple[str, ...] = (*OUT_OF_FACTORY_STATES, State.LOST.value)
DEFAULT_LIMIT = 1000


@dataclass(frozen=True)
class _Row:
    """One line of a report: plain data, field for field."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Violation(_Row):
    device_serial: str
    seq: int
    event: str
    to_state: str
    occurred_at: str
    problems: list[str]


@dataclass(frozen=True)
class OutOfCustody(_Row):
    device_serial: str
    asset_tag: str | None
    state: str
    custodian: str
    location: str
    left_seq: int
    left_event: str
    left_at: str
    days_out: int


@dataclass(frozen=True)
class WaveDevice(_Row):
    device_serial: str
    state: str | None
    allocation_status: str
    held_user_data: bool
    certificate_ids: list[str]  # from the device's latest erase round


@dataclass(frozen=True)
class WaveCertificates:
    wave: str
    cohort: str
    devices: list[WaveDevice] = field(default_factory=list)

    @property
    def certificates(self) -> int:
        return sum(len(d.certificate_ids) for d in self.devices)

    def as_dict(self) -> dict[str, Any]:
        return {
            "wave": self.wave,
            "cohort": self.cohort,
            "device_count": len(self.devices),
            "certificate_count": self.certificates,
            "devices": [d.as_dict() for d in self.devices],
        }


@dataclass(frozen=True)
class ExceptionReport:
    generated_at: str
    days: int
    out_of_custody_total: int
    out_of_custody: list[OutOfCustody]
    uncertified_departures: list[Violation]
    certificates_by_wave: list[WaveCertificates]
    # certificate rows deleted, swapped or added against the sanitised entries that name them
    certificate_rows: list[CertificateRowProblem] = field(default_factory=list)
    overdue_days: int = DEFAULT_OVERDUE_DAYS
    consignments: list[ConsignmentException] = field(default_factory=list)  # overdue, or a scan missing

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "days": self.days,
            "out_of_custody_total": self.out_of_custody_total,
            "out_of_custody": [o.as_dict() for o in self.out_of_custody],
            "uncertified_departures": [v.as_dict() for v in self.uncertified_departures],
            "certificates_by_wave": [w.as_dict() for w in self.certificates_by_wave],
            "certificate_rows": [c.as_dict() for c in self.certificate_rows],
            "overdue_days": self.overdue_days,
            "consignments": [asdict(c) for c in self.consignments],
        }


def exception_report(
    session: Session,
    keys: SiteKeyList,
    *,
    days: int,
    overdue_days: int = DEFAULT_OVERDUE_DAYS,
    now: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> ExceptionReport:
    """Every exception report at ``now``: out of custody for ``days``+ days, uncertified departures,
    certificates by wave, certificate rows the ledger disagrees with, and consignments not
    delivered within ``overdue_days`` of hand-over or with a missing scan.

    :raises AuditRequestInvalid: negative days or overdue days, or a limit below 1.
    """
    if overdue_days < 0:
        raise AuditRequestInvalid("overdue days must be zero or more")
    now = now or clock.now()
    total, out = out_of_custody(session, days=days, now=now, limit=limit)
    return ExceptionReport(
        generated_at=format_utc(now),
        days=days,
        out_of_custody_total=total,
        out_of_custody=out,
        uncertified_departures=uncertified_departures(session, keys),
        certificates_by_wave=certificates_by_wave(session),
        certificate_rows=check_certificate_rows(session),
        overdue_days=overdue_days,
        consignments=consignment_exceptions(session, overdue_days=overdue_days, now=now),
    )


# ------------------------------------------------------------------ out of custody


def out_of_custody(
    session: Session, *, days: int, now: datetime | None = None, limit: int = DEFAULT_LIMIT
) -> tuple[int, list[OutOfCustody]]:
    """Devices outside the factory's custody (with a person, courier, vehicle, or lost) for at
    least ``days`` days since they left it; longest out first. Returns (total, first ``limit``)."""
    if days < 0:
        raise AuditRequestInvalid("days must be zero or more")
    if limit < 1:
        raise AuditRequestInvalid("limit must be at least 1")
    now = now or clock.now()
    cutoff = format_utc(now - timedelta(days=days))
    x = CustodyEntry
    # The entry that took the device out of the factory: into an out-of-factory state from one
    # that is not (issued -> lost and in_transit -> issued keep it out, they do not "leave").
    left_seq = (
        select(func.max(x.seq))
        .where(
            x.device_id == Device.id,
            x.to_state.in_(OUT_OF_FACTORY_STATES),  # type: ignore[attr-defined]
            or_(x.from_state.is_(None), x.from_state.not_in(OUT_OF_CUSTODY)),  # type: ignore[union-attr]
        )
        .correlate(Device)
        .scalar_subquery()
    )
    base = (
        select(Device, CustodyEntry)
        .join(CustodyEntry, CustodyEntry.seq == left_seq)  # type: ignore[arg-type]
        .where(Device.state.in_(OUT_OF_CUSTODY), CustodyEntry.occurred_at <= cutoff)  # type: ignore[union-attr]
    )
    total = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = session.execute(base.order_by(CustodyEntry.occurred_at, CustodyEntry.seq).limit(limit))  # type: ignore[arg-type]
    out = []
    for device, entry in rows:
        left = datetime.fromisoformat(entry.occurred_at)
        out.append(
            OutOfCustody(
                device_serial=device.serial,
                asset_tag=device.asset_tag,
                state=device.state or "",
                custodian=device.custodian,
                location=device.location,
                left_seq=entry.seq,
                left_event=entry.event,
                left_at=entry.occurred_at,
                days_out=(now - left).days,
            )
        )
    return total, out


# ------------------------------------------------------------------ uncertified departures


@dataclass
class _Replay:
    """What the replay knows about one device so far, walking its entries in order."""

    tainted_seq: int | None = None
    round_seq: int | None = None


def uncertified_departures(session: Session, keys: SiteKeyList) -> list[Violation]:
    """Every departure for reuse, redistribution or recycling without valid certificates."""
    checks: dict[str, CertificateCheck] = {}
    violations = []
    for device_id, entries in _departing_devices(session):
        replay = _Replay()
        for e in entries:
            if (e.event, e.to_state) in TAINTING or (e.event == Event.RECEIVE and not _new_stock(e)):
                replay.tainted_seq = e.seq
            elif e.event == Event.START_SANITISE:
                replay.round_seq = e.seq
            needs = (e.event, e.to_state) in ALWAYS_CERTIFIED or (
                (e.event, e.to_state) in CERTIFIED_IF_USED and replay.tainted_seq is not None
            )
            if needs:
                problems = _departure_problems(session, keys, device_id, e, replay, checks)
                if problems:
                    violations.append(Violation(e.device_serial, e.seq, e.event, e.to_state, e.occurred_at, problems))
    return violations


def _departing_devices(session: Session) -> Iterator[tuple[int, list[CustodyEntry]]]:
    """Each device that ever departed, with its replay-relevant entries in chain order."""
    departed = select(CustodyEntry.device_id).where(CustodyEntry.event.in_(_DEPARTURE_EVENTS))  # type: ignore[attr-defined]
    stmt = (
        select(CustodyEntry)
        .where(CustodyEntry.event.in_(_REPLAYED_EVENTS), CustodyEntry.device_id.in_(departed))  # type: ignore[attr-defined]
        .order_by(CustodyEntry.device_id, CustodyEntry.seq)  # type: ignore[arg-type]
        .execution_options(yield_per=5000)
    )
    current: int | None = None
    batch: list[CustodyEntry] = []
    for entry in session.execute(stmt).scalars():
        if entry.device_id != current:
            if current is not None:
                yield current, batch
            current, batch = entry.device_id, []
        batch.append(entry)
    if current is not None:
        yield current, batch


def _new_stock(entry: CustodyEntry) -> bool:
    evidence = orjson.loads(entry.evidence)
    return isinstance(evidence, dict) and evidence.get("new_stock") is True


def _departure_problems(
    session: Session,
    keys: SiteKeyList,
    device_id: int,
    departure: CustodyEntry,
    replay: _Replay,
    checks: dict[str, CertificateCheck],
) -> list[str]:
    if replay.round_seq is None:
        return ["the device was never sanitised before it left"]
    if replay.tainted_seq is not None and replay.round_seq < replay.tainted_seq:
        return [
            f"the device held user data (entry {replay.tainted_seq}) after its last erase round "
            f"(entry {replay.round_seq})"
        ]
    media = list(session.execute(select(StorageMedium).where(StorageMedium.device_id == device_id)).scalars())
    if not media:
        return ["no storage media are recorded on the device: nothing was certified"]
    certs = session.execute(
        select(Certificate).where(Certificate.device_id == device_id, Certificate.erase_round_seq == replay.round_seq)
    ).scalars()
    by_medium = {c.medium_id: c for c in certs}
    left_at = datetime.fromisoformat(departure.occurred_at)
    problems = []
    for medium in media:
        cert = by_medium.get(medium.id or -1)
        if cert is None:
            problems.append(f"medium {medium.serial} has no certificate from erase round {replay.round_seq}")
            continue
        if cert.id not in checks:
            checks[cert.id] = check_certificate(session, cert, keys)
        problems += [f"certificate {cert.id} (medium {medium.serial}): {p}" for p in checks[cert.id].problems]
        if cert.medium_serial != medium.serial:
            problems.append(f"certificate {cert.id} is for medium {cert.medium_serial}, not {medium.serial}")
        if datetime.fromisoformat(cert.issued_at) > left_at:
            problems.append(f"certificate {cert.id} was issued after the device left ({cert.issued_at})")
    return problems


# ------------------------------------------------------------------ certificates by wave


def certificates_by_wave(session: Session, wave: str | None = None) -> list[WaveCertificates]:
    """Devices allocated to each refresh wave (releases excluded) with their current certificates."""
    stmt = (
        select(Wave.name, Wave.cohort, Allocation.status, Device)
        .join(Allocation, Allocation.wave_id == Wave.id)  # type: ignore[arg-type]
        .join(Device, Device.id == Allocation.device_id)  # type: ignore[arg-type]
        .where(Allocation.status != AllocationStatus.RELEASED.value)
        .order_by(Wave.name, Device.serial)
    )
    if wave is not None:
        stmt = stmt.where(Wave.name == wave)
    rows = session.execute(stmt).all()
    rounds = {d.id: d.erase_round_seq for *_, d in rows if d.erase_round_seq is not None}
    certs: dict[int, list[str]] = {}
    ids = sorted(rounds)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for c_id, c_device, c_round in session.execute(
            select(Certificate.id, Certificate.device_id, Certificate.erase_round_seq)
            .where(Certificate.device_id.in_(chunk))  # type: ignore[attr-defined]
            .order_by(Certificate.id)
        ):
            if rounds.get(c_device) == c_round:
                certs.setdefault(c_device, []).append(c_id)
    waves: dict[str, WaveCertificates] = {}
    for name, cohort, status, device in rows:
        entry = waves.setdefault(name, WaveCertificates(wave=name, cohort=cohort))
        entry.devices.append(
            WaveDevice(
                device_serial=device.serial,
                state=device.state,
                allocation_status=status,
                held_user_data=device.user_data_since_seq is not None,
                certificate_ids=certs.get(device.id or 0, []),
            )
        )
    return list(waves.values())
