"""Database connections: pool factory, one-off connections and the unit of work."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool

#: Every connection made here has the session time zone UTC, whatever the server's or the role's default, so
#: that timestamps come back in UTC and nothing time-zone dependent leaks in (the query functions bucket
#: explicitly anyway: UTC for minutes and hours, the site's zone for its calendar).
SESSION_OPTIONS = "-c TimeZone=UTC"


def session_options(url: str) -> str:
    """The URL's own ``options`` (such as ``-c role=...``) with the UTC session time zone added, not replaced."""
    from psycopg.conninfo import conninfo_to_dict

    own = str(conninfo_to_dict(url).get("options") or "").strip()
    return f"{own} {SESSION_OPTIONS}" if own else SESSION_OPTIONS


def connect(url: str, *, autocommit: bool = False, **kwargs) -> psycopg.Connection:
    """Open one connection (for CLI commands, workers and tests), session time zone UTC."""
    kwargs.setdefault("options", session_options(url))
    return psycopg.connect(url, autocommit=autocommit, **kwargs)


def create_pool(
    url: str, *, min_size: int = 1, max_size: int = 8, name: str = "ehs", open_wait: bool = True
) -> ConnectionPool:
    """Create a connection pool; rows are dicts so that services can return them as they are."""
    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        kwargs={"row_factory": dict_row, "options": session_options(url)},
    )
    pool.open(wait=open_wait, timeout=30)
    return pool


@contextmanager
def unit_of_work(pool: ConnectionPool) -> Iterator[psycopg.Connection]:
    """Yield a connection inside one transaction, committed on success and rolled back on error."""
    with pool.connection() as conn, conn.transaction():
        yield conn


_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")


class BackgroundConnection:
    """One autocommit connection for a background loop (heartbeats, reloads, workers).

    Opened on demand, closed after a database error and opened again on the next call; a failure is logged
    once, and so is the recovery (STYLE.md B9), with ``purpose`` naming the loop.
    """

    def __init__(self, url: str, *, purpose: str, logger: logging.Logger, level: int = logging.WARNING) -> None:
        self.url = url
        self.purpose = purpose
        self.logger = logger
        self.level = level
        self.failing = False
        self._conn: psycopg.Connection | None = None

    def run(self, work: Callable[[psycopg.Connection], T]) -> T | None:
        """Run ``work`` on the connection; None (and the connection closed) if the database failed."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.url, autocommit=True, connect_timeout=5)
            result = work(self._conn)
        except psycopg.Error as exc:
            if not self.failing:
                self.logger.log(self.level, "%s cannot reach the database: %s", self.purpose, str(exc).strip())
            self.failing = True
            self.close()
            return None
        if self.failing:
            self.logger.info("%s reaches the database again", self.purpose)
        self.failing = False
        return result

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def heartbeat(
    conn: psycopg.Connection, *, service: str, instance: str, started_at: datetime, counters: dict[str, Any]
) -> None:
    """Report a process's counters in ``service_heartbeat`` (read by /readyz and the API)."""
    conn.execute(
        "INSERT INTO service_heartbeat (service, instance, started_at, updated_at, counters) "
        "VALUES (%s, %s, %s, now(), %s) ON CONFLICT (service, instance) DO UPDATE "
        "SET updated_at = now(), counters = excluded.counters",
        (service, instance, started_at, orjson.dumps(counters).decode()),
    )


def last_heartbeat(url: str, *, service: str, instance: str, started_at: datetime, counters: dict[str, Any]) -> None:
    """Best effort, on a connection of its own: a process about to exit names why in its heartbeat."""
    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            conn.execute("SET statement_timeout = '5s'")
            heartbeat(conn, service=service, instance=instance, started_at=started_at, counters=counters)
    except psycopg.Error as exc:
        _LOGGER.warning("could not report the failure in the database: %s", exc)


def sign_off(
    url: str, *, service: str, instance: str, before: Callable[[psycopg.Connection], None] | None = None
) -> None:
    """Best effort: a clean stop removes the process's heartbeat (only a silent death leaves one to go stale)."""
    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            if before is not None:
                before(conn)
            conn.execute("DELETE FROM service_heartbeat WHERE service = %s AND instance = %s", (service, instance))
    except psycopg.Error as exc:
        _LOGGER.warning("could not sign off in the database: %s", exc)


def fetch_all(conn: psycopg.Connection, sql: str, params: Any = None) -> list[dict[str, Any]]:
    """Rows as dicts, whatever the connection's default row factory (the one row helper of every package)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else []


def fetch_one(conn: psycopg.Connection, sql: str, params: Any = None) -> dict[str, Any] | None:
    """The first row as a dict, or None."""
    found = fetch_all(conn, sql, params)
    return found[0] if found else None


def execute(conn: psycopg.Connection, query, params=None) -> psycopg.Cursor:
    """Execute with tuple rows, whatever the connection's default row factory (pooled ones give dicts)."""
    return conn.cursor(row_factory=tuple_row).execute(query, params)


def timescaledb_enabled(conn: psycopg.Connection) -> bool:
    """True when the TimescaleDB extension is installed in this database."""
    row = execute(conn, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None


def redact_url(url: str) -> str:
    """Return the URL with any password replaced, for logs and start-up banners."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    if info.get("password"):
        info["password"] = "***"
    host = info.get("host", "")
    where = f"socket {host}" if host.startswith("/") else f"{host}:{info.get('port', 5432)}"
    return f"postgresql://{info.get('user', '')}@{where}/{info.get('dbname', '')}"
