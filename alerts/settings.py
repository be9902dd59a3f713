"""Settings of the alerts worker (prefix ``EHS_ALERTS_``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EHS_ALERTS_", env_file=".env", extra="ignore")

    #: MQTT client id of the worker (commands out, acknowledgements in, alarm events out).
    client_id: str = "ehs-alerts"
    #: The worker's loop runs at least this often (acknowledgements and LISTEN notifications wake it sooner).
    tick_s: float = Field(0.5, gt=0)
    heartbeat_s: float = Field(5.0, gt=0)
    #: A worker thread that shows no sign of life for this long is stuck: the process exits non-zero.
    stuck_s: float = Field(60.0, gt=0)
    #: Ingest's heartbeat older than this (or naming a stuck part) raises the critical ``service.silent`` alarm.
    watch_stale_s: float = Field(30.0, gt=0)
    #: An HJ 212 relay outbox row unsent for this long raises ``hj212.relay_backlog`` for its site (readings
    #: stored but not judged by the rules; ``ingest.hj212.relay``).
    relay_backlog_s: float = Field(300.0, gt=0)
    #: Publish alarm events on ehs/v1/{site}/alarms for SCADA and other consumers.
    publish_alarms: bool = True
    #: MQTT 5 user property in which the broker names each acknowledgement's sender (core.identity); unset: the
    #: broker's ACL is the only check.
    sender_property: str | None = None
    #: Write the signed head of the audit chain to the data directory this often (core.audit.anchor; 0: never).
    audit_anchor_s: float = Field(600.0, ge=0)

    # --- notifications (alerts.notifications.notifier) -----------------------------------------------------
    #: Send notifications from this worker (several workers may run: deliveries are claimed with SKIP LOCKED).
    notify: bool = True
    notify_senders: int = Field(4, ge=1, le=64)
    #: A delivery claimed longer than this without an outcome belongs to a dead worker and is sent again.
    notify_lease_s: float = Field(60.0, gt=0)
    notify_timeout_s: float = Field(10.0, gt=0)
    notify_max_attempts: int = Field(8, ge=1)
    notify_backoff_s: float = Field(5.0, gt=0)
    #: Consecutive failures of one channel that raise the "notification channel failing" alarm.
    notify_fail_alarm_after: int = Field(5, ge=1)
    #: During an alarm flood: one summary per flood and this interval.
    notify_group_interval_s: float = Field(60.0, gt=0)
    notify_tz: str = "Asia/Shanghai"
    #: Replace the providers' API hosts, e.g. {"dingtalk": "http://relay.plant.lan:8080"} (a relay; tests).
    notify_endpoints: dict[str, str] = Field(default_factory=dict)
    #: Where the PWA is reached from a phone: the base of the links in messages.
    public_url: str = "http://localhost:8000"
    #: Lifetime of the signed links in messages.
    link_ttl_s: float = Field(1800.0, gt=0)
    #: Web Push: VAPID private key (raw P-256, URL-safe base64); unset: generated once and kept in the database.
    vapid_private_key: str | None = Field(
        None, validation_alias=AliasChoices("EHS_VAPID_PRIVATE_KEY", "EHS_ALERTS_VAPID_PRIVATE_KEY")
    )
    vapid_subject: str = "mailto:ehs@localhost"
    push_ttl_s: int = Field(3600, ge=0)
