"""What the live feed knows per client (subscriptions, pending messages) and of the plant (routing, scope)."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from api.policy import Principal

#: Readings per WebSocket message (a whole site may be thousands of points).
CHUNK = 1000


@dataclass
class Registry:
    """What the hub needs of the plant registry to route and scope: points, areas, sites."""

    points: dict[int, tuple[int, int, str]] = field(default_factory=dict)  # id -> (site, area, process)
    areas: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (site, process)
    sites: dict[str, int] = field(default_factory=dict)  # code -> id
    area_codes: dict[tuple[int, str], int] = field(default_factory=dict)  # (site, code) -> id
    meta: dict[int, tuple[str, str, str, str]] = field(default_factory=dict)  # id -> site, device, key, unit
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
        #: set when the caller's credential was revoked (or the user disabled, or their password or scope
        #: changed): the connection is closed at once with 4401
        self.revoked: str | None = None
        self.coalesced = 0

    def revoke(self, reason: str) -> None:
        self.revoked = reason
        self.gone.set()

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
                    self.coalesced += 1  # an older value this client had not received yet: dropped
                self._readings[pid] = row
                offered = True
        if offered:
            self._wake.set()

    def offer_alarm(self, event: dict[str, Any]) -> None:
        if self.overflow:
            return
        if len(self._alarms) >= self._capacity:
            self.overflow = f"too slow: {len(self._alarms)} alarm events were waiting; reconnect and reload the alarms"
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
            out += [{"type": "readings", "items": items[i : i + CHUNK]} for i in range(0, len(items), CHUNK)]
        return out

    def wants_alarm(self, registry: Registry, event: dict[str, Any]) -> bool:
        site = registry.sites.get(event.get("site")) if isinstance(event.get("site"), str) else None
        if site is None or not (self.alarm_all or site in self.alarm_sites) or not self.principal.scope.has_site(site):
            return False
        if self.principal.scope.processes is None or not event.get("area"):
            return True  # an alarm without an area is site-level: everyone with the site sees it (core.scope)
        area = registry.area_codes.get((site, event.get("area")))
        return area is not None and registry.visible_area(self.principal, area)
