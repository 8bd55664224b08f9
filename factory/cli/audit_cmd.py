"""``factory audit``: search and check certificates, device histories, exception reports, bundles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from factory.audit.service import export_bundle
from factory.audit.views import (
    CertificateQuery,
    Outcome,
    check_certificate,
    device_history,
    exception_report,
    get_certificate,
    parse_bound,
    search_certificates,
    summarise,
    summary_pdf,
)
from factory.cli.common import (
    JsonFlag,
    SerialArg,
    console,
    context,
    fail,
    one_line_errors,
    print_json,
    print_json_result,
    unit_of_work,
)
from factory.cli.inputs import bounded
from factory.custody.views import DEFAULT_OVERDUE_DAYS
from factory.kernel import limits
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.site_keys import load_private_key


def _term(option: str) -> Callable[[Any], Any]:
    return bounded(option, limits.SEARCH_TERM)


app = typer.Typer(
    help="Audit: certificates, device histories, exception reports, evidence bundles.", no_args_is_help=True
)


@app.command("search")
@one_line_errors
def search_cmd(
    serial: str | None = typer.Option(None, "--serial", help="Device serial.", callback=_term("--serial")),
    media_serial: str | None = typer.Option(None, "--media-serial", callback=_term("--media-serial")),
    asset_tag: str | None = typer.Option(None, "--asset-tag", callback=_term("--asset-tag")),
    issued_from: str | None = typer.Option(
        None, "--from", help="ISO date or date-time (UTC), inclusive.", callback=bounded("--from", limits.DATE_TEXT)
    ),
    issued_to: str | None = typer.Option(
        None,
        "--to",
        help="ISO date or date-time (UTC), exclusive; a date covers its day.",
        callback=bounded("--to", limits.DATE_TEXT),
    ),
    method: str | None = typer.Option(
        None, "--method", help="e.g. overwrite-zeros, nvme-sanitize-crypto.", callback=_term("--method")
    ),
    level: str | None = typer.Option(None, "--level", help="clear, purge or destroy.", callback=_term("--level")),
    destination: str | None = typer.Option(
        None, "--destination", help="internal_reuse, external_reuse, recycling...", callback=_term("--destination")
    ),
    site: str | None = typer.Option(None, "--site", help="Signed by that site's keys.", callback=_term("--site")),
    wave: str | None = typer.Option(None, "--wave", help="Devices allocated to the wave.", callback=_term("--wave")),
    outcome: Outcome = typer.Option(Outcome.SUCCESS, "--outcome", help="success (certificates), failed, or any."),
    limit: int = typer.Option(50, "--limit", min=1, max=limits.PAGE),
    cursor: str | None = typer.Option(
        None, "--cursor", help="next_cursor of the previous page.", callback=bounded("--cursor", limits.CURSOR)
    ),
    as_json: JsonFlag = False,
) -> None:
    """Search erase outcomes, newest first."""
    query = CertificateQuery.from_text(
        device_serial=serial,
        media_serial=media_serial,
        asset_tag=asset_tag,
        issued_from=issued_from,
        issued_to=issued_to,
        method=method,
        level=level,
        destination=destination,
        site=site,
        wave=wave,
        outcome=outcome,
        limit=limit,
        cursor=cursor,
    )
    with unit_of_work() as (_ctx, session):
        page = search_certificates(session, query)
    if as_json:
        print_json({"items": [i.as_dict() for i in page.items], "next_cursor": page.next_cursor})
        return
    table = Table("at", "outcome", "device", "medium", "certificate / entry", "level", "method", "destination")
    for i in page.items:
        ref = i.certificate_id if i.certificate_id else f"entry {i.custody_seq}: {i.reason or ''}"
        table.add_row(
            i.at, i.outcome, i.device_serial, i.medium_serial or "", ref, i.level or "", i.method or "",
            i.destination or "",
        )  # fmt: skip
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", markup=False)


@app.command("verify")
@one_line_errors
def verify_cmd(
    certificate_id: str = typer.Argument(..., help="Certificate id.", callback=bounded("id", limits.CERTIFICATE_ID)),
    as_json: JsonFlag = False,
) -> None:
    """Re-check a stored certificate: signature, indexed columns, custody link. Exit 1 if it fails."""
    with unit_of_work() as (ctx, session):
        check = check_certificate(session, get_certificate(session, certificate_id), ctx.site_keys.keyring())
    if as_json:
        print_json_result(check.as_dict(), check.ok)
        return
    if not check.ok:
        fail(f"certificate {check.certificate_id} does not check out: {'; '.join(check.problems)}")
    console.print(f"certificate {check.certificate_id} ok: digest {check.digest_sha256}", markup=False)


@app.command("history")
@one_line_errors
def history_cmd(
    serial: SerialArg,
    full_verify: bool = typer.Option(False, "--full-verify", help="Also re-verify the whole ledger."),
    as_json: JsonFlag = False,
) -> None:
    """A device's custody history with a chain proof for every entry. Exit 1 if anything fails."""
    ctx = context()
    report = verify_ledger(ctx.engine) if full_verify else None
    with session_scope(ctx.engine) as session:
        history = device_history(session, serial, ctx.site_keys.keyring(), ledger=report)
    if as_json:
        print_json(history.as_dict())
    else:
        table = Table("seq", "at", "event", "to", "custodian", "hash", "links")
        for p in history.entries:
            e = p.entry
            links = "ok" if p.ok else ("hash differs" if not p.hash_ok else "link broken")
            table.add_row(str(e["seq"]), e["occurred_at"], e["event"], e["to_state"], e["to_custodian"],
                          e["entry_hash"][:16], links)  # fmt: skip
        console.print(table)
        for c in history.certificates:
            status = "ok" if c["check"]["ok"] else "; ".join(c["check"]["problems"])
            console.print(f"certificate {c['id']} ({c['medium_serial']}): {status}", markup=False)
        console.print(f"ledger head {history.head_seq} {history.head_hash}", markup=False)
    if not history.ok:
        raise typer.Exit(1)


@app.command("exceptions")
@one_line_errors
def exceptions_cmd(
    days: int = typer.Option(30, "--days", min=0, max=limits.DAYS, help="Out of custody for at least this many days."),
    limit: int = typer.Option(1000, "--limit", min=1, max=limits.REPORT_ROWS),
    overdue_days: int = typer.Option(
        DEFAULT_OVERDUE_DAYS,
        "--overdue-days",
        min=0,
        max=limits.DAYS,
        help="A consignment not delivered this many days after hand-over is overdue.",
    ),
    as_json: JsonFlag = False,
) -> None:
    """Exception reports. Exit 1 if any device left without valid certificates, or a certificate row
    disagrees with the ledger (deleted, swapped, or added to a closed erase round)."""
    with unit_of_work() as (ctx, session):
        report = exception_report(session, ctx.site_keys.keyring(), days=days, overdue_days=overdue_days, limit=limit)
    if as_json:
        print_json(report.as_dict())
    else:
        console.print(f"out of custody for {days}+ days: {report.out_of_custody_total}", markup=False)
        for o in report.out_of_custody:
            console.print(f"  {o.device_serial} {o.state} with {o.custodian} since {o.left_at} ({o.days_out} days)",
                          markup=False)  # fmt: skip
        console.print(f"left without valid certificates: {len(report.uncertified_departures)}", markup=False)
        for v in report.uncertified_departures:
            console.print(f"  {v.device_serial} entry {v.seq} ({v.event}): {'; '.join(v.problems)}", markup=False)
        for w in report.certificates_by_wave:
            console.print(f"wave {w.wave}: {len(w.devices)} devices, {w.certificates} certificates", markup=False)
        console.print(f"certificate rows that disagree with the ledger: {len(report.certificate_rows)}", markup=False)
        for c in report.certificate_rows:
            console.print(f"  certificate {c.certificate_id} (entry {c.seq}): {c.reason}", markup=False)
        console.print(f"consignments overdue ({overdue_days}+ days) or missing a scan: {len(report.consignments)}",
                      markup=False)  # fmt: skip
        for e in report.consignments:
            device = f" {e.device_serial}" if e.device_serial else ""
            console.print(f"  {e.reference}{device} {e.problem}: {e.detail}", markup=False)
    if report.uncertified_departures or report.certificate_rows:
        raise typer.Exit(1)


@app.command("export")
@one_line_errors
def export_cmd(
    out: Path = typer.Option(..., "--out", help="Bundle file to write (zip)."),
    serial: list[str] = typer.Option(
        [],
        "--serial",
        help="Device serial (all its certificates), repeatable.",
        callback=bounded("--serial", limits.SERIAL, count=limits.BUNDLE_ITEMS),
    ),
    certificate: list[str] = typer.Option(
        [],
        "--certificate",
        help="Certificate id, repeatable.",
        callback=bounded("--certificate", limits.CERTIFICATE_ID, count=limits.BUNDLE_ITEMS),
    ),
    actor: str = typer.Option(
        "cli", "--actor", help="Who exports (recorded in the manifest).", callback=bounded("--actor", limits.PARTY)
    ),
) -> None:
    """Write an evidence bundle an auditor can verify offline with its own verify_bundle.py."""
    if not out.name or out.is_dir():
        fail(f"--out '{out}' must name a file for the bundle")
    ctx = context()
    tmp = out.with_name(out.name + ".part")
    try:
        with session_scope(ctx.engine) as session, tmp.open("wb") as handle:
            summary = export_bundle(
                session, ctx.site_keys.public_key(), handle, serials=serial, certificate_ids=certificate,
                site=ctx.settings.site_name, exported_by=actor, head_key=load_private_key(ctx.settings),
            )  # fmt: skip
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    console.print(
        f"wrote {out}: {len(summary.devices)} devices, {len(summary.certificates)} certificates, "
        f"{summary.entries} custody entries, key {summary.key_fingerprint}",
        markup=False,
    )


@app.command("summary")
@one_line_errors
def summary_cmd(
    out: Path = typer.Option(..., "--out", help="Where to write the summary PDF."),
    wave: str | None = typer.Option(None, "--wave", help="Summarise one wave...", callback=_term("--wave")),
    issued_from: str | None = typer.Option(
        None, "--from", help="...or a date range: from (inclusive).", callback=bounded("--from", limits.DATE_TEXT)
    ),
    issued_to: str | None = typer.Option(
        None, "--to", help="To (a date covers its day).", callback=bounded("--to", limits.DATE_TEXT)
    ),
) -> None:
    """A summary PDF for an auditor: counts by method and level, exceptions, every certificate's digest."""
    with unit_of_work() as (ctx, session):
        summary = summarise(
            session,
            ctx.site_keys.keyring(),
            wave=wave,
            issued_from=parse_bound(issued_from),
            issued_to=parse_bound(issued_to, upper=True),
        )
    out.write_bytes(summary_pdf(summary))
    console.print(f"{out}: {summary.scope}: {len(summary.certificates)} certificate(s)", markup=False)
