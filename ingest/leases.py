"""Site ownership of ingest processes: one process evaluates each site (issue 11, scale-out).

A process claims its sites (``EHS_INGEST_SITES``; ``'*'`` when it owns every site) in ``ingest_site_lease`` at
start, renews the claim with its heartbeat and gives it back when it stops. A claim that overlaps a live lease
of another owner is refused with a message naming the owner, so two processes never split one site's data.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg

from core.db import execute

ALL = "*"


class SiteLeaseRefused(RuntimeError):
    """Another ingest process owns (some of) the sites this one was asked to own."""


def claim(conn: psycopg.Connection, *, owner: str, instance: str, sites: list[str] | None, ttl: timedelta) -> None:
    """Take the leases of ``sites`` (every site when None) for ``owner``, or raise ``SiteLeaseRefused``."""
    wanted = sorted(sites) if sites else [ALL]
    with conn.transaction():
        # one claim at a time: two processes starting together cannot both see the other's sites as free
        conn.execute("LOCK TABLE ingest_site_lease IN SHARE ROW EXCLUSIVE MODE")
        conn.execute("DELETE FROM ingest_site_lease WHERE expires_at < now()")
        taken = execute(
            conn,
            "SELECT site, owner, instance, expires_at FROM ingest_site_lease WHERE owner <> %s "
            "AND (site = ANY(%s) OR site = %s OR %s) ORDER BY site",
            (owner, wanted, ALL, wanted == [ALL]),
        ).fetchall()
        if taken:
            held = "; ".join(
                f"{'every site' if site == ALL else 'site ' + site} by {o} ({inst}, lease until "
                f"{until:%Y-%m-%d %H:%M:%S %Z})"
                for site, o, inst, until in taken
            )
            mine = "every site" if wanted == [ALL] else "sites " + ", ".join(wanted)
            raise SiteLeaseRefused(
                f"ingest {owner} cannot own {mine}: already owned: {held}. Each site must be evaluated by one "
                "ingest process (stateful rules need all of its readings): give the processes disjoint "
                "EHS_INGEST_SITES, or stop the other process (a crashed one's lease ends after EHS_INGEST_LEASE_S)"
            )
        conn.execute("DELETE FROM ingest_site_lease WHERE owner = %s", (owner,))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ingest_site_lease (site, owner, instance, expires_at) VALUES (%s, %s, %s, now() + %s)",
                [(site, owner, instance, ttl) for site in wanted],
            )


def renew(conn: psycopg.Connection, *, owner: str, instance: str, sites: list[str] | None, ttl: timedelta) -> bool:
    """Extend this owner's leases; False if one of them was lost (it ran out and another process took it)."""
    wanted = sorted(sites) if sites else [ALL]
    rows = execute(
        conn,
        "UPDATE ingest_site_lease SET expires_at = now() + %s, instance = %s WHERE owner = %s "
        "AND site = ANY(%s) RETURNING site",
        (ttl, instance, owner, wanted),
    ).fetchall()
    return len(rows) == len(wanted)


def release(conn: psycopg.Connection, *, owner: str) -> None:
    """Give the leases back (a clean stop)."""
    conn.execute("DELETE FROM ingest_site_lease WHERE owner = %s", (owner,))
