"""What the fuzz tests share (tests/web/test_schemathesis.py, test_form_fuzz.py): Hypothesis settings
for CI's run (a fixed set of examples, the same every time, no shrinking: a failure is reported at
once) and for a longer campaign (FACTORY_FUZZ_EXAMPLES=N: N fresh examples per operation or form)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

CAMPAIGN = os.environ.get("FACTORY_FUZZ_EXAMPLES")


def fuzz_settings(ci_examples: int) -> settings:
    """Settings for one operation's or form's fuzz: ``ci_examples`` in CI, the campaign's otherwise."""
    return settings(
        max_examples=int(CAMPAIGN) if CAMPAIGN else ci_examples,
        deadline=None,
        derandomize=CAMPAIGN is None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )
