"""Lock order of the notification outbox: a sender claiming and a sender finishing at the same moment, on two real
PostgreSQL connections, never deadlock.

The interleaving is forced with a barrier (no sleeps): the claiming sender has just skipped an acknowledged reminder
(its outbox row locked) while the finishing sender has just counted a success on the channel (its channel row
locked). Then the claimer goes on to the next due delivery, on that channel, and the finisher closes the reminder's
outbox row. When ``claim`` looked at the next delivery in the same transaction, each waited for the other's lock and
PostgreSQL aborted one with "deadlock detected"."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from alerts.notifications import outbox
from alerts.notifications.notify import SendResult
from tests.alerts.notify_support import clock, notifier

pytestmark = [pytest.mark.db]


def _setup(conn: psycopg.Connection) -> dict[str, int]:
    channel = conn.execute(
        "INSERT INTO notification_channel (name, kind, url_sealed, url_redacted, rate_per_s, burst, tokens) "
        "VALUES ('log-a', 'log', '\\x'::bytea, 'log://', 0.001, 1, 0) RETURNING id"
    ).fetchone()[0]

    def outbox_row(kind: str) -> int:
        return conn.execute(
            "INSERT INTO notification_outbox (kind, site, title, body, status) VALUES (%s, 'lk', 't', 'b', 'sending') "
            "RETURNING id",
            (kind,),
        ).fetchone()[0]

    def delivery(outbox_id: int, recipient: str, status: str, priority: int, channel_id: int | None) -> int:
        return conn.execute(
            "INSERT INTO notification_delivery (outbox_id, recipient, channel, channel_id, kind, priority, status, "
            "attempts, next_attempt_at) VALUES (%s, %s, %s, %s, 'log', %s, %s, %s, now() - interval '1 minute') "
            "RETURNING id",
            (outbox_id, recipient, f"c:{recipient}", channel_id, priority, status, int(status == "sending")),
        ).fetchone()[0]

    reminder, other = outbox_row("reminder"), outbox_row("test")  # the reminder's alarm is gone: acknowledged
    return {
        "channel": channel,
        "reminder": reminder,
        "other": other,
        "skipped": delivery(reminder, "user:1", "pending", 4, None),  # the most urgent: claimed (skipped) first
        "finishing": delivery(reminder, "group", "sending", 1, channel),  # in flight on the channel
        "next": delivery(other, "group", "pending", 1, channel),  # due next, on the same channel: no token
    }


def _wrap_after(name: str, thread: str, barrier: threading.Barrier, monkeypatch: pytest.MonkeyPatch) -> None:
    """Meet at ``barrier`` right after the first call of ``outbox.<name>`` in thread ``thread`` (locks held)."""
    real: Callable[..., Any] = getattr(outbox, name)
    met = threading.Event()

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        if threading.current_thread().name == thread and not met.is_set():
            met.set()
            barrier.wait(timeout=120)
        return out

    monkeypatch.setattr(outbox, name, wrapped)


def test_a_claim_and_a_finish_on_one_channel_and_outbox_do_not_deadlock(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = clock()
    with psycopg.connect(database_url, autocommit=True) as setup:
        ids = _setup(setup)
        finishing = (
            setup.cursor(row_factory=dict_row)
            .execute("SELECT * FROM notification_delivery WHERE id = %s", (ids["finishing"],))
            .fetchone()
        )
    barrier = threading.Barrier(2)
    _wrap_after("_close_outbox", "claimer", barrier, monkeypatch)  # the claimer holds the reminder's outbox row
    _wrap_after("_channel_health", "finisher", barrier, monkeypatch)  # the finisher holds the channel row
    n = notifier(None, c)
    errors: dict[str, BaseException] = {}
    results: dict[str, Any] = {}

    def claimer() -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                results["claimer"] = n.send_one(conn)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors["claimer"] = e
            barrier.abort()

    def finisher() -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
                results["finisher"] = outbox.finish(
                    conn=conn,
                    delivery=finishing,
                    result=SendResult("ok"),
                    target="log://",
                    started=c.now(),
                    now=c.now(),
                    policy=n.policy,
                )
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors["finisher"] = e
            barrier.abort()

    threads = [threading.Thread(target=f, name=f.__name__) for f in (claimer, finisher)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == {}, {k: repr(v) for k, v in errors.items()}
    assert results == {"claimer": False, "finisher": "sent"}  # the next delivery had no token: put aside, not sent
    with psycopg.connect(database_url) as conn:
        statuses = dict(conn.execute("SELECT id, status FROM notification_delivery").fetchall())
        assert statuses == {ids["skipped"]: "skipped", ids["finishing"]: "sent", ids["next"]: "pending"}
        deferred = conn.execute(
            "SELECT next_attempt_at > now() FROM notification_delivery WHERE id = %s", (ids["next"],)
        ).fetchone()[0]
        assert deferred  # waits for its channel's token
        outboxes = dict(conn.execute("SELECT id, status FROM notification_outbox").fetchall())
        assert outboxes == {ids["reminder"]: "sent", ids["other"]: "sending"}


def test_a_claim_puts_aside_one_delivery_per_transaction(database_url: str) -> None:
    """``claim`` returns ``AGAIN`` after putting one delivery aside (the caller commits before the next one)."""
    c = clock()
    with psycopg.connect(database_url, autocommit=True) as conn:
        ids = _setup(conn)

        def step() -> Any:
            with conn.transaction():
                return outbox.claim(conn=conn, now=c.now(), worker="w", policy=outbox.Policy())

        assert [step(), step(), step()] == [outbox.AGAIN, outbox.AGAIN, None]  # skipped, deferred, nothing due
        statuses = dict(conn.execute("SELECT id, status FROM notification_delivery").fetchall())
        assert statuses == {ids["skipped"]: "skipped", ids["finishing"]: "sending", ids["next"]: "pending"}
