"""A fresh, uniquely named PostgreSQL database on a running server, dropped at the end."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

DEFAULT_POSTGRES_ADMIN_URL = os.environ.get("CERTPANEL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and url.split("://", 1)[0] in ("postgres", "postgresql")


def postgres_available(admin_url: str = DEFAULT_POSTGRES_ADMIN_URL) -> bool:
    try:
        import psycopg

        with psycopg.connect(admin_url, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


class TemporaryPostgresDatabase:
    """CREATE DATABASE certpanel_e2e_<random> on the server of `admin_url`; `url` points at it."""

    def __init__(self, admin_url: str = DEFAULT_POSTGRES_ADMIN_URL, prefix: str = "certpanel_e2e"):
        self.admin_url = admin_url
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        parts = urlsplit(admin_url)
        self.url = urlunsplit((parts.scheme, parts.netloc, "/" + self.name, parts.query, ""))
        self.created = False

    def _execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def create(self) -> "TemporaryPostgresDatabase":
        self._execute(f'CREATE DATABASE "{self.name}"')
        self.created = True
        return self

    def drop(self) -> None:
        if self.created:
            # FORCE (PostgreSQL 13+) ends the web's and worker's leftover connections.
            self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False
