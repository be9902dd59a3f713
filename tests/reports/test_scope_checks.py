"""The report domain checks the caller's scope itself (issue 18 item 4): ``service.request_run`` refuses a site
outside the scope (403), an alarm the caller may not see (404, as if it did not exist) and a period report of
an area-limited caller that does not name its areas within the scope (403); ``get_run_in_scope`` hides other
sites' runs. The refusals are core.errors.DomainError with the status the API answers."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from core import errors
from core.db import fetch_one
from core.scope import CodeScope
from reports import service
from tests.api.conftest import SITE

pytestmark = pytest.mark.db
NOW = datetime(2026, 4, 2, tzinfo=UTC)


def _ask(conn: psycopg.Connection, scope: CodeScope, **kw) -> dict:
    return service.request_run(conn, scope, formats=["csv"], actor="user:test", now=NOW, **kw)


def test_a_run_outside_the_scope_is_refused_with_the_apis_status(month_db) -> None:
    url, ids = month_db
    with psycopg.connect(url) as conn, conn.transaction(force_rollback=True):
        with pytest.raises(errors.Forbidden) as other_site:
            _ask(conn, CodeScope(["elsewhere"], None), kind="alarm_month", site=SITE, month="2026-03")
        assert other_site.value.status == 403 and SITE in str(other_site.value)
        with pytest.raises(errors.DomainError) as hidden:
            _ask(conn, CodeScope(["elsewhere"], None), kind="incident", alarm_id=ids["a"])
        assert hidden.value.status == 404 and str(hidden.value) == f"no alarm {ids['a']}"
        limited = CodeScope([SITE], [f"{SITE}/wastewater"])
        for areas in (None, ["formation"], ["wastewater", "formation"]):
            with pytest.raises(errors.Forbidden):
                _ask(conn, limited, kind="alarm_month", site=SITE, month="2026-03", areas=areas)
        with pytest.raises(errors.DomainError) as unknown:
            _ask(conn, CodeScope.everything(), kind="alarm_month", site="no-such-site", month="2026-03")
        assert unknown.value.status == 404
        assert fetch_one(conn, "SELECT count(*) AS n FROM report_run")["n"] == 0


def test_a_run_in_scope_is_queued_and_seen_only_in_its_sites_scope(month_db) -> None:
    url, ids = month_db
    with psycopg.connect(url) as conn, conn.transaction(force_rollback=True):
        mine = CodeScope([SITE], [f"{SITE}/wastewater"])
        run = _ask(conn, mine, kind="alarm_month", site=SITE, month="2026-03", areas=["wastewater"])
        assert run["status"] == "queued" and run["site"] == SITE and run["formats"] == ["csv"]
        incident = _ask(conn, CodeScope([SITE], None), kind="incident", alarm_id=ids["a"])
        assert incident["kind"] == "incident"
        assert service.get_run_in_scope(conn, mine, run["id"])["id"] == run["id"]
        with pytest.raises(errors.DomainError) as hidden:
            service.get_run_in_scope(conn, CodeScope(["elsewhere"], None), run["id"])
        assert hidden.value.status == 404 and str(hidden.value) == f"no report run {run['id']}"
