"""Kernel errors: each states its HTTP status and code once, and subclasses keep them."""

from __future__ import annotations

import pytest

from factory.kernel.errors import (
    Conflict,
    FactoryError,
    GuardRefused,
    InvalidInput,
    InvalidTransition,
    KeyStoreError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (FactoryError, 400, "bad_request"),
        (InvalidInput, 422, "invalid_input"),
        (NotFound, 404, "not_found"),
        (Conflict, 409, "conflict"),
        (InvalidTransition, 409, "invalid_transition"),
        (GuardRefused, 409, "guard_refused"),
        (PermissionDenied, 403, "forbidden"),
        (Unauthenticated, 401, "unauthenticated"),
        (KeyStoreError, 409, "key_store"),
    ],
)
def test_status_and_code(cls: type[FactoryError], status: int, code: str) -> None:
    assert (cls.status_code, cls.code) == (status, code)


def test_an_area_error_inherits_status_and_code_unless_it_names_its_own() -> None:
    class Plain(NotFound):
        pass

    class Named(Conflict, code="special"):
        pass

    assert (Plain.status_code, Plain.code) == (404, "not_found")
    assert (Named.status_code, Named.code) == (409, "special")
    assert Plain("gone").reason == "gone"


def test_invalid_transition_names_the_device_state_and_event() -> None:
    exc = InvalidTransition("SN-1", None, "issue")
    assert exc.reason == "device SN-1: event 'issue' is not allowed from state '(not in custody)'"
    assert (exc.serial, exc.state, exc.event) == ("SN-1", None, "issue")
