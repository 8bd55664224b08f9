"""The application's wiring: settings plus the engine, built once per process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.pool import NullPool

from factory.kernel.config import Settings, load_settings
from factory.kernel.db.engine import make_engine

if TYPE_CHECKING:  # keys and certificate code load when first asked for: most CLI commands never are
    from factory.kernel.site_keys import SiteKeys

T = TypeVar("T")


@dataclass
class AppContext:
    settings: Settings
    # One-shot processes (the CLI) hold no pool: connections close as soon as they are released.
    pooled: bool = True
    _shared: dict[type[Any], Any] = field(default_factory=dict, init=False, repr=False)
    _shared_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @cached_property
    def engine(self) -> Engine:
        if self.pooled:
            return make_engine(self.settings.database_url, **self.settings.capacity.pool_args())
        return make_engine(self.settings.database_url, poolclass=NullPool)

    @cached_property
    def site_keys(self) -> SiteKeys:
        """The site's public key and certificate verifier, re-read only when the key file changes."""
        from factory.kernel.site_keys import SiteKeys

        return SiteKeys(self.settings, engine=lambda: self.engine)

    def shared(self, kind: type[T], build: Callable[[AppContext], T]) -> T:
        """The one ``kind`` of this context, built on first use by the area that owns it.

        Areas keep per-process state here (e.g. identity's verified-token cache) so that the
        kernel needs to import no area.
        """
        found = self._shared.get(kind)
        if found is None:
            with self._shared_lock:
                found = self._shared.get(kind)
                if found is None:
                    found = self._shared[kind] = build(self)
        return found  # type: ignore[no-any-return]

    def provide(self, value: object) -> None:
        """Put ``value`` in place of what ``shared(type(value), ...)`` would build (tests, tools)."""
        with self._shared_lock:
            self._shared[type(value)] = value

    @classmethod
    def from_env(cls, pooled: bool = True) -> AppContext:
        return cls(load_settings(), pooled=pooled)
