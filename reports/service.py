"""Report runs: a request becomes a ``report_run`` row (queued), then is built and rendered with its progress
recorded as it goes, and its files are archived (reports/archive.py) in one transaction with the run marked done.
Generation reads one consistent snapshot of the database (REPEATABLE READ, read only), so every figure of a
report and its data revision belong to the same moment."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import psycopg

from core.clock import Clock
from core.errors import Forbidden
from core.scope import CodeScope, check_site
from reports import archive
from reports.context import NotFound, ReportError, areas_of, load_site, one, rows
from reports.kinds.incident import window
from reports.model import Params, day_period, month_period
from reports.registry import KINDS
from reports.render import FORMATS

_LOGGER = logging.getLogger(__name__)

#: The longest period of one report (a year, leap years included).
MAX_PERIOD = timedelta(days=366)

Connect = Callable[[], AbstractContextManager[psycopg.Connection]]


def make_params(
    conn: psycopg.Connection,
    *,
    kind: str,
    site: str | None = None,
    month: str | None = None,
    day: date | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    areas: Sequence[str] | None = None,
    lang: str = "zh-CN",
    alarm_id: int | None = None,
    flood_id: int | None = None,
    now: datetime,
) -> Params:
    """The parameters of a report from what a person or a schedule asked: a month or a day (in the site's time
    zone) or ``since``/``until`` for period reports, an alarm or a flood for incident reports."""
    spec = KINDS.get(kind)
    if spec is None:
        raise ReportError(f"unknown report {kind!r}; known: {', '.join(KINDS)}")
    try:
        if spec.subject == "incident":
            if (alarm_id is None) == (flood_id is None):
                raise ReportError("an incident report needs an alarm or a flood (one of them)")
            found, start, stop = window(conn, alarm_id=alarm_id, flood_id=flood_id, now=now)
            if site is not None and site != found:
                raise NotFound(f"no {'alarm' if alarm_id else 'flood'} {alarm_id or flood_id} at site {site}")
            return Params(
                site=found, since=start, until=stop, lang=lang, alarm_id=alarm_id, flood_id=flood_id, areas=None
            )
        if site is None:
            raise ReportError("a period report needs a site")
        found_site = load_site(conn, site)
        tz = found_site.timezone
        if month is not None and day is not None:
            raise ReportError("give a month or a day, not both")
        if month is not None or day is not None:
            if since is not None or until is not None:
                raise ReportError("give a month or a day, or since and until, not both")
            since, until = month_period(month, tz) if month is not None else day_period(day, tz)
        if since is None or until is None:
            raise ReportError("a period report needs a month, or since and until")
        params = Params(site=site, since=since, until=until, areas=tuple(areas) if areas else None, lang=lang)
        if params.until - params.since > MAX_PERIOD:
            raise ReportError(f"a report covers at most {MAX_PERIOD.days} days")
        areas_of(found_site, params)  # unknown areas are refused now, not in the background
        return params
    except ValueError as exc:
        raise ReportError(str(exc)) from None


def create_run(
    conn: psycopg.Connection,
    *,
    kind: str,
    params: Params,
    formats: Sequence[str],
    actor: str,
    schedule: str | None = None,
) -> dict[str, Any]:
    """Queue a run (in the caller's transaction)."""
    unknown = sorted(set(formats) - set(FORMATS))
    if not formats or unknown:
        raise ReportError(f"formats must be some of {', '.join(FORMATS)}")
    return one(
        conn,
        "INSERT INTO report_run (kind, site, params, formats, requested_by, schedule) VALUES "
        "(%s, %s, %s, %s, %s, %s) RETURNING *",
        (kind, params.site, orjson.dumps(params.as_json()).decode(), list(dict.fromkeys(formats)), actor, schedule),
    )


def get_run(conn: psycopg.Connection, run_id: int) -> dict[str, Any]:
    run = one(conn, "SELECT * FROM report_run WHERE id = %s", (run_id,))
    if run is None:
        raise NotFound(f"no report run {run_id}")
    run["files"] = rows(
        conn,
        f"SELECT {archive._SELECT} FROM report_file WHERE run_id = %s ORDER BY id",  # noqa: S608
        (run_id,),
    )
    return run


def _check_areas(scope: CodeScope, site: str, areas: Sequence[str]) -> None:
    """A report may be asked for only about what the caller may see: their sites, and for callers limited to
    some areas, those areas named explicitly."""
    if scope.sites is not None and site not in scope.sites:
        raise Forbidden(f"site {site!r} is not in your scope")
    if scope.areas is not None and (not areas or not all(f"{site}/{a}" in scope.areas for a in areas)):
        raise Forbidden("name the areas of the report, all within your scope")


def request_run(
    conn: psycopg.Connection,
    scope: CodeScope,
    *,
    kind: str,
    site: str | None = None,
    month: str | None = None,
    day: date | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    areas: Sequence[str] | None = None,
    lang: str = "zh-CN",
    alarm_id: int | None = None,
    flood_id: int | None = None,
    formats: Sequence[str],
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Queue a run a caller in ``scope`` asked for (in the caller's transaction): a site outside the scope is
    refused (403), an alarm or flood the caller may not see is not found (404), and a period report of a caller
    limited to some areas must name them, all within the scope (403)."""
    check_site(conn, scope, site)
    params = make_params(
        conn,
        kind=kind,
        site=site,
        month=month,
        day=day,
        since=since,
        until=until,
        areas=areas,
        lang=lang,
        alarm_id=alarm_id,
        flood_id=flood_id,
        now=now,
    )
    if params.alarm_id or params.flood_id:
        table, key = ("alarm", params.alarm_id) if params.alarm_id else ("alarm_flood", params.flood_id)
        row = one(conn, f"SELECT site, area FROM {table} WHERE id = %s", (key,))  # noqa: S608
        if row is None or not scope.sees(row["site"], row["area"]):
            raise NotFound(f"no {'alarm' if params.alarm_id else 'flood'} {key}")
    else:
        _check_areas(scope, params.site, list(params.areas or []))
    return create_run(conn, kind=kind, params=params, formats=formats, actor=actor)


def get_run_in_scope(conn: psycopg.Connection, scope: CodeScope, run_id: int) -> dict[str, Any]:
    """A run and its files, if it is of a site in ``scope`` (else, or unknown: NotFound)."""
    try:
        run = get_run(conn, run_id)
    except NotFound:
        run = None
    if run is None or (scope.sites is not None and run["site"] not in scope.sites):
        raise NotFound(f"no report run {run_id}")
    return run


def _progress(connect: Connect, run_id: int, progress: float, step: str) -> None:
    with connect() as conn:
        conn.execute("UPDATE report_run SET progress = %s, step = %s WHERE id = %s", (progress, step, run_id))
        conn.commit()


def execute(connect: Connect, run_id: int, *, clock: Clock) -> dict[str, Any]:
    """Build, render and archive a queued run; record progress and the outcome. Returns the run.

    A run that fails is marked failed with its error (and logged); nothing of it is archived.
    """
    with connect() as conn:
        run = one(
            conn,
            "UPDATE report_run SET status = 'running', started_at = %s, step = 'query' "
            "WHERE id = %s AND status = 'queued' RETURNING *",
            (clock.now(), run_id),
        )
        conn.commit()
    if run is None:
        with connect() as conn:
            return get_run(conn, run_id)
    try:
        params = Params.from_json(run["params"])
        with connect() as conn, conn.transaction(force_rollback=True):
            # one snapshot for every query of the report (scoped to this transaction: pooled connections stay as
            # they were)
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            doc = KINDS[run["kind"]].build(conn, params, clock.now())
        rendered: list[tuple[str, bytes]] = []
        for n, fmt in enumerate(run["formats"]):
            _progress(connect, run_id, 0.3 + 0.6 * n / len(run["formats"]), f"render {fmt}")
            rendered.append((fmt, FORMATS[fmt].render(doc)))
        with connect() as conn, conn.transaction():
            for fmt, content in rendered:
                archive.store(conn, doc=doc, fmt=fmt, content=content, actor=run["requested_by"], run_id=run_id)
            conn.execute(
                "UPDATE report_run SET status = 'done', progress = 1, step = 'done', finished_at = %s WHERE id = %s",
                (clock.now(), run_id),
            )
    except Exception as exc:  # noqa: BLE001 - a run records why it failed, whatever it was
        if isinstance(exc, ReportError):
            _LOGGER.warning("report run %s (%s) refused: %s", run_id, run["kind"], exc)
        else:
            _LOGGER.exception("report run %s (%s) failed", run_id, run["kind"])
        message = str(exc) if isinstance(exc, ReportError) else f"{type(exc).__name__}: {exc}"
        with connect() as conn:
            conn.execute(
                "UPDATE report_run SET status = 'failed', error = %s, step = 'failed', finished_at = %s WHERE id = %s",
                (message[:2000], clock.now(), run_id),
            )
            conn.commit()
    with connect() as conn:
        return get_run(conn, run_id)
