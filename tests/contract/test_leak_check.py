"""The check that test modules leave nothing running (tests/leaks.py) sees threads and child processes."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from tests import leaks


def test_a_thread_left_running_is_reported_and_one_that_ends_in_the_grace_period_is_not() -> None:
    before = leaks.snapshot()
    stop, quick = threading.Event(), threading.Event()
    stuck = threading.Thread(target=stop.wait, name="stuck-worker", daemon=True)
    ending = threading.Thread(target=quick.wait, args=(0.2,), name="ending-worker")
    stuck.start()
    ending.start()
    try:
        found = leaks.leftovers(before, leaks.Snapshot(), grace_s=1.0)
        assert len(found) == 1 and "'stuck-worker' (daemon" in found[0]
        assert leaks.leftovers(before, leaks.Snapshot(threads=frozenset({stuck})), 0.0) == []
    finally:
        stop.set()
        stuck.join()
        ending.join()
    assert leaks.leftovers(before, leaks.Snapshot(), grace_s=0.5) == []


@pytest.mark.parametrize("reader", ["psutil", "proc"])
def test_a_child_process_left_running_is_reported(reader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if reader == "proc":
        monkeypatch.setattr(leaks, "psutil", None)
    before = leaks.snapshot()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        found = leaks.leftovers(before, leaks.Snapshot(), grace_s=0.2)
        assert len(found) == 1 and found[0].startswith(f"process {child.pid} (") and "time.sleep(60)" in found[0]
    finally:
        child.kill()
        child.wait()
    assert leaks.leftovers(before, leaks.Snapshot(), grace_s=0.5) == []
