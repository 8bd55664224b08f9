"""The bundle's checker is a standalone script (an auditor runs it without this project): it and
its companions import nothing of the project, and it hashes exactly what the ledger hashes (both
take the list from imaging/offline_verify.py, which the bundle carries)."""

from __future__ import annotations

from types import ModuleType

from harness.audit_data import bundle_checker

from factory.audit import bundle
from factory.kernel.ledger.hashing import HASHED_FIELDS, HASHED_FIELDS_V2
from factory.kernel.models.custody_entry import GENESIS_HASH


def _checker() -> ModuleType:
    return bundle_checker("standalone_verify_bundle")


def test_the_checker_hashes_exactly_the_ledger_fields() -> None:
    checker = _checker()
    assert checker.ENTRY_FIELDS == HASHED_FIELDS
    assert checker.ENTRY_FIELDS_V2 == HASHED_FIELDS_V2  # version 2 adds the device reference
    assert checker.GENESIS_HASH == GENESIS_HASH


def test_the_checker_imports_nothing_of_this_project() -> None:
    companions = (bundle.VERIFIER_SOURCE.with_name("verify_bundle_keys.py"), bundle.PRIMITIVES_SOURCE)
    source = bundle.VERIFIER_SOURCE.read_text(encoding="utf-8")
    source += "".join(path.read_text(encoding="utf-8") for path in companions)
    for package in ("factory", "imaging", "hardware_drivers", "api"):
        assert f"from {package}" not in source and f"import {package}" not in source
