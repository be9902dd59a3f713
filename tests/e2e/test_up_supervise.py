"""``ehs up``'s supervisor with real child processes: a child that dies is restarted and said so, with a
growing delay; a child in a crash loop is given up with a clear message, and the others keep running."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from cli.up import Child, _supervise
from tests.support import wait_for

pytestmark = pytest.mark.e2e


def _child(name: str, code: str, tmp_path: Path) -> Child:
    return Child(name, [sys.executable, "-c", code], dict(os.environ), tmp_path / f"{name}.log")


def test_restart_then_give_up_a_crash_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "starts"
    # exits with 3 at every start (counting its starts in a file), like an ingest that finds itself stuck
    crashing = _child("ingest", f"import sys; open({str(marker)!r}, 'a').write('x'); sys.exit(3)", tmp_path)
    steady = _child("api", "import time; time.sleep(60)", tmp_path)
    stop = threading.Event()
    for child in (crashing, steady):
        child.start()
    runner = threading.Thread(
        target=_supervise,
        args=([crashing, steady], stop),
        kwargs={"base_delay": 0.05, "max_delay": 0.2, "give_up_after": 3, "poll_s": 0.05},
    )
    runner.start()
    try:
        wait_for(lambda: crashing.given_up, timeout=30, message="the supervisor to give up the crash loop")
        assert steady.proc.poll() is None  # the others keep running
    finally:
        stop.set()
        runner.join(10)
        for child in (crashing, steady):
            child.stop()
    assert marker.read_text() == "xxxx"  # the first start and three restarts, then no more
    err = capsys.readouterr().err
    assert err.count("ingest exited with code 3; restarting it in") == 3
    assert "restart 3 of at most 3 in a row" in err and err.count("ingest restarted (pid") == 3
    assert "ingest exited with code 3 again: it failed 4 times in a row" in err
    assert "Not restarting it" in err and "WARNING: without ingest no reading is stored" in err


def test_a_child_that_ran_well_gets_a_fresh_backoff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "starts"
    flaky = _child("alerts", f"import sys; open({str(marker)!r}, 'a').write('x'); sys.exit(1)", tmp_path)
    stop = threading.Event()
    flaky.start()
    # healthy_after=0: every run counts as a good one, so the crash-loop limit is never reached
    runner = threading.Thread(
        target=_supervise,
        args=([flaky], stop),
        kwargs={"base_delay": 0.05, "give_up_after": 1, "healthy_after": 0.0, "poll_s": 0.05},
    )
    runner.start()
    try:
        wait_for(lambda: marker.exists() and len(marker.read_text()) >= 4, timeout=30, message="four starts")
    finally:
        stop.set()
        runner.join(10)
        flaky.stop()
    assert not flaky.given_up and "Not restarting" not in capsys.readouterr().err
