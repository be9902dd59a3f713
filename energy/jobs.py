"""The periodic energy work of one run: counters to intervals, days and months, then output counters to daily
production (``python -m energy``, ``ehs energy refresh``)."""

from __future__ import annotations

from datetime import datetime

import psycopg

from energy import gapfill, intervals
from energy.production import refresh_production


def refresh(conn: psycopg.Connection, *, now: datetime, site: str | None = None) -> intervals.RefreshSummary:
    """Intervals (late readings included) and production, in the caller's transaction."""
    done = intervals.refresh(conn, now=now, site=site, fill=gapfill.distribute)
    done.production_days = refresh_production(conn, now=now, site=site, late=done.late)
    return done
