"""A serial-prefix search matches the prefix as typed: LIKE's % and _ (and the escape) are literal."""

from __future__ import annotations

import pytest

from factory.intake.service import receive_device
from factory.kernel.db.engine import session_scope
from factory.line.views import devices_view

SERIALS = ["AB-1", "AB_2", "A%B-3", "XY-5"]  # no "/" in a serial (limits.serial_problem)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("_", []),
        ("%", []),
        ("A_", []),
        ("AB_", ["AB_2"]),
        ("A%", ["A%B-3"]),
        ("A/", []),  # LIKE's escape character, typed: matches literally (nothing), no error
        ("AB", ["AB-1", "AB_2"]),
        ("", SERIALS),
    ],
)
def test_serial_prefix_is_literal(ctx, prefix: str, expected: list[str]) -> None:
    with session_scope(ctx.engine) as s:
        for serial in SERIALS:
            receive_device(s, serial=serial, kind="laptop", actor="test")
    with session_scope(ctx.engine) as s:
        found = sorted(d["serial"] for d in devices_view(s, serial_prefix=prefix))
    assert found == sorted(expected)
