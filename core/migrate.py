"""Apply the versioned SQL migrations in ``core/migrations`` (yoyo); idempotent, safe to run at every start.

Run as ``ehs migrate`` or ``python -m core.migrate`` (docker-compose's one-shot migrate service).
Numbering: 0001-0009 the spine, 0010-0019 alarms, 0020-0029 API and audit, 0030-0039 notifications,
0040-0049 detectors, 0050-0069 energy, carbon and hazardous waste, 0070-0079 HJ 212 and compliance, 0080-0089
reports, 0090-0099 storage of readings (partitions, rollup bookkeeping).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from core import storage
from core.db import connect

_LOGGER = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class MigrationReport:
    applied: list[str]
    already: int
    timescaledb: bool
    #: which storage features are on (``core.storage.Features.describe``)
    features: str = ""


def _yoyo_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        raise ValueError("the database URL must look like postgresql://user:password@host:port/dbname")
    return "postgresql+psycopg://" + rest


def migrate(url: str, *, settings=None) -> MigrationReport:
    """Apply pending migrations under yoyo's lock, then the settings-dependent storage: TimescaleDB policies
    (each replaced atomically) and, on plain PostgreSQL, the daily partitions ahead."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(_yoyo_url(url))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()
    applied = [m.id for m in pending]
    for mid in applied:
        _LOGGER.info("applied migration %s", mid)
    with connect(url, autocommit=True) as conn:
        features = storage.detect(conn)
        if settings is not None:
            for change in storage.apply_policies(
                conn,
                retention_days=settings.retention_days,
                compress_after_days=settings.compress_after_days,
                features=features,
            ):
                _LOGGER.info("TimescaleDB policy set: %s", change)
        if features.partitions:
            storage.maintain(conn, now=datetime.now(UTC), retention_days=None, features=features)
    return MigrationReport(
        applied, len(migrations) - len(applied), features.timescaledb is not None, features.describe()
    )


def apply_timescale_policies(conn: psycopg.Connection, *, retention_days: int, compress_after_days: int) -> None:
    """Set retention and compression policies from settings (see ``core.storage.apply_policies``)."""
    storage.apply_policies(conn, retention_days=retention_days, compress_after_days=compress_after_days)


def main() -> None:
    from core.settings import get_settings

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    if not settings.database_url:
        raise SystemExit("python -m core.migrate needs EHS_DATABASE_URL; use `ehs migrate` for the embedded database")
    report = migrate(settings.database_url, settings=settings)
    _LOGGER.info("%d applied, %d already applied; TimescaleDB %s", len(report.applied), report.already, report.features)


if __name__ == "__main__":
    main()
