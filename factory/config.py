"""Runtime configuration from the environment.

``FACTORY_HOME`` holds the embedded database, the site signing key and job work areas;
``FACTORY_DATABASE_URL`` points at PostgreSQL for multi-bench, multi-site use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    site_name: str

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
    return Settings(home=home, database_url=url, site_name=os.environ.get("FACTORY_SITE", "device-factory"))
