"""Property-based fuzzing of the whole OpenAPI with an admin token: no input may cause a 5xx.

Admins pass every role check, so generated inputs reach every service. One test per operation
(listed from the schema at collection time, so a new route is fuzzed without editing this file),
each on a fresh database (SQLite and PostgreSQL), with a bounded number of examples and no
shrinking (a failure is reported at once with a curl line to reproduce it).

schemathesis' own pytest loader (``from_fixture``) does not work with pytest 9 (it reads a
removed ``Node._nodeid``), so the operations are driven through its Python API and Hypothesis.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from harness.fuzzing import fuzz_settings
from hypothesis import given

from api.app import create_app
from factory.identity.service import add_user
from factory.kernel.config import Settings
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope

# The live board stream never ends by design (server-sent events); the RBAC test covers its access.
STREAMS = {"GET /api/board/events"}
# CI's run: 20 examples per operation, the same ones every time; FACTORY_FUZZ_EXAMPLES=N draws N
# fresh ones per operation (a longer campaign, not for CI: harness.fuzzing).
CI_EXAMPLES = 20

# The schema does not depend on the database: load it once from one app (its context is an
# unopened SQLite path), then give that app each test's context (the routes read it per request).
_OFFLINE = AppContext(Settings(home=Path("/nonexistent"), database_url="sqlite:///:memory:", site_name="schema"))
APP = create_app(_OFFLINE)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
OPERATIONS = sorted(r.ok().label for r in SCHEMA.get_all_operations() if r.ok().label not in STREAMS)


def test_the_schema_lists_the_api() -> None:
    assert len(OPERATIONS) > 40, OPERATIONS
    assert {"POST /api/devices", "GET /api/certificates", "POST /api/custody/swaps", "GET /metrics"} <= set(OPERATIONS)


@pytest.mark.slow  # generated requests for every operation, on both databases
@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_errors(ctx, label: str) -> None:
    with session_scope(ctx.engine) as s:
        token = add_user(s, "fuzz.admin", "admin")[1]
    APP.state.context = ctx
    operation = SCHEMA.find_operation_by_label(label)
    assert operation is not None, label
    headers = {"Authorization": f"Bearer {token}"}

    @given(case=operation.as_strategy())
    @fuzz_settings(CI_EXAMPLES)
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:300]}"

    fuzz()
