"""``factory ledger verify`` shows its progress on a terminal and prints only its report when piped."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

from harness.domain import receive

from factory.kernel.context import AppContext

VERIFY = [sys.executable, "-m", "factory.cli.main", "ledger", "verify"]
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")  # Rich colours numbers and redraws the bar on a terminal


def _on_a_terminal(argv: list[str]) -> tuple[int, bytes]:
    """Run ``argv`` with a pseudo-terminal as stdin, stdout and stderr; its exit code and all it wrote."""
    ours, theirs = pty.openpty()
    proc = subprocess.Popen(argv, stdin=theirs, stdout=theirs, stderr=theirs, env={**os.environ, "COLUMNS": "160"})
    os.close(theirs)
    written = b""
    while True:
        try:
            chunk = os.read(ours, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        written += chunk
    os.close(ours)
    return proc.wait(timeout=120), _ANSI.sub(b"", written)


def test_on_a_terminal_the_bar_counts_the_entries_then_the_report_follows(ctx: AppContext) -> None:
    receive(ctx, "BAR-1", ("BAR-M1",))
    receive(ctx, "BAR-2", ("BAR-M2",))
    code, written = _on_a_terminal(VERIFY)
    assert code == 0, written
    assert b"verifying ledger" in written and b"/2" in written  # the bar, out of the 2 entries
    assert b"ledger ok: 2 entries" in written


def test_piped_it_prints_the_report_alone(ctx: AppContext) -> None:
    receive(ctx, "BAR-3", ("BAR-M3",))
    done = subprocess.run(VERIFY, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ledger ok: 1 entries") and done.stdout.count("\n") == 1
    assert "verifying ledger" not in done.stdout + done.stderr
