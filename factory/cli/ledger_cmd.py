"""``factory ledger``: verify the custody logs, sign tree heads, cosign other sites', and prove entries offline.

Each site sharing the database has its own log (``FACTORY_SITE``); ``verify`` covers them all
(``--log`` one), ``head`` signs this site's, ``cosign`` witnesses every other site's latest head.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import typer
from sqlalchemy import text

from factory.cli.common import (
    JsonFlag,
    console,
    context,
    fail,
    one_line_errors,
    print_json,
    print_json_result,
    rich_console,
)
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.key_registry import KeyNotValid
from factory.kernel.ledger.anchor import LedgerAnchor, check_anchor, parse_anchor, sign_head
from factory.kernel.ledger.cosign import cosign_logs
from factory.kernel.ledger.heads import (
    HeadPolicy,
    TreeHead,
    head_with_size,
    latest_head,
    parse_head,
    sign_if_due,
    sign_tree_head,
    stored_heads,
)  # fmt: skip
from factory.kernel.ledger.logs import configured_log
from factory.kernel.ledger.verify import LedgerReport, verify_ledger
from factory.kernel.site_keys import load_private_key

app = typer.Typer(help="The custody ledger.", no_args_is_help=True)


LogOption = typer.Option(None, "--log", help="Only this site's log (default: every log in the database).")


def _verify(ctx: AppContext, as_json: bool, witnessed: list[TreeHead], log: str | None) -> LedgerReport:
    keyring = ctx.site_keys.keyring()
    # A bar only on a terminal: piped, a transient bar still left a blank line before the report.
    if as_json or not rich_console().is_terminal:
        return verify_ledger(ctx.engine, keyring=keyring, witnessed=witnessed, log=log)
    with ctx.engine.connect() as conn:
        where, params = ("WHERE log = :log", {"log": log}) if log is not None else ("", {})
        total = conn.execute(text(f"SELECT count(*) FROM custody_entry {where}"), params).scalar_one()
    # Only for a terminal's progress bar: 'ledger verify --json' starts without Rich's progress module.
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("verifying ledger"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=rich_console(), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("verify", total=total)
        return verify_ledger(
            ctx.engine, progress=lambda n: bar.update(task, completed=n), keyring=keyring, witnessed=witnessed, log=log
        )


@app.command("verify")
@one_line_errors
def verify_cmd(
    as_json: JsonFlag = False,
    anchors: list[Path] = typer.Option(
        [],
        "--anchor",
        help="A signed tree head ('factory ledger head') or chain anchor ('factory ledger anchor') kept outside the"
        " database, which the log must still hold (repeatable).",
    ),
    strict: bool = typer.Option(False, "--strict", help="Fail when entries follow the latest signed tree head."),
    log: str | None = LogOption,
) -> None:
    """Recompute each log's chain, Merkle tree, signed tree heads and other sites' cosignatures;
    exit 1 naming what is broken.

    Entries after a log's latest signed head are reported as its unsigned tail (a failure with --strict).
    """
    ctx = context()
    # Read and check the anchor files first: a bad file is the caller's error, not a broken ledger.
    witnessed, parsed = _read_kept(anchors)
    keyring = ctx.site_keys.keyring()
    report = _verify(ctx, as_json, witnessed, log)
    for path, anchor in parsed if report.ok else []:
        try:  # the key the anchor names, valid when it was signed (anchors outlive rotations)
            key = keyring.key_for(anchor.key_fingerprint, anchor.signed_at)
        except KeyNotValid as exc:
            report = report.failed_anchor(f"{path}: {exc}", anchor.seq)
            break
        problem = check_anchor(ctx.engine, anchor, key)
        if problem is not None:
            report = report.failed_anchor(f"{path}: {problem}", anchor.seq)
            break
    ok = report.ok and not (strict and report.unsigned_tail)
    if as_json:
        print_json_result(
            {
                **report.as_dict(),
                "anchors_checked": len(parsed) + len(witnessed) if report.ok else None,
                "strict": strict,
            },
            ok,
        )
        return
    if not report.ok:
        fail(f"ledger broken: {report.reason}")
    tail = f"unsigned tail: {report.unsigned_tail} entries after the latest signed head (size {report.signed_size})"
    if not ok:
        fail(f"ledger not fully signed: {tail}")
    kept = len(parsed) + len(witnessed)
    anchored = f"; {kept} signed head(s) still in the chain" if kept else ""
    _print_logs(report)
    console.print(
        f"ledger ok: {report.entries} entries, head {report.head_hash}, root {report.root_hash}, "
        f"{report.heads_checked} signed tree head(s) verified{anchored}; {tail}",
        markup=False, soft_wrap=True,
    )  # fmt: skip


def _print_logs(report: LedgerReport) -> None:
    """One line per log, when the database holds several sites' logs."""
    for one in report.logs if len(report.logs) > 1 else ():
        console.print(
            f"log {one.log}: {one.entries} entries, head {one.head_hash}, root {one.root_hash}, "
            f"{one.heads_checked} signed head(s) and {one.cosignatures_checked} cosignature(s) verified, "
            f"unsigned tail {one.unsigned_tail}",
            markup=False, soft_wrap=True,
        )  # fmt: skip


def _read_kept(paths: list[Path]) -> tuple[list[TreeHead], list[tuple[Path, LedgerAnchor]]]:
    """Kept heads by their format: signed tree heads, and chain anchors of the earlier format."""
    heads, anchors = [], []
    for path in paths:
        data = path.read_bytes()
        if b'"device-factory/tree-head/' in data:
            heads.append(parse_head(data))
        else:
            anchors.append((path, parse_anchor(data)))
    return heads, anchors


@app.command("anchor")
@one_line_errors
def anchor_cmd(
    out: Path | None = typer.Option(None, "--out", help="Write the signed head to this file (refuses to overwrite)."),
) -> None:
    """Sign the current chain head (sequence and hash) with the site key, to keep outside the database."""
    ctx = context()
    anchor = sign_head(ctx.engine, load_private_key(ctx.settings), ctx.settings.site_name)
    if out is None:
        console.out(anchor.dumps().decode(), end="")
        return
    _write_once(out, anchor.dumps())
    console.print(f"signed head: entry {anchor.seq} {anchor.entry_hash} -> {out}", markup=False, soft_wrap=True)


def _write_once(path: Path, data: bytes) -> None:
    with path.open("xb") as f:  # write-once: never replace what a witness may already hold
        f.write(data)


@app.command("head")
@one_line_errors
def head_cmd(
    out: Path | None = typer.Option(None, "--out", help="Also write the signed tree head to this file (write-once)."),
) -> None:
    """Sign a tree head now (size, Merkle root, time, key fingerprint), store it and print it."""
    ctx = context()
    key = load_private_key(ctx.settings)
    with session_scope(ctx.engine) as session:
        head = sign_tree_head(session, key, ctx.settings.site_name, kind="on_demand")
    if out is not None:
        _write_once(out, head.dumps())
    console.out(head.dumps().decode(), end="")


@app.command("heads")
@one_line_errors
def heads_cmd(
    as_json: JsonFlag = False,
    export: Path | None = typer.Option(
        None, "--export", help="Write every stored head not yet there into this folder."
    ),
    watch: bool = typer.Option(False, "--watch", help="Keep signing heads on the schedule until interrupted."),
    poll: float = typer.Option(5.0, "--poll", min=0.5, max=3600, help="Seconds between schedule checks (--watch)."),
    log: str | None = LogOption,
) -> None:
    """List the signed tree heads (of every log); export them (write-once files) or sign this site's on the schedule.

    The schedule: a head once FACTORY_HEAD_EVERY_ENTRIES entries are unsigned (default 1000) or the
    oldest unsigned entry is FACTORY_HEAD_EVERY_SECONDS old (default 300).
    """
    ctx = context()
    if watch:
        _watch(ctx, poll)
        return
    with session_scope(ctx.engine) as session:
        heads = stored_heads(session, log)
    if export is not None:
        export.mkdir(parents=True, exist_ok=True)
        for head in heads:
            # The log's name in the file name, made safe for any file system (it is inside the head too).
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in head.log)
            path = export / f"tree-head-{safe}-{head.tree_size:012d}-{head.signed_at.replace(':', '')}.json"
            if not path.exists():
                _write_once(path, head.dumps())
    if as_json:
        print_json([h.as_dict() for h in heads])
        return
    for head in heads:
        console.print(
            f"{head.log}  {head.tree_size:>10}  {head.root_hash}  {head.signed_at}  {head.key_fingerprint}",
            markup=False,
        )


def _watch(ctx: AppContext, poll: float) -> None:
    policy = HeadPolicy.from_env()
    key = load_private_key(ctx.settings)
    console.print(
        f"signing tree heads every {policy.every_entries} entries or {policy.every_seconds:g} s", markup=False
    )
    while True:
        with session_scope(ctx.engine) as session:
            head = sign_if_due(session, key, ctx.settings.site_name, policy)
        if head is not None:
            console.print(f"signed tree head of size {head.tree_size}: {head.root_hash}", markup=False)
        time.sleep(poll)


def _head_ref(session: Any, ref: str, log: str | None = None) -> TreeHead:
    """A head of ``log`` (default: this site's) named by a file, by its tree size, or 'latest'."""
    if ref == "latest":
        head = latest_head(session, log)
    elif ref.isdigit():
        head = head_with_size(session, int(ref), log)
    else:
        return parse_head(Path(ref).read_bytes(), log)
    if head is None:
        fail(f"no signed tree head {ref!r}: sign one with 'factory ledger head'")
        raise AssertionError("unreachable")
    return head


@app.command("prove")
@one_line_errors
def prove_cmd(
    ref: str = typer.Argument(..., help="A device serial (all its entries) or a custody entry's sequence number."),
    out: Path | None = typer.Option(None, "--out", help="Write the proof here (refuses to overwrite)."),
    sign: bool = typer.Option(False, "--sign-head", help="Sign a new tree head first, covering the newest entries."),
) -> None:
    """Inclusion proofs of a device's entries (or one entry) against the latest signed head of each
    log they are in (a device that moved between sites has entries in several sites' logs).

    Verify offline with docs/verify_ledger_proof.py PROOF --key SITE_KEY.pem (one --key per site).
    """
    from factory.kernel.ledger.proofs import entry_seqs, inclusion_set, logs_of

    ctx = context()
    key = load_private_key(ctx.settings) if sign else None
    with session_scope(ctx.engine) as session:
        seqs = entry_seqs(session, ref)
        by_log = {}
        for log, in_log in logs_of(session, seqs).items():
            own = key is not None and log == configured_log()  # a site signs heads of its own log only
            by_log[log] = (in_log, sign_tree_head(session, key, ctx.settings.site_name, log=log) if own
                           else _head_ref(session, "latest", log))  # fmt: skip
        doc = inclusion_set(session, by_log)
    sizes = ", ".join(f"{log} {head.tree_size}" for log, (_, head) in sorted(by_log.items()))
    _emit(doc, out, f"{len(seqs)} inclusion proof(s) against the signed head(s) of size {sizes}")


@app.command("consistency")
@one_line_errors
def consistency_cmd(
    old: str = typer.Argument(..., help="The older signed head: a file, or a stored head's tree size."),
    new: str = typer.Argument("latest", help="The newer signed head: a file, a stored head's tree size, or 'latest'."),
    out: Path | None = typer.Option(None, "--out", help="Write the proof here (refuses to overwrite)."),
    log: str | None = typer.Option(None, "--log", help="The log the heads are of (default: this site's)."),
) -> None:
    """Prove the log the OLD head signed is a prefix of the log the NEW head signed (RFC 9162)."""
    from factory.kernel.ledger.proofs import consistency_document

    ctx = context()
    with session_scope(ctx.engine) as session:
        old_head, new_head = _head_ref(session, old, log), _head_ref(session, new, log)
        doc = consistency_document(session, old_head, new_head)
    _emit(doc, out, f"consistency proof from size {old_head.tree_size} to {new_head.tree_size}")


@app.command("cosign")
@one_line_errors
def cosign_cmd(as_json: JsonFlag = False) -> None:
    """Witness the other sites: cosign the latest head of every other log with this site's key.

    A head is cosigned only when it checks (signed by a key of its site in the site key list, the
    stored tree gives its root, it extends what this site cosigned before); exit 1 naming any other.
    """
    ctx = context()
    key, keyring = load_private_key(ctx.settings), ctx.site_keys.keyring()
    with session_scope(ctx.engine) as session:
        made, refused = cosign_logs(session, key, ctx.settings.site_name, keyring)
    if as_json:
        print_json_result({"cosigned": [c.as_dict() for c in made], "refused": refused}, not refused)
        return
    for cosig in made:
        console.print(f"cosigned log {cosig.log} at size {cosig.tree_size}: {cosig.root_hash}", markup=False)
    if refused:
        fail("; ".join(f"not cosigned: {reason}" for reason in refused))
    if not made:
        console.print("nothing to cosign: every other log's latest head is cosigned already", markup=False)


def _emit(doc: dict[str, Any], out: Path | None, summary: str) -> None:
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    if out is None:
        console.out(data.decode(), end="")
        return
    _write_once(out, data)
    console.print(f"{summary} -> {out}", markup=False, soft_wrap=True)
