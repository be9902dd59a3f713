"""The live feed behind ``/api/v1/ws``: one LISTEN task fans committed readings and alarm events out to sessions.

Readings are coalesced per point (the latest value wins) and pushed at most once per point per
``ws_reading_interval_s``; a slow client therefore loses old readings, never the newest. Alarm events are
queued per session and always delivered in order; a client so slow that ``ws_alarm_queue`` events wait is
disconnected with a reason rather than fed a partial record. After the LISTEN connection is lost and
regained, every session is told there was a gap (alarm events may have been missed) and gets fresh values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool

from api.policy import Principal
from api.settings import ApiSettings
from core import channels

_LOGGER = logging.getLogger(__name__)

_LATEST = """
    SELECT p.id, r.time, r.value, r.quality FROM unnest(%s::int[]) AS p(id)
    CROSS JOIN LATERAL (SELECT time, value, quality FROM reading
                        WHERE point_id = p.id ORDER BY time DESC LIMIT 1) r"""
#: Readings per WebSocket message (a whole site may be thousands of points).
CHUNK = 1000
GAP = "the server lost its database connection for a while; alarm events may have been missed: reload them"


@dataclass
class Registry:
    """What the hub needs of the plant registry to route and scope: points, areas, sites."""

    points: dict[int, tuple[int, int, str]] = field(default_factory=dict)   # id -> (site, area, process)
    areas: dict[int, tuple[int, str]] = field(default_factory=dict)         # id -> (site, process)
    sites: dict[str, int] = field(default_factory=dict)                     # code -> id
    area_codes: dict[tuple[int, str], int] = field(default_factory=dict)    # (site, code) -> id
    by_site: dict[int, set[int]] = field(default_factory=dict, init=False)
    by_area: dict[int, set[int]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for pid, (site, area, _) in self.points.items():
            self.by_site.setdefault(site, set()).add(pid)
            self.by_area.setdefault(area, set()).add(pid)

    def visible_point(self, principal: Principal, point_id: int) -> bool:
        info = self.points.get(point_id)
        return info is not None and principal.scope.has_site(info[0]) and principal.scope.has_process(info[2])

    def visible_area(self, principal: Principal, area_id: int) -> bool:
        info = self.areas.get(area_id)
        return info is not None and principal.scope.has_site(info[0]) and principal.scope.has_process(info[1])


class Session:
    """One WebSocket client: its subscriptions and what waits to be sent to it."""

    def __init__(self, principal: Principal, *, alarm_capacity: int) -> None:
        self.principal = principal
        self.sites: set[int] = set()
        self.areas: set[int] = set()
        self.explicit_points: set[int] = set()
        self.alarm_sites: set[int] = set()
        self.alarm_all = False
        self.points: set[int] = set()
        self._capacity = alarm_capacity
        self._readings: dict[int, dict[str, Any]] = {}
        self._alarms: deque[dict[str, Any]] = deque()
        self._control: deque[dict[str, Any]] = deque(maxlen=100)
        self._wake = asyncio.Event()
        #: set when the client is too slow even for alarm events: the connection is closed at once
        self.gone = asyncio.Event()
        self.overflow: str | None = None
        self.coalesced = 0

    def resolve(self, registry: Registry) -> set[int]:
        """Recompute the subscribed points from sites, areas and points (the registry may have changed)."""
        candidates = set(self.explicit_points)
        for site in self.sites:
            candidates |= registry.by_site.get(site, set())
        for area in self.areas:
            candidates |= registry.by_area.get(area, set())
        points = {pid for pid in candidates if registry.visible_point(self.principal, pid)}
        self.points = points
        return points

    def offer_readings(self, rows: list[dict[str, Any]]) -> None:
        offered = False
        for row in rows:
            pid = row["point_id"]
            if pid in self.points:
                if pid in self._readings:
                    self.coalesced += 1       # an older value this client had not received yet: dropped
                self._readings[pid] = row
                offered = True
        if offered:
            self._wake.set()

    def offer_alarm(self, event: dict[str, Any]) -> None:
        if self.overflow:
            return
        if len(self._alarms) >= self._capacity:
            self.overflow = (f"too slow: {len(self._alarms)} alarm events were waiting; reconnect and "
                             "reload the alarms")
            self._alarms.clear()
            self.gone.set()
        else:
            self._alarms.append(event)
        self._wake.set()

    def offer_control(self, message: dict[str, Any]) -> None:
        self._control.append(message)
        self._wake.set()

    async def next_messages(self) -> list[dict[str, Any]]:
        """Wait for something to send; control messages first, then alarm events in order, then readings."""
        await self._wake.wait()
        self._wake.clear()
        out = list(self._control)
        self._control.clear()
        out += [{"type": "alarm", "event": event} for event in self._alarms]
        self._alarms.clear()
        if self._readings:
            items = list(self._readings.values())
            self._readings.clear()
            out += [{"type": "readings", "items": items[i:i + CHUNK]} for i in range(0, len(items), CHUNK)]
        return out

    def wants_alarm(self, registry: Registry, event: dict[str, Any]) -> bool:
        site = registry.sites.get(event.get("site")) if isinstance(event.get("site"), str) else None
        if site is None or not (self.alarm_all or site in self.alarm_sites) or not self.principal.scope.has_site(site):
            return False
        if self.principal.scope.processes is None:
            return True
        area = registry.area_codes.get((site, event.get("area")))
        return area is not None and registry.visible_area(self.principal, area)


class Hub:
    """Owns the LISTEN connection, the registry cache, and every session."""

    def __init__(self, database_url: str, settings: ApiSettings) -> None:
        self.database_url = database_url
        self.settings = settings
        self.registry = Registry()
        self.sessions: set[Session] = set()
        self.connected = asyncio.Event()
        self._subscribed: Counter[int] = Counter()
        self._dirty: set[int] = set()
        self._dirty_event = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._pool: AsyncConnectionPool | None = None
        self.counters: Counter[str] = Counter()

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._pool = AsyncConnectionPool(self.database_url, min_size=1, max_size=2, open=False, name="api-live")
        await self._pool.open(wait=False)
        self._tasks = [asyncio.create_task(self._listen(), name="live-listen"),
                       asyncio.create_task(self._flush(), name="live-flush")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pool is not None:
            await self._pool.close()

    # --- sessions ------------------------------------------------------------------------------------------------

    def add(self, session: Session) -> None:
        self.sessions.add(session)

    def remove(self, session: Session) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            self._subscribed.subtract(session.points)
            self._subscribed += Counter()           # drop the zero counts

    def update_subscription(self, session: Session) -> set[int]:
        """Re-resolve a session's points after it (un)subscribed; return the points that are new to it."""
        before = set(session.points)
        after = session.resolve(self.registry)
        self._subscribed.subtract(before - after)
        self._subscribed.update(after - before)
        self._subscribed += Counter()
        return after - before

    def subscribe(self, session: Session, message: dict[str, Any], *, add: bool) -> tuple[set[int], list[str]]:
        """Apply a subscribe/unsubscribe message; return the newly subscribed points and the refusals.

        ``sites`` are site codes, ``areas`` and ``points`` ids, ``alarms`` site codes or ``"*"`` (every site
        in the caller's scope). Items outside the caller's scope are refused one by one, never silently.
        """
        reg, principal, errors = self.registry, session.principal, []

        def items(key: str, kind: type) -> list:
            value = message.get(key) or []
            if not isinstance(value, list) or len(value) > 10000 or \
                    not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
                errors.append(f"{key}: a list of {'site codes' if kind is str else 'ids'} expected")
                return []
            return value

        def pick(key: str, kind: type, resolve) -> set[int]:
            chosen = set()
            for item in items(key, kind):
                found = resolve(item)
                if found is None:
                    errors.append(f"{key}: {item!r} is not in your scope")
                else:
                    chosen.add(found)
            return chosen

        def site_id(code: str) -> int | None:
            site = reg.sites.get(code)
            return site if site is not None and principal.scope.has_site(site) else None

        sites = pick("sites", str, site_id)
        areas = pick("areas", int, lambda a: a if reg.visible_area(principal, a) else None)
        points = pick("points", int, lambda p: p if reg.visible_point(principal, p) else None)
        alarm_sites: set[int] = set()
        if message.get("alarms") == "*":
            session.alarm_all = add
            if not add:
                session.alarm_sites = set()
        elif message.get("alarms") is not None:
            alarm_sites = pick("alarms", str, site_id)
        for mine, new in ((session.sites, sites), (session.areas, areas), (session.explicit_points, points),
                          (session.alarm_sites, alarm_sites)):
            if add:
                mine |= new
            else:
                mine -= new
        return self.update_subscription(session), errors

    async def snapshot(self, session: Session, point_ids: set[int]) -> None:
        """Send the current values of newly subscribed points, so a (re)connected screen is not blank."""
        if point_ids:
            session.offer_readings(await self._latest(point_ids))

    # --- database ------------------------------------------------------------------------------------------------

    async def _latest(self, point_ids: set[int]) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_LATEST, (sorted(point_ids),))
            rows = await cur.fetchall()
        return [{"point_id": pid, "time": t, "value": v, "quality": q} for pid, t, v, q in rows]

    async def load_registry(self) -> None:
        async with self._pool.connection() as conn:
            points = await (await conn.execute(
                "SELECT p.id, d.site_id, d.area_id, a.process_type FROM point p JOIN device d ON d.id = p.device_id "
                "JOIN area a ON a.id = d.area_id WHERE p.retired_at IS NULL AND d.retired_at IS NULL")).fetchall()
            areas = await (await conn.execute(
                "SELECT id, site_id, code, process_type FROM area WHERE retired_at IS NULL")).fetchall()
            sites = await (await conn.execute("SELECT id, code FROM site")).fetchall()
        self.registry = Registry({p: (s, a, proc) for p, s, a, proc in points},
                                 {a: (s, proc) for a, s, _, proc in areas}, {code: i for i, code in sites},
                                 {(s, code): a for a, s, code, _ in areas})
        for session in list(self.sessions):
            self.update_subscription(session)

    async def _listen(self) -> None:
        """LISTEN forever; on a lost connection retry with backoff, then tell every session about the gap."""
        delay, lost = 0.5, False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as conn:
                    for channel in (channels.READINGS, channels.ALARMS, channels.CONFIG):
                        await conn.execute(f"LISTEN {channel}")
                    await self.load_registry()
                    if lost:
                        _LOGGER.info("live feed: listening again")
                        self.counters["gaps"] += 1
                        for session in list(self.sessions):
                            session.offer_control({"type": "gap", "reason": GAP})
                        self._mark_dirty(None)
                    self.connected.set()
                    delay, lost = 0.5, False
                    async for note in conn.notifies():
                        self._dispatch(note.channel, note.payload)
            except (psycopg.Error, OSError) as exc:
                self.connected.clear()
                if not lost:
                    _LOGGER.warning("live feed: database connection lost (%s); retrying", str(exc).strip())
                lost = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    # --- fan-out -------------------------------------------------------------------------------------------------

    def _dispatch(self, channel: str, payload: str) -> None:
        try:
            if channel == channels.READINGS:
                self._mark_dirty(channels.changed_points(payload))
            elif channel == channels.ALARMS:
                self._on_alarm(orjson.loads(payload))
            elif channel == channels.CONFIG:
                self._tasks.append(asyncio.create_task(self.load_registry()))
                self._tasks = [t for t in self._tasks if not t.done()]
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            self.counters["bad_notifications"] += 1
            _LOGGER.error("live feed: unreadable %s notification: %.200s", channel, payload)

    def _on_alarm(self, event: Any) -> None:
        if not isinstance(event, dict) or not isinstance(event.get("site"), str):
            raise ValueError("an alarm_changed payload needs a site")
        self.counters["alarm_events"] += 1
        routed = False
        for session in list(self.sessions):
            if session.wants_alarm(self.registry, event):
                session.offer_alarm(event)
                routed = True
        if not routed:
            self.counters["alarm_events_unrouted"] += 1

    def _mark_dirty(self, point_ids: set[int] | None) -> None:
        self._dirty.update(self._subscribed if point_ids is None else point_ids)
        self._dirty_event.set()

    async def _flush(self) -> None:
        """Push changed values at most once per interval: the latest committed value of each point wins."""
        loop = asyncio.get_running_loop()
        last = 0.0
        while True:
            await self._dirty_event.wait()
            if (wait := last + self.settings.ws_reading_interval_s - loop.time()) > 0:
                await asyncio.sleep(wait)
            self._dirty_event.clear()
            wanted = {pid for pid in self._dirty if self._subscribed[pid] > 0}
            self._dirty = set()
            last = loop.time()
            if not wanted:
                continue
            try:
                rows = await self._latest(wanted)
            except psycopg.Error as exc:
                _LOGGER.warning("live feed: cannot read latest values: %s", str(exc).strip())
                self._dirty |= wanted
                self._dirty_event.set()
                continue
            self.counters["flushes"] += 1
            for session in list(self.sessions):
                session.offer_readings(rows)
