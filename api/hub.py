"""The live feed behind ``/api/v1/ws``: one LISTEN task fans committed readings and alarm events out to sessions.

Readings are coalesced per point (the latest value wins) and pushed at most once per point per
``ws_reading_interval_s``; a slow client therefore loses old readings, never the newest. Alarm events are
queued per session and always delivered in order; a client so slow that ``ws_alarm_queue`` events wait is
disconnected with a reason rather than fed a partial record. After the LISTEN connection is lost and
regained, every session is told there was a gap (alarm events may have been missed) and gets fresh values.
The same notifications keep a cache of every point's latest value, which serves ``/api/v1/latest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool

from api.auth import REVOKED_CHANNEL
from api.policy import Principal
from api.settings import ApiSettings
from api.subscriptions import Registry, Session
from core import channels, live

_LOGGER = logging.getLogger(__name__)

GAP = "the server lost its database connection for a while; alarm events may have been missed: reload them"


class Hub:
    """Owns the LISTEN connection, the registry cache, and every session."""

    def __init__(self, database_url: str, settings: ApiSettings) -> None:
        self.database_url = database_url
        self.settings = settings
        self.registry = Registry()
        self.sessions: set[Session] = set()
        #: WebSockets accepted and not yet authenticated: they count toward ws_max_clients
        self.pending = 0
        #: credential checks of WebSockets that may hold a pooled connection at once
        self.auth_slots = asyncio.Semaphore(settings.ws_auth_concurrency)
        self.connected = asyncio.Event()
        #: point id -> the sessions subscribed to it (fan-out costs one lookup per changed point)
        self._subscribers: dict[int, set[Session]] = {}
        self._dirty: set[int] = set()
        self._dirty_event = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._pool: AsyncConnectionPool | None = None
        self.counters: Counter[str] = Counter()
        #: point id -> its latest value as the JSON of /api/v1/latest; replaced whole, never changed in place, so
        #: request threads can read it while the event loop updates it
        self._latest_json: dict[int, bytes] = {}
        self.cache_ready = False
        # one reader of latest values at a time, so an older answer never overwrites a newer one in the cache
        self._cache_lock = asyncio.Lock()

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._pool = AsyncConnectionPool(self.database_url, min_size=1, max_size=2, open=False, name="api-live")
        await self._pool.open(wait=False)
        self._tasks = [
            asyncio.create_task(self._listen(), name="live-listen"),
            asyncio.create_task(self._flush(), name="live-flush"),
        ]

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
            self._index(session, session.points, set())

    def update_subscription(self, session: Session) -> set[int]:
        """Re-resolve a session's points after it (un)subscribed; return the points that are new to it."""
        before = set(session.points)
        after = session.resolve(self.registry)
        self._index(session, before, after)
        return after - before

    def _index(self, session: Session, before: set[int], after: set[int]) -> None:
        for pid in before - after:
            subscribers = self._subscribers.get(pid)
            if subscribers is not None:
                subscribers.discard(session)
                if not subscribers:
                    del self._subscribers[pid]
        for pid in after - before:
            self._subscribers.setdefault(pid, set()).add(session)

    def subscribe(self, session: Session, message: dict[str, Any], *, add: bool) -> tuple[set[int], list[str]]:
        """Apply a subscribe/unsubscribe message; return the newly subscribed points and the refusals.

        ``sites`` are site codes, ``areas`` and ``points`` ids, ``alarms`` site codes or ``"*"`` (every site
        in the caller's scope). Items outside the caller's scope are refused one by one, never silently.
        """
        reg, principal, errors = self.registry, session.principal, []

        def items(key: str, kind: type) -> list:
            value = message.get(key) or []
            if (
                not isinstance(value, list)
                or len(value) > 10000
                or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value)
            ):
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
        for mine, new in (
            (session.sites, sites),
            (session.areas, areas),
            (session.explicit_points, points),
            (session.alarm_sites, alarm_sites),
        ):
            if add:
                mine |= new
            else:
                mine -= new
        return self.update_subscription(session), errors

    async def snapshot(self, session: Session, point_ids: set[int]) -> None:
        """Send the current values of newly subscribed points, so a (re)connected screen is not blank."""
        if not point_ids:
            return
        try:
            session.offer_readings(await self._latest(point_ids))
        except psycopg.Error as exc:  # the values follow with the next flush
            _LOGGER.warning("live feed: cannot read current values: %s", str(exc).strip())
            self._mark_dirty(point_ids)

    # --- database ------------------------------------------------------------------------------------------------

    async def _latest(self, point_ids: set[int]) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            return await live.latest_values(conn, point_ids)

    async def load_registry(self) -> None:
        """Reload the registry, then every latest value (a renamed device must not linger in the cache)."""
        async with self._pool.connection() as conn:
            plant = await live.plant_rows(conn)
        points, areas, sites = plant.points, plant.areas, plant.sites
        self.registry = Registry(
            {p[0]: (p[1], p[2], p[3]) for p in points},
            {a: (s, proc) for a, s, _, proc in areas},
            {code: i for i, code in sites},
            {(s, code): a for a, s, code, _ in areas},
            {p[0]: p[4:8] for p in points},
        )
        for session in list(self.sessions):
            self.update_subscription(session)
        async with self._cache_lock:
            self._cache(await self._latest(set(self.registry.points)), replace=True)
        self.cache_ready = True

    async def _reload_registry(self) -> None:
        """After a configuration change; a failure is logged (the next reconnect reloads anyway)."""
        try:
            await self.load_registry()
        except psycopg.Error as exc:
            _LOGGER.warning("live feed: cannot reload the plant registry: %s", str(exc).strip())

    def _cache(self, rows: list[dict[str, Any]], *, replace: bool = False) -> None:
        meta = self.registry.meta
        cache = {} if replace else dict(self._latest_json)
        for row in rows:
            if (info := meta.get(row["point_id"])) is not None:
                cache[row["point_id"]] = orjson.dumps(
                    {
                        "point_id": row["point_id"],
                        "site": info[0],
                        "device": info[1],
                        "key": info[2],
                        "unit": info[3],
                        "time": row["time"],
                        "value": row["value"],
                        "quality": row["quality"],
                    }
                )
        self._latest_json = cache

    def latest_json(self, principal: Principal, *, point_ids: list[int] | None, site: str | None) -> bytes | None:
        """The body of /api/v1/latest from the cache (called from request threads); None while not live.

        The cache follows the committed readings through NOTIFY, at most one ``ws_reading_interval_s`` behind.
        """
        if not (self.cache_ready and self.connected.is_set()):
            return None
        registry, cache = self.registry, self._latest_json
        site_id = registry.sites.get(site) if site is not None else None
        parts = []
        for pid in sorted(cache) if point_ids is None else sorted(set(point_ids)):
            part, info = cache.get(pid), registry.points.get(pid)
            if part is None or info is None or (site is not None and info[0] != site_id):
                continue
            if principal.scope.has_site(info[0]) and principal.scope.has_process(info[2]):
                parts.append(part)
        return b"[" + b",".join(parts) + b"]"

    async def _listen(self) -> None:
        """LISTEN forever; on a lost connection retry with backoff, then tell every session about the gap."""
        delay, lost = 0.5, False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as conn:
                    await live.listen(conn, (channels.READINGS, channels.ALARMS, channels.CONFIG, REVOKED_CHANNEL))
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
                self.cache_ready = False
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
            elif channel == REVOKED_CHANNEL:
                self._on_revoked(orjson.loads(payload))
            elif channel == channels.CONFIG:
                self._tasks.append(asyncio.create_task(self._reload_registry()))
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

    def _on_revoked(self, note: dict[str, Any]) -> None:
        """A user's sessions ended or an API key was revoked: close their live sessions (4401)."""
        kind, principal_id = note["kind"], note["id"]
        for session in list(self.sessions):
            if (session.principal.kind, session.principal.id) == (kind, principal_id):
                session.revoke(
                    "your session was ended (signed out, disabled, password or scope changed, or the "
                    "key revoked); sign in again"
                )
                self.counters["revoked_sessions"] += 1

    def _mark_dirty(self, point_ids: set[int] | None) -> None:
        self._dirty.update(self.registry.points if point_ids is None else point_ids)
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
            # every changed point, subscribed or not: the cache behind /api/v1/latest follows them all
            wanted = {pid for pid in self._dirty if pid in self.registry.points}
            self._dirty = set()
            last = loop.time()
            if not wanted:
                continue
            try:
                async with self._cache_lock:
                    rows = await self._latest(wanted)
                    self._cache(rows)
            except psycopg.Error as exc:
                _LOGGER.warning("live feed: cannot read latest values: %s", str(exc).strip())
                self._dirty |= wanted
                self._dirty_event.set()
                continue
            self.counters["flushes"] += 1
            per_session: dict[Session, list[dict[str, Any]]] = {}
            for row in rows:
                for session in self._subscribers.get(row["point_id"], ()):
                    per_session.setdefault(session, []).append(row)
            for session, items in per_session.items():
                session.offer_readings(items)
