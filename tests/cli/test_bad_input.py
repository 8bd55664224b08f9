"""Every malformed command line ends in one line on stderr and a non-zero exit, never a traceback.

Each case names the reason it must give: a case that reached the safety net in ``oneline.py``
("unexpected ...") fails, so each malformed input is refused on purpose, with a reason, and
nothing is written to the database.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from factory.cli.main import app
from factory.kernel import limits
from factory.kernel.db.engine import session_scope
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device, StorageMedium

LONG_ID = "1180591620717411303424"  # 2**70: past every integer column
RECEIVE = ["device", "receive", "SN-1", "--kind", "laptop"]
TOO_LONG = "x" * 100_000
ENDPOINT = ["device", "endpoint", "SN-1", "--address", "10.0.0.2", "--host-key", "ssh-ed25519 AAAA"]

CASES: list[tuple[str, list[str], dict[str, str], str]] = [
    # (id, arguments, environment, what the one line must say)
    ("nested-certificate", ["cert", "verify", "{tmp}/nested.json"], {}, "nests JSON too deeply"),
    ("binary-certificate", ["cert", "verify", "{tmp}/binary.json"], {}, "not UTF-8"),
    ("missing-certificate", ["cert", "verify", "{tmp}/absent.json"], {}, "cannot read"),
    ("huge-capacity", [*RECEIVE, "--media", "nvme:S:99999999999999999999999T:M"], {}, "more than"),
    ("infinite-capacity", [*RECEIVE, "--media", "nvme:S:" + "9" * 310], {}, "more than"),  # float: inf
    ("long-media-spec", [*RECEIVE, "--media", "nvme:S:" + "9" * 400], {}, "at most 320"),
    ("capacity-words", [*RECEIVE, "--media", "nvme:S:lots"], {}, "capacity 'lots'"),
    ("long-media-serial", [*RECEIVE, "--media", "nvme:" + "S" * 129], {}, "media serial is 129 characters"),
    ("long-media-model", [*RECEIVE, "--media", "nvme:S:1G:" + "M" * 129], {}, "media model is 129 characters"),
    ("too-many-media", [*RECEIVE, *[a for i in range(17) for a in ("--media", f"sd:S{i}")]], {}, "at most 16"),
    ("long-make", [*RECEIVE, "--make", TOO_LONG], {}, "at most 128"),
    ("long-model", [*RECEIVE, "--model", TOO_LONG], {}, "at most 128"),
    ("long-from", [*RECEIVE, "--from", TOO_LONG], {}, "at most 200"),
    ("long-location", [*RECEIVE, "--location", TOO_LONG], {}, "at most 200"),
    ("long-asset-tag", [*RECEIVE, "--asset-tag", "A" * 65], {}, "at most 64"),
    ("long-actor", [*RECEIVE, "--actor", TOO_LONG], {}, "at most 200"),
    ("long-serial", ["device", "receive", "S" * 129, "--kind", "laptop"], {}, "at most 128"),
    ("control-in-serial", ["device", "show", "SN\x1b[2J"], {}, "control characters"),
    ("unknown-kind", [*RECEIVE[:3], "--kind", "toaster"], {}, "kind 'toaster'"),
    ("job-id-overflow", ["line", "job", LONG_ID], {}, "less than or equal to"),
    ("job-id-zero", ["line", "cancel", "0"], {}, "greater than or equal to 1"),
    ("job-id-words", ["line", "job", "seven"], {}, "Input should be a valid integer"),
    ("retry-overflow", ["line", "retry", LONG_ID], {}, "less than or equal to"),
    ("abort-overflow", ["line", "abort", LONG_ID], {}, "less than or equal to"),
    ("jobs-limit-zero", ["line", "jobs", "--limit", "0"], {}, "greater than or equal to 1"),
    ("jobs-limit-huge", ["line", "jobs", "--limit", LONG_ID], {}, "less than or equal to"),
    ("serve-port-high", ["serve", "--port", "99999"], {}, "less than or equal to"),
    ("serve-port-zero", ["serve", "--port", "0"], {}, "greater than or equal to 1"),
    ("serve-bad-host", ["serve", "--host", "999.1.1.1", "--port", "8123"], {}, "--host 999.1.1.1"),
    ("serve-long-host", ["serve", "--host", "h" * 254], {}, "at most 253"),
    ("endpoint-port", [*ENDPOINT, "--port", "70000"], {}, "less than or equal to"),
    ("token-cache-words", ["device", "show", "SN-1"], {"FACTORY_TOKEN_CACHE_SECONDS": "abc"}, "must be a number"),
    ("token-cache-inf", ["device", "show", "SN-1"], {"FACTORY_TOKEN_CACHE_SECONDS": "1e999"}, "between 0 and 60"),
    ("token-cache-nan", ["device", "show", "SN-1"], {"FACTORY_TOKEN_CACHE_SECONDS": "nan"}, "between 0 and 60"),
    ("token-cache-cert", ["cert", "verify", "{tmp}/c.json"], {"FACTORY_TOKEN_CACHE_SECONDS": "x"}, "must be a number"),
    ("database-url", ["device", "show", "SN-1"], {"FACTORY_DATABASE_URL": "postgresql://x@[::1"}, "not a database URL"),
    ("search-limit", ["audit", "search", "--limit", "501"], {}, "less than or equal to"),
    ("search-serial", ["audit", "search", "--serial", TOO_LONG], {}, "at most 128"),
    ("search-cursor", ["audit", "search", "--cursor", TOO_LONG], {}, "at most 400"),
    ("search-outcome", ["audit", "search", "--outcome", "maybe"], {}, "'maybe' is not one of"),
    ("exceptions-days", ["audit", "exceptions", "--days", LONG_ID], {}, "less than or equal to"),
    ("exceptions-limit", ["audit", "exceptions", "--limit", LONG_ID], {}, "less than or equal to"),
    ("certificate-id", ["audit", "verify", "C" * 65], {}, "at most 64"),
    ("bundle-serials", ["audit", "export", "--out", "{tmp}/b.zip", *["--serial", "S"] * 201], {}, "at most 200"),
    ("bundle-out-empty", ["audit", "export", "--out", "", "--serial", "S"], {}, "must name a file"),
    ("bundle-out-dir", ["audit", "export", "--out", "{tmp}", "--serial", "S"], {}, "must name a file"),
    ("wipe-operator", ["wipe", "{tmp}/disk.img", "--yes", "--operator", TOO_LONG], {}, "at most 200"),
    ("wipe-missing", ["wipe", "{tmp}/absent.img", "--yes"], {}, "absent.img"),
    ("unknown-command", ["device", "explode"], {}, "No such command 'explode'"),
    ("unknown-option", ["device", "show", "SN-1", "--bogus"], {}, "No such option: --bogus"),
    ("missing-argument", ["line", "job"], {}, "Missing argument 'job_id'"),
    ("anchor-missing", ["ledger", "verify", "--anchor", "{tmp}/absent.anchor"], {}, "absent.anchor"),
]


def _prepare(tmp: Path) -> None:
    (tmp / "nested.json").write_text('{"a":' + "[" * 100_000 + "]" * 100_000 + "}")
    (tmp / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (tmp / "c.json").write_text("{}")
    (tmp / "disk.img").write_bytes(b"\0" * 4096)


def assert_one_line_refusal(result, needle: str) -> str:
    """One line on stderr starting 'error: ', nothing on stdout, a non-zero exit, no traceback."""
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code not in (0, None)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[:2000]
    line = lines[0]
    assert line.startswith("error: ") and needle in line, line[:2000]
    assert "unexpected" not in line, line  # the safety net was not what refused it
    assert "Traceback" not in result.output and result.stdout == ""
    return line


@pytest.mark.parametrize(("args", "env", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_input_is_one_line_and_writes_nothing(ctx, tmp_path, args, env, needle) -> None:
    _prepare(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    line = assert_one_line_refusal(CliRunner().invoke(app, argv, env=env), needle)
    assert len(line) < 400, "the reason quotes at most a short piece of what it refuses"
    with session_scope(ctx.engine) as s:
        for table in (Device, StorageMedium, CustodyEntry):
            assert s.exec(select(table)).all() == []


def test_at_least_thirty_malformed_inputs_are_covered() -> None:
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)


def test_the_limits_are_the_apis() -> None:
    """The CLI's bounds and the API's schema read the same numbers (factory.kernel.limits)."""
    from api.schemas.intake import DeviceReceive, MediaIn

    def max_length(model, field: str) -> int:
        return next(m.max_length for m in model.model_fields[field].metadata if hasattr(m, "max_length"))

    assert max_length(DeviceReceive, "make") == limits.MAKE
    assert max_length(DeviceReceive, "from_custodian") == limits.PARTY
    assert max_length(DeviceReceive, "media") == limits.MEDIA_PER_DEVICE
    assert max_length(MediaIn, "serial") == limits.SERIAL
    capacity = next(m.le for m in MediaIn.model_fields["capacity_bytes"].metadata if hasattr(m, "le"))
    assert capacity == limits.CAPACITY_BYTES


def test_values_at_the_limits_are_accepted(ctx) -> None:
    r = CliRunner().invoke(
        app,
        ["device", "receive", "S" * limits.SERIAL, "--kind", "laptop", "--make", "M" * limits.MAKE,
         "--from", "F" * limits.PARTY, "--asset-tag", "A" * limits.ASSET_TAG,
         "--media", f"nvme:{'N' * limits.SERIAL}:{limits.CAPACITY_BYTES}:{'m' * limits.MODEL}"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    with session_scope(ctx.engine) as s:
        assert s.exec(select(StorageMedium)).one().capacity_bytes == limits.CAPACITY_BYTES


def test_serve_on_a_port_in_use_is_one_line(ctx) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--host", "127.0.0.1", "--port", str(port)])
    assert_one_line_refusal(result, f"cannot listen on 127.0.0.1:{port}: Address already in use")
