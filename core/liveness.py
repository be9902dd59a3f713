"""Liveness of a process's long-running threads, told truthfully (issue 11, item 3).

Each loop calls ``beat(name, progress=...)`` once per turn: every turn is a sign of life (a loop waiting on an
empty queue with a timeout still turns), and a turn that did work is progress. A part whose loop stopped turning
for ``stuck_after`` seconds is *stuck* (blocked in a call that does not return); a part whose thread ended is
*dead*; a part that turns but has had nothing to do is *idle*, which is healthy: a quiet plant is not a stuck one.
The heartbeat carries ``report()``; the process's main thread exits non-zero on ``failures()`` so that its
supervisor (``ehs up``, docker-compose ``restart:``, systemd) starts it again.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from core import db


@dataclass
class _Part:
    name: str
    stuck_after: float
    thread: threading.Thread
    last: float
    progress_at: float
    beats: int = 0


@dataclass
class Liveness:
    """The named parts of one process and when each last turned and last did work."""

    #: A part that has not turned for this long is stuck (seconds).
    stuck_after: float = 60.0
    monotonic: Callable[[], float] = time.monotonic
    _parts: dict[str, _Part] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _retired: weakref.WeakSet = field(default_factory=weakref.WeakSet)
    _probes: dict[str, Callable[[], bool]] = field(default_factory=dict)

    def beat(self, name: str, *, progress: bool = False, stuck_after: float | None = None) -> None:
        """Report one turn of the calling thread's loop (``progress``: it did some work)."""
        if threading.current_thread() in self._retired:
            return
        now = self.monotonic()
        part = self._parts.get(name)
        if part is None or part.thread is not threading.current_thread():
            with self._lock:
                part = self._parts[name] = _Part(
                    name, stuck_after or self.stuck_after, threading.current_thread(), now, now
                )
        part.last = now
        part.beats += 1
        if progress:
            part.progress_at = now

    def watch(self, name: str, alive: Callable[[], bool]) -> None:
        """Watch a part that cannot beat (a library's thread, e.g. paho's network loop): dead when ``alive()`` is
        False."""
        with self._lock:
            self._probes[name] = alive

    def forget(self, name: str) -> None:
        """A part that ended on purpose (its owner stopped it) is no longer watched."""
        with self._lock:
            self._parts.pop(name, None)
            self._probes.pop(name, None)

    def retire(self, threads: Iterable[threading.Thread]) -> None:
        """Threads being stopped on purpose (while the rest of the process runs on): no longer watched."""
        with self._lock:
            for thread in threads:
                self._retired.add(thread)
            self._parts = {name: p for name, p in self._parts.items() if p.thread not in self._retired}

    def forget_all(self) -> None:
        with self._lock:
            self._parts.clear()
            self._probes.clear()

    def report(self) -> dict[str, dict[str, float | str]]:
        """Every part with its state (ok, idle, stuck or dead) and seconds since it last turned / did work."""
        now = self.monotonic()
        with self._lock:
            parts = list(self._parts.values())
            probes = list(self._probes.items())
        out: dict[str, dict[str, float | str]] = {
            name: {"state": "ok" if alive() else "dead"} for name, alive in probes
        }
        for p in parts:
            silent, idle = now - p.last, now - p.progress_at
            if not p.thread.is_alive():
                state = "dead"
            elif silent > p.stuck_after:
                state = "stuck"
            elif idle > p.stuck_after:
                state = "idle"
            else:
                state = "ok"
            out[p.name] = {"state": state, "silent_s": round(silent, 1), "idle_s": round(idle, 1)}
        return out

    def failures(self) -> list[str]:
        """The parts that are stuck or dead, each as ``name (state, N s)``; empty when all is well."""
        return [
            f"{name} ({r['state']}, {r['silent_s']:.0f} s without a sign of life)"
            if r["state"] == "stuck"
            else f"{name} (thread ended)"
            for name, r in self.report().items()
            if r["state"] in ("stuck", "dead")
        ]

    def stuck(self) -> list[str]:
        """The names of the parts that are stuck or dead (the heartbeat's ``stuck`` list)."""
        return sorted(name for name, r in self.report().items() if r["state"] in ("stuck", "dead"))


def heartbeats(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every service's last heartbeat (``service_heartbeat``): ``service``, ``instance``, ``started_at``,
    ``updated_at``, ``counters`` and ``age_s`` (seconds since it was written, by the database's clock)."""
    return db.fetch_all(
        conn,
        "SELECT service, instance, started_at, updated_at, counters, "
        "extract(epoch FROM now() - updated_at)::float8 AS age_s FROM service_heartbeat "
        "ORDER BY service, instance",
    )
