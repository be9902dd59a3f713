"""What a test module leaves running: threads and child processes it started and did not stop (STYLE.md B8,
HA's ``verify_cleanup``).

``tests/conftest.py`` takes a ``Snapshot`` when a module starts and checks at its end, after the module's
fixtures are torn down, that nothing new is still alive after a short grace period. Threads and processes that
a session fixture starts (the embedded PostgreSQL and broker) belong to the session, not to the module that
happened to ask for them first, and are left out. Child processes are read with psutil when it is installed,
else from ``/proc``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

try:
    import psutil
except ImportError:  # pragma: no cover - psutil comes with the test environment today
    psutil = None

#: Seconds a module's leftovers get to end on their own (a thread finishing its last loop, a process exiting).
GRACE_S = 2.0

#: Threads that may outlive the module that started them, by name pattern, with the reason.
ALLOWED_THREADS: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Live threads (by identity) and child processes (by pid and start time) at one moment."""

    threads: frozenset[threading.Thread] = field(default_factory=frozenset)
    processes: frozenset[tuple[int, float]] = field(default_factory=frozenset)

    def __or__(self, other: Snapshot) -> Snapshot:
        return Snapshot(self.threads | other.threads, self.processes | other.processes)


def snapshot() -> Snapshot:
    return Snapshot(frozenset(t for t in threading.enumerate() if t.is_alive()), frozenset(_children()))


def _children() -> set[tuple[int, float]]:
    """Our living descendants as (pid, start time), so that a reused pid is not taken for an old process."""
    if psutil is not None:
        out = set()
        for child in psutil.Process().children(recursive=True):
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    out.add((child.pid, child.create_time()))
            except psutil.NoSuchProcess:
                continue
        return out
    return _proc_children()


def _proc_children() -> set[tuple[int, float]]:
    """The same from ``/proc/<pid>/stat``: parent pid (field 4), state (3), start time in ticks (22)."""
    parents: dict[int, list[tuple[int, float]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":
            continue
        parents.setdefault(int(fields[1]), []).append((int(entry.name), float(fields[19])))
    out: set[tuple[int, float]] = set()
    todo = [os.getpid()]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.add(child)
            todo.append(child[0])
    return out


def _allowed(thread: threading.Thread) -> bool:
    return any(re.fullmatch(pattern, thread.name) for pattern in ALLOWED_THREADS)


def leftovers(before: Snapshot, owned: Snapshot, grace_s: float = GRACE_S) -> list[str]:
    """What is alive now and was not at ``before`` (nor ``owned`` by the session), after up to ``grace_s``."""
    deadline = time.monotonic() + grace_s
    while True:
        now = snapshot()
        threads = [t for t in now.threads - before.threads - owned.threads if t.is_alive() and not _allowed(t)]
        processes = sorted(now.processes - before.processes - owned.processes)
        remaining = deadline - time.monotonic()
        if (not threads and not processes) or remaining <= 0:
            break
        if threads:
            threads[0].join(min(remaining, 0.1))
        else:
            time.sleep(min(remaining, 0.05))
    return [
        *(
            f"thread {t.name!r} ({'daemon' if t.daemon else 'non-daemon'}, target "
            f"{getattr(getattr(t, '_target', None), '__qualname__', type(t).__qualname__)})"
            for t in threads
        ),
        *(f"process {pid} ({_describe(pid)})" for pid, _ in processes),
    ]


def _describe(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        return "gone"
