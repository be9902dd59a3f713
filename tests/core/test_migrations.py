"""Migrations apply on an empty database and a second run changes nothing."""

from __future__ import annotations

import psycopg
import pytest

from core.migrate import migrate

_SCHEMA = """
    SELECT table_name || '.' || column_name || ':' || data_type || ':' || is_nullable
    FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL SELECT 'index:' || indexname || ':' || indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL SELECT 'constraint:' || conname || ':' || pg_get_constraintdef(oid) FROM pg_constraint
      WHERE connamespace = 'public'::regnamespace
    ORDER BY 1"""


def _schema(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(_SCHEMA).fetchall() if "_yoyo" not in r[0] and "yoyo_lock" not in r[0]]


@pytest.mark.db
def test_migrations_apply_twice_without_change(pg_admin_url: str) -> None:
    import uuid

    from core.embedded import with_dbname

    name = f"ehs_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_dbname(pg_admin_url, name)
    try:
        first = migrate(url)
        assert first.applied[:3] == ["0001_registry", "0002_readings", "0003_ingest"]
        before = _schema(url)
        second = migrate(url)
        assert second.applied == [] and second.already == len(first.applied)
        assert _schema(url) == before
        assert any(line.startswith("index:reading_time_brin") for line in before) != first.timescaledb
        assert any(line.startswith("reading_1m.value_count") for line in before)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_a_bad_database_url_is_refused() -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        migrate("mysql://localhost/x")
