"""Where carbon gets its activity data: the ``ActivitySource`` protocol, its production implementation on the
energy ledgers (``energy.ledger.ledger``, imported lazily so that carbon runs without it) and a source built from
given rows (tests, benchmarks, imports of another system's figures)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

import psycopg

from carbon.ledger import SITE, Activity


class SourceUnavailable(RuntimeError):
    """The energy ledgers are not installed or cannot answer."""


class ActivitySource(Protocol):
    def __call__(
        self, conn: psycopg.Connection, *, site: str, start: datetime, end: datetime, bucket: str, by: str
    ) -> list[Activity]:
        """Activity quantities per (area, medium, bucket) for ``by="area"``, per meter code for ``by="meter"``;
        the site meter's for ``by="site"`` (key ``SITE``). ``start``/``end`` are UTC instants, ``bucket`` one of
        the energy ledger's."""
        ...


def energy_ledger_source(
    conn: psycopg.Connection, *, site: str, start: datetime, end: datetime, bucket: str, by: str
) -> list[Activity]:
    """Activity data from ``energy.ledger.ledger`` (the shared interface of the energy work)."""
    try:
        module = importlib.import_module("energy.ledger")
    except ModuleNotFoundError as exc:
        raise SourceUnavailable("the energy ledgers (energy.ledger) are not installed") from exc
    rows = module.ledger(conn, site=site, start=start, end=end, bucket=bucket, by=by)
    return [
        Activity(r.key if by in ("area", "meter") else SITE, r.medium, r.bucket_start, float(r.quantity), r.unit)
        for r in rows
        if r.quantity is not None
    ]


class RowsSource:
    """A source over given rows: ``(by, Activity)`` pairs; answers the rows of ``by`` in ``[start, end)``."""

    def __init__(self, rows: Iterable[tuple[str, Activity]]) -> None:
        self.rows = list(rows)

    def __call__(
        self, conn: psycopg.Connection | None, *, site: str, start: datetime, end: datetime, bucket: str, by: str
    ) -> list[Activity]:
        return [a for b, a in self.rows if b == by and start <= a.bucket_start < end]
