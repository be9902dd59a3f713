"""Property tests of the report inputs: any uploaded bytes are checked against the real archive without error,
and only an archived file is valid (any one changed byte is found where it is); any month in any time zone is
local midnight to local midnight."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.clock import FrozenClock
from reports import archive, service
from reports.model import Params, month_period
from tests.api.conftest import SITE
from tests.reports.test_archive import NOW

ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


@settings(max_examples=200, deadline=None)
@given(year=st.integers(1971, 2100), month=st.integers(1, 12), zone=st.sampled_from(ZONES))
def test_a_month_is_local_midnight_to_local_midnight(year: int, month: int, zone: str) -> None:
    since, until = month_period(f"{year:04d}-{month:02d}", zone)
    tz = ZoneInfo(zone)
    for edge in (since, until):
        local = edge.astimezone(tz)
        # midnight, or (where a clock change skips midnight, as in some zones' history) the first hour after it
        assert local.day == 1 and local.time() < time(2), local
    assert since.astimezone(tz).month == month
    assert timedelta(days=27) < until - since < timedelta(days=32)


@pytest.fixture(scope="module")
def archived(month_db) -> tuple[str, bytes]:
    url, _ = month_db
    since, until = month_period("2026-03", "Asia/Shanghai")
    with psycopg.connect(url) as conn:
        run = service.create_run(
            conn,
            kind="interlocks",
            params=Params(site=SITE, since=since, until=until),
            formats=["csv"],
            actor="user:admin",
        )
        conn.commit()
    done = service.execute(lambda: psycopg.connect(url), run["id"], clock=FrozenClock(NOW))
    with psycopg.connect(url) as conn:
        content = archive.download(conn, done["files"][0]["id"], actor="user:admin")["content"]
    return url, content


@pytest.mark.db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096))
def test_any_bytes_are_checked_and_only_archived_ones_are_valid(archived, data: bytes) -> None:
    url, content = archived
    with psycopg.connect(url) as conn:
        result = archive.verify(conn, data)
    assert result["valid"] is (data == content)
    assert result["size_bytes"] == len(data) and len(result["sha256"]) == 64


@pytest.mark.db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), flip=st.integers(1, 255))
def test_any_changed_byte_is_found_where_it_is(archived, position: int, flip: int) -> None:
    url, content = archived
    position %= len(content)
    changed = bytearray(content)
    changed[position] ^= flip
    with psycopg.connect(url) as conn:
        file_id = conn.execute("SELECT id FROM report_file WHERE sha256 = %s", (archive.sha256(content),)).fetchone()[0]
        result = archive.verify(conn, bytes(changed), file_id=file_id)
    assert result["valid"] is False and result["differs"]["first_byte"] == position
