"""The services' database role cannot rewrite the audit record (``ehs db roles``); ``ehs audit verify`` gives the
same answer in any session time zone and names a rewritten entry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from typer.testing import CliRunner

from core import audit
from core.roles import check_service_role, setup_service_role

pytestmark = pytest.mark.db


@pytest.fixture
def service_role(database_url: str) -> Iterator[str]:
    role = f"ehs_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url) as conn:
        setup_service_role(conn, role=role)
    yield role
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


def test_the_service_role_appends_but_cannot_rewrite_the_record(database_url: str, service_role: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert check_service_role(conn, role=service_role) == []
        conn.execute(f"SET ROLE {service_role}")
        audit.append(conn, actor="user:op", action="alarm.ack", target="alarm:1", site="s1", area="formation")
        conn.execute("INSERT INTO site (code, name) VALUES ('r1', 'r')")  # ordinary work still works
        conn.commit()
        for attack in (
            "ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only",
            "UPDATE audit_entry SET actor = 'x'",
            "DELETE FROM audit_entry",
            "TRUNCATE audit_entry",
            "DROP TABLE audit_entry",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(attack)
            conn.rollback()
            conn.execute(f"SET ROLE {service_role}")
        assert audit.verify(conn) == (1, [])


def test_a_service_role_that_owns_the_record_is_reported(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'audit_entry'").fetchone()[0]
        with pytest.raises(ValueError, match="must not be the owner"):
            setup_service_role(conn, role=owner)
        assert check_service_role(conn, role=owner)


def _cli(monkeypatch: pytest.MonkeyPatch, url: str, zone: str, tmp_path, *args: str):
    from cli.main import app
    from core.settings import get_settings

    monkeypatch.setenv("EHS_DATABASE_URL", url)
    monkeypatch.setenv("EHS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PGTZ", zone)  # libpq sets the session time zone from it
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["audit", *args])
    finally:
        get_settings.cache_clear()


def test_ehs_audit_verify_gives_the_same_answer_in_any_time_zone(
    database_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(database_url, options="-c TimeZone=Asia/Shanghai") as conn:
        for i in range(4):
            audit.append(conn, actor=f"user:u{i}", action="alarm.ack", target=f"alarm:{i}", detail={"i": i})
    for zone in ("Asia/Shanghai", "UTC", "America/Los_Angeles"):
        result = _cli(monkeypatch, database_url, zone, tmp_path, "verify")
        assert result.exit_code == 0 and "intact: 4 entries" in result.output, (zone, result.output)
    assert _cli(monkeypatch, database_url, "UTC", tmp_path, "anchor").exit_code == 0
    with psycopg.connect(database_url, autocommit=True) as conn:  # a superuser rewrites entry 2
        conn.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")
        conn.execute("UPDATE audit_entry SET actor = 'user:nobody' WHERE seq = 2")
        conn.execute("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only")
    for zone in ("Asia/Shanghai", "UTC"):
        result = _cli(monkeypatch, database_url, zone, tmp_path, "verify")
        assert result.exit_code == 1 and "seq 2: entry 2 (alarm.ack by user:nobody) was changed" in result.output
