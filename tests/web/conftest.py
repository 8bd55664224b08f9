"""Web tests log in many times: a cheap Argon2id cost keeps them fast (production keeps the
library's defaults, which are slow by design)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("factory.users._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        mp.setattr("factory.users._dummy_hash", lambda: "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo")
        yield
