"""Database connections: pool factory, one-off connections and the unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool


def connect(url: str, *, autocommit: bool = False, **kwargs) -> psycopg.Connection:
    """Open one connection (for CLI commands, workers and tests)."""
    return psycopg.connect(url, autocommit=autocommit, **kwargs)


def create_pool(url: str, *, min_size: int = 1, max_size: int = 8, name: str = "ehs",
                open_wait: bool = True) -> ConnectionPool:
    """Create a connection pool; rows are dicts so that services can return them as they are."""
    pool = ConnectionPool(
        url, min_size=min_size, max_size=max_size, name=name, open=False,
        kwargs={"row_factory": dict_row},
    )
    pool.open(wait=open_wait, timeout=30)
    return pool


@contextmanager
def unit_of_work(pool: ConnectionPool) -> Iterator[psycopg.Connection]:
    """Yield a connection inside one transaction, committed on success and rolled back on error."""
    with pool.connection() as conn, conn.transaction():
        yield conn


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
