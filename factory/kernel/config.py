"""Runtime configuration from the environment.

``FACTORY_HOME`` holds the embedded database, the site signing key and job work areas;
``FACTORY_DATABASE_URL`` points at PostgreSQL for multi-bench, multi-site use;
``FACTORY_TOKEN_CACHE_SECONDS`` bounds how long an API process trusts a verified token before
checking it again (see ``factory/identity/token_cache.py``); ``factory/kernel/capacity.py`` reads
the admission queue and database pool sizes; ``FACTORY_TOKEN_DAYS`` is how long a
newly issued API token works (1-3650 days, default 90); ``FACTORY_METRICS_TOKEN_FILE`` names a
file holding a token that may read ``/metrics`` and nothing else (api/routes/metrics.py);
``FACTORY_ORGANISATION`` and ``FACTORY_DATA_CLASSIFICATION`` are what certificates state about who
sanitised and what the data was (``FACTORY_SITE`` names the site).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_data_dir

from factory.kernel.capacity import Capacity, load_capacity

TOKEN_CACHE_SECONDS = 2.0  # default bound on how late a token revocation or role change takes effect
TOKEN_DAYS = 90  # default lifetime of a newly issued API token
# Certificates name the organisation and site from configuration; a real line refuses to start
# under this placeholder (FACTORY_ORGANISATION must name the force).
DEFAULT_ORGANISATION = "device-factory"
DEFAULT_DATA_CLASSIFICATION = "OFFICIAL"  # UK Government Security Classification of returned devices' data


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    site_name: str
    token_cache_seconds: float = TOKEN_CACHE_SECONDS
    capacity: Capacity = field(default_factory=Capacity)  # admission queue and database pool
    token_days: int = TOKEN_DAYS
    metrics_token_file: Path | None = None  # a scrape-only token for /metrics
    organisation: str = DEFAULT_ORGANISATION  # FACTORY_ORGANISATION: who signs certificates
    data_classification: str = DEFAULT_DATA_CLASSIFICATION  # FACTORY_DATA_CLASSIFICATION

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def private_key_path(self) -> Path:
        return self.keys_dir / "site-signing-key.pem"

    @property
    def public_key_path(self) -> Path:
        return self.keys_dir / "site-signing-key.pub.pem"

    @property
    def work_dir(self) -> Path:
        return self.home / "work"

    @property
    def certificates_dir(self) -> Path:
        return self.home / "certificates"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings() -> Settings:
    home = Path(os.environ.get("FACTORY_HOME") or user_data_dir("device-factory", appauthor=False))
    url = os.environ.get("FACTORY_DATABASE_URL") or f"sqlite:///{home / 'factory.db'}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        # psycopg 3 is the only PostgreSQL driver we ship.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return Settings(
        home=home,
        database_url=url,
        site_name=os.environ.get("FACTORY_SITE", "device-factory"),
        token_cache_seconds=_seconds("FACTORY_TOKEN_CACHE_SECONDS", TOKEN_CACHE_SECONDS),
        capacity=load_capacity(),
        token_days=_days("FACTORY_TOKEN_DAYS", TOKEN_DAYS),
        metrics_token_file=Path(raw) if (raw := os.environ.get("FACTORY_METRICS_TOKEN_FILE", "").strip()) else None,
        organisation=os.environ.get("FACTORY_ORGANISATION", "").strip() or DEFAULT_ORGANISATION,
        data_classification=os.environ.get("FACTORY_DATA_CLASSIFICATION", "").strip() or DEFAULT_DATA_CLASSIFICATION,
    )


def _days(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 3650:
        raise ValueError(f"{name} must be a whole number of days from 1 to 3650, not '{raw[:20]}'")
    return int(raw)


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not '{raw}'") from None
    if not 0 <= value <= 60:
        raise ValueError(f"{name} must be between 0 and 60 seconds, not {value}")
    return value
