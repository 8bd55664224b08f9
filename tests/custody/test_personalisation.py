"""Officers' assistive-technology needs as structured data (entered, imported) and the issue
guard: a device goes to an officer with needs only after its personalisation QA passed on it."""

from __future__ import annotations

import pytest
from harness.custody_data import accept, allocated, officer
from harness.domain import state_of, verifier
from sqlmodel import select

from factory.custody.at_needs import parse
from factory.custody.models import Officer
from factory.custody.service import (
    approve_exception,
    import_at_needs,
    issue_device,
    record_personalisation,
    register_officer,
    request_exception,
)
from factory.custody.views import personalisation_due
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused, InvalidInput, NotFound


def _officer_with_needs(ctx, staff_number: str, words: str) -> str:
    with session_scope(ctx.engine) as s:
        register_officer(s, staff_number=staff_number, name="Sam Patel", team="Response B", at_profile=words)
    return staff_number


def _issue(ctx, allocation_id: int, name: str = "Sam Patel"):
    with session_scope(ctx.engine) as s:
        approval = request_exception(s, allocation_id=allocation_id, reason="new starter", requested_by="tech.one")
        approve_exception(s, approval_id=approval.record.id or 0, approver="admin.one")
    with session_scope(ctx.engine) as s:
        return issue_device(s, allocation_id=allocation_id, acceptance=accept(name), actor="tech.one",
                            verifier=verifier(ctx), approval_id=approval.record.id)  # fmt: skip


def test_a_profile_is_structured_from_words_or_json_and_refused_when_it_names_nothing_known() -> None:
    needs = parse("Screen reader; JAWS, magnifier x3, high_contrast")
    assert needs.features == ["screen_reader", "magnifier", "high_contrast"]
    assert needs.summary() == "screen reader (JAWS), magnifier x3.0, high contrast"
    assert parse(needs.to_json()) == needs and parse("") == parse("none") and not parse("").any
    with pytest.raises(InvalidInput, match="'braille display' is not one of"):
        parse("screen-reader, braille display")
    with pytest.raises(InvalidInput, match="unknown fields: colour"):
        parse('{"colour": true}')


def test_officers_needs_are_recorded_structured_and_imported_all_or_nothing(ctx) -> None:
    _officer_with_needs(ctx, "PC2001", "screen-reader")
    officer(ctx, "PC2002")
    with session_scope(ctx.engine) as s:
        done = import_at_needs(s, "staff_number,name,at_profile\nPC2001,Sam,dictation\nPC2002,Jo,magnifier x2.5\n")
    assert done == [("PC2001", "dictation"), ("PC2002", "magnifier x2.5")]
    with session_scope(ctx.engine) as s:
        rows = {o.staff_number: o for o in s.exec(select(Officer)).all()}
        assert parse(rows["PC2002"].at_needs).magnifier_zoom == 2.5
    with pytest.raises(InvalidInput, match=r"line 3 \(PC2002\): .*'sign language' is not one of"):
        with session_scope(ctx.engine) as s:
            import_at_needs(s, "staff_number,at_profile\nPC2001,large text\nPC2002,sign language\n")
    with pytest.raises(NotFound, match=r"line 2: .*PC9999"), session_scope(ctx.engine) as s:
        import_at_needs(s, "staff_number,at_profile\nPC9999,dictation\n")
    with pytest.raises(InvalidInput, match="line 2 has more fields than the header"), session_scope(ctx.engine) as s:
        import_at_needs(s, "staff_number,at_profile\nPC2001,dictation,magnifier\n")
    with session_scope(ctx.engine) as s:  # neither refused import changed anything
        assert s.exec(select(Officer).where(Officer.staff_number == "PC2001")).one().at_profile == "dictation"


def test_issue_to_an_officer_with_needs_waits_for_a_passed_qa_on_that_device(ctx) -> None:
    staff = _officer_with_needs(ctx, "PC3001", "screen-reader, magnifier x3")
    allocation_id = allocated(ctx, "AT-1", staff)
    with pytest.raises(GuardRefused, match=r"needs assistive technology \(screen reader \(NVDA\), magnifier x3.0\)"
                       r".*AT-1 cannot be issued.*no personalisation has run"):  # fmt: skip
        _issue(ctx, allocation_id)
    with session_scope(ctx.engine) as s:
        due = personalisation_due(s, _device_id(s, "AT-1"))
        assert due is not None and due.staff_number == "PC3001"
        record_personalisation(s, due, passed=False, missing=["magnifier: magnus is not installed"],
                               detail="QA failed", job_id=None, actor="agent:a")  # fmt: skip
    with pytest.raises(GuardRefused, match="last personalisation QA failed: magnifier: magnus is not installed"):
        _issue(ctx, allocation_id)
    assert state_of(ctx, "AT-1") == "allocated"
    with session_scope(ctx.engine) as s:
        due = personalisation_due(s, _device_id(s, "AT-1"))
        record_personalisation(s, due, passed=True, missing=[], detail="ok", job_id=None, actor="agent:a")
        assert personalisation_due(s, _device_id(s, "AT-1")) is None
    # The officer's needs change after the pass: the pass was for the old profile.
    with session_scope(ctx.engine) as s:
        import_at_needs(s, 'staff_number,at_profile\nPC3001,"screen-reader, magnifier x3, dictation"\n')
    with pytest.raises(GuardRefused, match=r"dictation.*no personalisation has run"):
        _issue(ctx, allocation_id)
    with session_scope(ctx.engine) as s:
        due = personalisation_due(s, _device_id(s, "AT-1"))
        record_personalisation(s, due, passed=True, missing=[], detail="ok", job_id=None, actor="agent:a")
    assert _issue(ctx, allocation_id).handed_over == "AT-1"


def test_an_officer_without_needs_is_issued_as_before(ctx) -> None:
    staff = officer(ctx, "PC4001")
    allocation_id = allocated(ctx, "AT-2", staff)
    assert _issue(ctx, allocation_id, "Jane Smith").handed_over == "AT-2"


def _device_id(s, serial: str) -> int:
    from factory.intake.views import get_device

    return get_device(s, serial).id or 0


def test_needs_are_imported_from_the_command_line_with_one_line_errors(ctx, tmp_path) -> None:
    from typer.testing import CliRunner

    from factory.cli.main import app

    officer(ctx, "PC8001")
    good, bad = tmp_path / "at.csv", tmp_path / "bad.csv"
    good.write_text('\ufeffstaff_number,at_profile\nPC8001,"jaws; magnifier x4"\n', encoding="utf-8")
    bad.write_text("staff_number,at_profile\nPC8001,telepathy\n")
    result = CliRunner().invoke(app, ["officers", "import-at-needs", str(good)])
    assert result.exit_code == 0 and "PC8001: screen reader (JAWS), magnifier x4.0" in result.stdout
    result = CliRunner().invoke(app, ["officers", "import-at-needs", str(bad)])
    assert result.exit_code != 0 and result.stderr.strip().splitlines() == [
        "error: line 2 (PC8001): assistive-technology need 'telepathy' is not one of: dictation, dragon, "
        "high-contrast, jaws, large-text, magnifier, nvda, orca, screen-reader, screenreader, "
        "speech-recognition, zoomtext, magnifier xN"
    ]
