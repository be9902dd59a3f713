"""The notifier: turns outbox rows into messages people get (part of ``python -m alerts``).

* a planner thread, woken by ``LISTEN notification_outbox`` (a trigger announces every committed outbox insert)
  and by acknowledgements (``alarm_changed``), at least every ``tick_s``: gives lost deliveries back to the
  queue, expands outbox rows into deliveries, writes flood summaries, runs the escalation tick;
* ``senders`` sender threads: each claims one due delivery (committed as ``sending`` with a lease), composes
  the message in the recipient's language with a signed link, sends it (apprise or Web Push) and records the
  attempt. A slow provider holds one sender, not the others.

``run_once`` does one planner pass and sends everything due, in the calling thread: what the tests call, with
the clock they control.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg

from alerts.config import AlertConfig
from alerts.notifications import escalation, links, messages, outbox, webpush
from alerts.notifications.notify import AppriseNotifier, SendResult
from alerts.seal import SealError, unseal
from alerts.settings import AlertSettings
from core import channels
from core.clock import Clock, SystemClock
from core.db import BackgroundConnection
from core.keys import Keyring
from core.liveness import Liveness

_LOGGER = logging.getLogger(__name__)
OUTBOX_CHANNEL = "notification_outbox"
_URGENCY = {1: "low", 2: "normal", 3: "high", 4: "high"}


class Notifier:
    def __init__(
        self,
        *,
        database_url: str,
        secret: str | Keyring,
        settings: AlertSettings | None = None,
        clock: Clock | None = None,
        config: Callable[[psycopg.Connection], AlertConfig] | None = None,
        apprise_notifier: AppriseNotifier | None = None,
    ) -> None:
        self.database_url = database_url
        self.secret = secret
        self.settings = s = settings or AlertSettings()
        self.clock = clock or SystemClock()
        self.config = config
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self.policy = outbox.Policy(
            lease=timedelta(seconds=s.notify_lease_s),
            max_attempts=s.notify_max_attempts,
            backoff_s=s.notify_backoff_s,
            fail_alarm_after=s.notify_fail_alarm_after,
            group_interval=timedelta(seconds=s.notify_group_interval_s),
            tz=s.notify_tz,
        )
        self.apprise = apprise_notifier or AppriseNotifier(endpoints=s.notify_endpoints, timeout_s=s.notify_timeout_s)
        self.counters = {
            "expanded": 0,
            "sent": 0,
            "failed_attempts": 0,
            "rate_limited": 0,
            "lost": 0,
            "escalations": 0,
            "reminders": 0,
            "summaries": 0,
        }
        self._vapid: tuple[str, str] | None = None
        self._config_cache: AlertConfig | None = None
        self._plan_wake = threading.Event()
        self._send_wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        #: Set by the worker: each thread reports its turns there (``core.liveness``).
        self.liveness: Liveness | None = None

    def _beat(self, name: str, progress: bool) -> None:
        if self.liveness is not None:
            self.liveness.beat(name, progress=progress)

    # --- planner ---------------------------------------------------------------------------------------------

    def plan(self, conn: psycopg.Connection) -> None:
        """One planner pass, each step in its own transaction (``conn`` in autocommit mode)."""
        now = self.clock.now()
        with conn.transaction():
            lost = outbox.requeue_lost(conn=conn, now=now)
        with conn.transaction():
            expanded = outbox.expand(conn=conn, now=now, policy=self.policy)
        with conn.transaction():
            summaries = outbox.summarise(conn=conn, now=now, policy=self.policy)
        if summaries:
            with conn.transaction():
                expanded += outbox.expand(conn=conn, now=now, policy=self.policy)
        with conn.transaction():
            esc = escalation.tick(conn=conn, now=now)
        if esc["escalations"] or esc["reminders"]:
            with conn.transaction():
                expanded += outbox.expand(conn=conn, now=now, policy=self.policy)
        with self._lock:
            self.counters["lost"] += len(lost)
            self.counters["expanded"] += expanded
            self.counters["summaries"] += len(summaries)
            self.counters["escalations"] += esc["escalations"]
            self.counters["reminders"] += esc["reminders"]

    # --- sending ---------------------------------------------------------------------------------------------

    def send_one(self, conn: psycopg.Connection) -> bool:
        """Claim, send and record one due delivery; False when nothing is due."""
        now = self.clock.now()
        for _ in range(outbox.CLAIM_TRIES):
            # one delivery per transaction (the lock order of ``outbox.claim``): a delivery put aside is committed
            # before the next one is looked at
            with conn.transaction():
                delivery = outbox.claim(conn=conn, now=now, worker=self.instance, policy=self.policy)
                if isinstance(delivery, dict):
                    ctx = outbox.context(conn, delivery["outbox_id"])
                    target = outbox.delivery_target(conn, delivery)
                    if ctx["outbox"]["targets"] is not None and delivery["kind"] == "email":
                        ctx["attachments"] = outbox.attachments(conn, delivery["outbox_id"])
                    if delivery["kind"] == "webpush" and self._vapid is None:
                        self._vapid = webpush.vapid_keys(
                            conn=conn, secret=self.secret, configured=self.settings.vapid_private_key
                        )
            if delivery is not outbox.AGAIN:
                break
        if not isinstance(delivery, dict):  # nothing due, or only deliveries put aside
            return False
        started = self.clock.now()
        result, shown = self._deliver(delivery, ctx, target, started)
        with conn.transaction():
            status = outbox.finish(
                conn=conn,
                delivery=delivery,
                result=result,
                target=shown,
                started=started,
                now=self.clock.now(),
                policy=self.policy,
            )
        with self._lock:
            self.counters[
                "sent" if status == "sent" else "rate_limited" if result.result == "rate_limited" else "failed_attempts"
            ] += 1
        return True

    def _deliver(
        self, delivery: dict[str, Any], ctx: dict[str, Any], target: dict[str, Any], now: datetime
    ) -> tuple[SendResult, str]:
        row = ctx["outbox"]
        if row["targets"] is not None:  # a report: the text of this target, the files for e-mail
            return self._deliver_explicit(delivery, ctx, target)
        token = None
        if row["alarm_id"] is not None:
            token = links.make(
                self.secret,
                alarm_id=row["alarm_id"],
                user_id=delivery["user_id"],
                now=now,
                ttl=timedelta(seconds=self.settings.link_ttl_s),
            )
        path = links.path(row["alarm_id"], token) if token else None
        if ctx.get("alarm") is not None and self._config_cache is not None:
            spec = self._config_cache.attrs(ctx["alarm"]["rule"])
            ctx = {**ctx, "action": spec.action, "action_en": spec.action_en}
        msg = messages.compose(
            ctx,
            lang=delivery["lang"],
            link=self.settings.public_url.rstrip("/") + path if path else None,
            tz=self.settings.notify_tz,
        )
        key = f"ehs-{delivery['id']}"
        if delivery["kind"] == "webpush":
            sub = target["subscription"]
            if sub is None or sub["gone_at"] is not None:
                return SendResult("gone", "subscription removed"), "webpush:-"
            data = webpush.payload(
                kind=row["kind"],
                alarm_id=row["alarm_id"],
                event_id=row["alarm_event_id"],
                title=msg.title,
                body=msg.body,
                priority=int(row["priority"] or 1),
                drill=row["drill"],
                url=path,
                link_token=token,
                at=row["created_at"],
            )
            return webpush.send(
                sub,
                data,
                private_key=self._vapid[1],
                subject=self.settings.vapid_subject,
                key=key,
                ttl_s=self.settings.push_ttl_s,
                urgency=_URGENCY[int(row["priority"] or 1)],
                timeout_s=self.settings.notify_timeout_s,
            ), f"webpush:{sub['id']}"
        channel = target["channel"]
        if channel is None or not channel["enabled"]:
            return SendResult("error", "channel removed or disabled"), "-"
        shown = f"{channel['name']} ({channel['url_redacted']})"
        try:
            url = unseal(self.secret, channel["url_sealed"])
        except SealError as exc:
            return SendResult("error", str(exc), bad_channel=True), shown
        return self.apprise.send(
            kind=channel["kind"], url=url, title=msg.title, body=msg.body, to=target["to"], key=key
        ), shown

    def _deliver_explicit(
        self, delivery: dict[str, Any], ctx: dict[str, Any], target: dict[str, Any]
    ) -> tuple[SendResult, str]:
        spec = ctx["outbox"]["targets"][int(delivery["recipient"].split(":", 1)[1])]
        channel = target["channel"]
        if channel is None or not channel["enabled"]:
            return SendResult("error", "channel removed or disabled"), "-"
        shown = f"{channel['name']} ({channel['url_redacted']})"
        try:
            url = unseal(self.secret, channel["url_sealed"])
        except SealError as exc:
            return SendResult("error", str(exc), bad_channel=True), shown
        return self.apprise.send(
            kind=channel["kind"],
            url=url,
            title=spec["title"],
            body=spec["body"],
            to=target["to"],
            key=f"ehs-{delivery['id']}",
            attach=ctx.get("attachments") or (),
        ), shown

    def run_once(self, conn: psycopg.Connection, *, max_sends: int = 10_000) -> int:
        """One planner pass, then send what is due now (tests, ``ehs notify``); return the number of sends."""
        if self.config is not None:
            self._config_cache = self.config(conn)
        self.plan(conn)
        n = 0
        while n < max_sends and self.send_one(conn):
            n += 1
        return n

    # --- threads ---------------------------------------------------------------------------------------------

    def _planner(self) -> None:
        link = BackgroundConnection(self.database_url, purpose="notifier", logger=_LOGGER, level=logging.ERROR)
        while not self._stop.is_set():
            self._plan_wake.wait(self.settings.tick_s)
            self._plan_wake.clear()
            self._beat("notify-plan", True)
            try:
                if self.config is not None:
                    self._config_cache = link.run(self.config) or self._config_cache
                link.run(self.plan)
            except Exception:
                _LOGGER.exception("notifier pass failed; trying again")
            self._send_wake.set()
        link.close()

    def _sender(self) -> None:
        link = BackgroundConnection(
            self.database_url, purpose="notification sender", logger=_LOGGER, level=logging.ERROR
        )
        while not self._stop.is_set():
            try:
                busy = link.run(self.send_one)
            except Exception:
                _LOGGER.exception("notification send failed; trying again")
                busy = False
            self._beat(threading.current_thread().name, bool(busy))
            if busy:
                self._send_wake.set()  # more may be due: let the other senders look too
                continue
            self._send_wake.wait(self.settings.tick_s)
            self._send_wake.clear()
        link.close()

    def _listen(self) -> None:
        while not self._stop.is_set():
            self._beat("notify-listen", False)
            try:
                with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'LISTEN "{OUTBOX_CHANNEL}"')
                    conn.execute(f'LISTEN "{channels.ALARMS}"')
                    while not self._stop.is_set():
                        self._beat("notify-listen", False)
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._plan_wake.set()
            except psycopg.OperationalError:
                self._stop.wait(2.0)

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._planner, name="notify-plan", daemon=True),
            threading.Thread(target=self._listen, name="notify-listen", daemon=True),
        ]
        self._threads += [
            threading.Thread(target=self._sender, name=f"notify-send-{i}", daemon=True)
            for i in range(self.settings.notify_senders)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        if self.liveness is not None:  # they end on purpose: no longer watched
            self.liveness.retire(self._threads)
        self._stop.set()
        self._plan_wake.set()
        self._send_wake.set()
        for thread in self._threads:
            thread.join(15)
