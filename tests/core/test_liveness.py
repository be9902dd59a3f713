"""``core.liveness``: a loop that turns is alive (idle when it has nothing to do), one that stops turning is stuck,
one whose thread ended is dead; parts stopped on purpose are not watched. Real threads, an injected clock."""

from __future__ import annotations

import threading

from core.liveness import Liveness


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_states_ok_idle_stuck_dead() -> None:
    clock = Clock()
    live = Liveness(stuck_after=10, monotonic=clock)
    release = threading.Event()
    beaten = threading.Event()

    def blocked() -> None:  # turns once, then blocks in a call that does not return (until released)
        live.beat("record", progress=True)
        beaten.set()
        release.wait(30)

    blocker = _in_thread(blocked)
    beaten.wait(10)
    live.beat("stages", progress=True)  # the test's own thread: alive
    clock.now += 5
    live.beat("stages")  # turned without work: still ok (idle only after 10 s)
    assert {n: r["state"] for n, r in live.report().items()} == {"record": "ok", "stages": "ok"}
    clock.now += 8
    live.beat("stages")
    report = live.report()
    assert report["stages"]["state"] == "idle" and report["stages"]["silent_s"] == 0.0  # quiet, not stuck
    assert report["record"]["state"] == "stuck" and report["record"]["silent_s"] == 13.0
    assert live.stuck() == ["record"] and live.failures() == ["record (stuck, 13 s without a sign of life)"]
    release.set()
    blocker.join(10)
    assert live.report()["record"]["state"] == "dead" and live.failures() == ["record (thread ended)"]
    live.forget("record")
    assert live.failures() == []


def test_retired_threads_are_not_watched_and_cannot_come_back() -> None:
    live = Liveness(stuck_after=10)
    go_on, stop = threading.Event(), threading.Event()

    def loop() -> None:
        while not stop.is_set():
            live.beat("notify-send-0")
            go_on.set()
            stop.wait(0.01)

    thread = _in_thread(loop)
    go_on.wait(10)
    live.retire([thread])  # stopped on purpose while the process runs on
    stop.set()
    thread.join(10)
    assert live.report() == {} and live.failures() == []
    live.beat("notify-send-0")  # a new thread may take the same name again
    assert live.report()["notify-send-0"]["state"] == "ok"


def test_a_library_thread_is_watched_by_a_probe() -> None:
    live = Liveness(stuck_after=10)
    done = threading.Event()
    network = _in_thread(lambda: done.wait(10))  # stands for paho's network loop
    live.watch("mqtt", network.is_alive)
    assert live.report() == {"mqtt": {"state": "ok"}} and live.failures() == []
    done.set()
    network.join(10)
    assert live.stuck() == ["mqtt"] and live.failures() == ["mqtt (thread ended)"]
    live.forget("mqtt")
    assert live.report() == {}
