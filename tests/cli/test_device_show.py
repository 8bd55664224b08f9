"""'factory device show' reads through the driver (factory/intake/views.py device_view_rows): the same view, the
same JSON and text as the ORM path (intake.views.device_view), and the same one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness.audit_data import sanitised_device
from harness.domain import move, receive
from typer.testing import CliRunner

from factory.cli.device_cmd import _print_device
from factory.cli.main import app
from factory.intake.errors import UnknownDevice
from factory.intake.views import device_view, device_view_rows, get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.db.readonly import DatabaseUnavailable, read_only
from factory.kernel.lifecycle.states import Event


def _orm_view(ctx: AppContext, serial: str) -> dict[str, object]:
    with session_scope(ctx.engine) as s:
        return device_view(s, get_device(s, serial))


def _show(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["device", "show", *args])
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def devices(ctx: AppContext) -> dict[str, int]:
    """A sanitised laptop with an asset tag and three media (three certificates, several custody
    entries), a tablet with quotes in its model and only its receipt, a new-stock device with no
    media; serial -> id."""
    first, certificates = sanitised_device(ctx, "SHOW-1", ("S1-C", "S1-A", "S1-B"), asset_tag="AT-1")
    assert len(certificates) == 3
    second = receive(ctx, "SHOW-2", ("S2-M",), kind="tablet", make="Zebra", model='ET40 "rugged"')
    return {"SHOW-1": first, "SHOW-2": second, "SHOW-3": receive(ctx, "SHOW-3", (), new_stock=True)}


def test_the_driver_reader_builds_the_orm_view(ctx: AppContext, devices: dict[str, int]) -> None:
    with read_only(ctx.settings.database_url) as reader:
        for serial in devices:
            light = device_view_rows(reader, serial)
            assert light == _orm_view(ctx, serial)
            # Same types too (JSON would hide an int read back as a string, or a list as a tuple).
            assert json.dumps(light, sort_keys=True) == json.dumps(_orm_view(ctx, serial), sort_keys=True)
        first = device_view_rows(reader, "SHOW-1")
        assert len(first["certificates"]) == 3 and [m["serial"] for m in first["media"]] == ["S1-C", "S1-A", "S1-B"]
        assert [e["seq"] for e in first["history"]] == sorted(e["seq"] for e in first["history"])
        assert isinstance(first["history"][0]["evidence"], dict) and first["held_user_data"] is True
        with pytest.raises(UnknownDevice):
            device_view_rows(reader, "SHOW-404")


def test_show_prints_what_the_orm_view_prints(
    ctx: AppContext, devices: dict[str, int], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "140")
    for serial in devices:
        code, out, _ = _show(serial, "--json")
        assert code == 0 and out == json.dumps(_orm_view(ctx, serial), indent=2, sort_keys=True) + "\n"
        code, out, _ = _show(serial)
        _print_device(_orm_view(ctx, serial))
        assert code == 0 and out == capsys.readouterr().out and serial in out and "Custody" in out


def test_show_refuses_in_one_line(ctx: AppContext, devices: dict[str, int]) -> None:
    assert _show("SHOW-404") == (1, "", "error: no device with serial SHOW-404\n")
    code, out, err = _show(" ")
    assert (code, out, err) == (1, "", "error: serial must not be empty\n")


def test_a_device_moved_on_shows_its_new_state(ctx: AppContext, devices: dict[str, int]) -> None:
    move(ctx, devices["SHOW-2"], Event.START_SANITISE)
    code, out, _ = _show("SHOW-2", "--json")
    assert code == 0 and json.loads(out)["state"] == _orm_view(ctx, "SHOW-2")["state"] == "sanitising"


def test_an_uninitialised_or_unreachable_database_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACTORY_HOME", str(tmp_path / "fresh"))
    monkeypatch.setenv("FACTORY_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh' / 'factory.db'}")
    code, out, err = _show("X")
    assert code == 1 and out == "" and err.count("\n") == 1 and "run 'factory db upgrade'" in err
    monkeypatch.setenv("FACTORY_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    code, out, err = _show("X")
    assert code == 1 and out == "" and err.startswith("error: database error: ") and err.count("\n") == 1
    with pytest.raises(DatabaseUnavailable), read_only("postgresql://nobody@127.0.0.1:1/none"):
        pass
