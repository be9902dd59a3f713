"""Silence of a safety service is itself an alarm (issue 11, item 3).

Ingest watches the alerts workers' heartbeat and the alerts worker watches ingest's, each from its own process,
so that a dead, stuck or silent process is reported by one that still runs. A *group* is the set of processes
that do the same work: every alerts worker, or the ingest processes owning the same sites (``group`` in their
heartbeat counters). A group is healthy while one of its processes has a fresh heartbeat that names no stuck
part. A process that stops cleanly removes its heartbeat, so only a death leaves one to go stale; a group never
seen is not judged. An unhealthy group raises the critical system alarm ``service.silent`` for each site it
serves (``_service`` when it serves all), through the same lifecycle and notifications as any alarm, and
returns it to normal when a fresh heartbeat is back.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import orjson
import psycopg

from alerts import service, store
from core.db import execute
from core.model import Severity, SubjectRef

SILENT_RULE = "service.silent"
_NAMES = {"ingest": ("数据采集", "ingest"), "alerts": ("报警处理", "alerts worker")}


@dataclass(frozen=True)
class GroupHealth:
    service: str
    group: str
    sites: tuple[str, ...]
    healthy: bool
    reason: str

    @property
    def subjects(self) -> list[SubjectRef]:
        return [SubjectRef(site, None, self.service) for site in self.sites] or [
            SubjectRef("_service", None, self.service)
        ]


def assess(conn: psycopg.Connection, *, service_name: str, stale_s: float) -> list[GroupHealth]:
    """The health of each group of ``service_name`` processes, from their heartbeats."""
    rows = execute(
        conn,
        "SELECT instance, counters, extract(epoch FROM now() - updated_at)::float8 "
        "FROM service_heartbeat WHERE service = %s ORDER BY instance",
        (service_name,),
    ).fetchall()
    groups: dict[str, list[tuple[str, dict, float]]] = defaultdict(list)
    for instance, counters, age in rows:
        counters = counters if isinstance(counters, dict) else orjson.loads(counters)
        groups[str(counters.get("group") or "*")].append((instance, counters, age))
    out = []
    for group, members in sorted(groups.items()):
        problems, healthy = [], False
        for instance, counters, age in members:
            stuck = list(counters.get("stuck") or [])
            if age > stale_s:
                problems.append(
                    f"{instance}: no heartbeat for {age:.0f} s" + (f" (stuck: {', '.join(stuck)})" if stuck else "")
                )
            elif stuck or counters.get("exiting"):
                problems.append(f"{instance}: stuck: {', '.join(stuck or counters['exiting'])}")
            elif float(counters.get("mqtt_disconnected_s") or 0) > stale_s:
                # ingest without its broker receives nothing: no rule runs, no interlock fires
                problems.append(f"{instance}: no MQTT broker for {float(counters['mqtt_disconnected_s']):.0f} s")
            else:
                healthy = True
        sites = tuple(members[0][1].get("sites") or ())
        out.append(GroupHealth(service_name, group, sites, healthy, "; ".join(problems)))
    return out


def watch(
    *, conn: psycopg.Connection, service_name: str, stale_s: float, now: datetime, watcher: str
) -> list[GroupHealth]:
    """Raise ``service.silent`` for each unhealthy group of ``service_name``, clear it for healthy ones."""
    groups = assess(conn, service_name=service_name, stale_s=stale_s)
    zh, en = _NAMES.get(service_name, (service_name, service_name))
    # a site is served if a healthy group owns it (e.g. the restart of a crashed process with other sites)
    covered = {site for g in groups if g.healthy for site in g.sites}
    everything = any(g.healthy and not g.sites for g in groups)
    judged = [
        (g, subject, g.healthy or (bool(g.sites) and (everything or subject.site in covered)))
        for g in groups
        for subject in g.subjects
    ]
    # an open alarm whose group is gone (stopped cleanly, or now split into other sites): judged by what runs now
    keys = {subject.key for _, subject, _ in judged}
    for (source,) in execute(
        conn,
        "SELECT source FROM alarm WHERE rule = %s AND closed_at IS NULL AND condition_active AND device = %s",
        (SILENT_RULE, service_name),
    ).fetchall():
        if source in keys or not groups:
            continue
        site = source.split("/", 1)[0]
        healthy = (everything or site in covered) if site != "_service" else all(g.healthy for g in groups)
        judged.append(
            (
                GroupHealth(service_name, "*", () if site == "_service" else (site,), healthy, ""),
                SubjectRef(site, None, service_name),
                healthy,
            )
        )
    for g, subject, healthy in judged:
        try:
            _judge(conn, g, subject, healthy, now=now, watcher=watcher, names=(zh, en))
        except psycopg.errors.IntegrityError:
            pass  # another watcher (a second alerts worker) raised or cleared it at the same moment
    return groups


def _judge(
    conn: psycopg.Connection,
    g: GroupHealth,
    subject: SubjectRef,
    healthy: bool,
    *,
    now: datetime,
    watcher: str,
    names: tuple[str, str],
) -> None:
    zh, en = names
    with conn.transaction():
        open_alarm = store.fetch_one(
            conn,
            "SELECT id FROM alarm WHERE rule = %s AND source = %s AND closed_at IS NULL AND condition_active",
            (SILENT_RULE, subject.key),
        )
        if healthy == (open_alarm is None):
            return
        where = "every site" if not g.sites else subject.site
        message = (
            f"{en} for {where} is back (heartbeat fresh)"
            if healthy
            else f"{en} for {where} is silent or stuck: {g.reason}"
        )
        service.raise_system_alarm(
            conn=conn,
            rule=SILENT_RULE,
            subject=subject,
            severity=Severity.NORMAL if healthy else Severity.CRITICAL,
            message=message,
            at=now,
            caused_by=f"watch:{watcher}",
            title=f"安全服务无响应: {zh}",
            title_en=f"Safety service silent: {en}",
        )


#: Readings of HJ 212 loggers stored but not relayed to their rules for too long (``ingest.hj212.relay``).
RELAY_RULE = "hj212.relay_backlog"
RELAY_DEVICE = "hj212-relay"


def watch_relay(*, conn: psycopg.Connection, late_s: float, now: datetime, watcher: str) -> dict[str, float]:
    """Raise ``hj212.relay_backlog`` (high) for each site whose oldest unsent relay outbox row is older than
    ``late_s``, and return it to normal once that site's backlog is gone or young again. Read from the outbox
    itself, not from the listener's heartbeat, so a dead listener's backlog is seen too. Returns the late sites
    with the age of their oldest unsent row."""
    late = dict(
        execute(
            conn,
            "SELECT site, extract(epoch FROM now() - min(created_at))::float8 FROM hj212_relay_outbox "
            "WHERE sent_at IS NULL GROUP BY site HAVING min(created_at) < now() - make_interval(secs => %s)",
            (late_s,),
        ).fetchall()
    )
    open_sites = {
        source.split("/", 1)[0]
        for (source,) in execute(
            conn,
            "SELECT source FROM alarm WHERE rule = %s AND closed_at IS NULL AND condition_active",
            (RELAY_RULE,),
        ).fetchall()
    }
    for site in sorted(set(late) ^ open_sites):
        is_late = site in late
        message = (
            f"HJ 212 readings of {site} stored but not relayed to their rules for {late[site]:.0f} s "
            "(is the MQTT broker reachable from the HJ 212 listener?)"
            if is_late
            else f"HJ 212 relay backlog of {site} cleared"
        )
        try:
            with conn.transaction():
                service.raise_system_alarm(
                    conn=conn,
                    rule=RELAY_RULE,
                    subject=SubjectRef(site, None, RELAY_DEVICE),
                    severity=Severity.HIGH if is_late else Severity.NORMAL,
                    message=message,
                    at=now,
                    caused_by=f"watch:{watcher}",
                    title="HJ 212 数据未送达报警规则",
                    title_en="HJ 212 readings not reaching the rules",
                )
        except psycopg.errors.IntegrityError:
            pass  # another watcher raised or cleared it at the same moment
    return late
