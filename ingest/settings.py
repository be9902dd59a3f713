"""Settings of the ingest process (prefix ``EHS_INGEST_``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EHS_INGEST_", env_file=".env", extra="ignore")

    #: Stable client id: the broker keeps the persistent session (and unacknowledged messages) under it.
    client_id: str = "ehs-ingest"
    #: Deprecated: several ingest processes behind one MQTT 5 shared subscription ($share/<group>/...) spread each
    #: device's messages over them at random, so stateful rules see only part of the data. Refused when this
    #: process evaluates any rule; scale out with ``sites`` instead.
    shared_group: str | None = None
    #: The sites this process owns (``EHS_INGEST_SITES=cz01,sz02``): it subscribes to their topics only and
    #: evaluates only their rules; unset: every site. Ownership is registered in the database with a lease, and a
    #: second process claiming an owned site is refused (``ingest.leases``).
    sites: Annotated[list[str] | None, NoDecode] = None
    #: A site lease not renewed for this long is free again (a crashed process's sites can be taken over).
    lease_s: float = Field(30.0, gt=0)
    #: A pipeline thread that shows no sign of life for this long is stuck: the process exits non-zero.
    stuck_s: float = Field(60.0, gt=0)
    #: The alerts workers' heartbeat older than this raises the critical ``service.silent`` alarm.
    watch_stale_s: float = Field(30.0, gt=0)
    #: MQTT 5 Receive Maximum: how many unacknowledged QoS 1 messages the broker may send us at once.
    receive_maximum: int = Field(1000, ge=1, le=65535)
    #: Bounded queue between the network thread and the pipeline (messages).
    queue_size: int = Field(1000, ge=10)
    session_expiry_s: int = Field(7 * 24 * 3600, ge=0)
    #: One transaction holds at most this many readings (several decoded batches are merged).
    batch_max_readings: int = Field(60000, ge=1)
    #: The decode stage takes at most this many queued messages at once.
    batch_max_messages: int = Field(1000, ge=1)
    max_payload_bytes: int = Field(256 * 1024, ge=1024)
    max_future_s: float = 300.0
    max_age_days: float = 30.0
    heartbeat_s: float = 5.0
    #: One NOTIFY per committed batch naming the points that got readings (the API's live feed).
    notify_readings: bool = True
    #: The pipeline's tick stage (the rules' clock) runs at least this often when nothing arrives.
    tick_s: float = Field(1.0, gt=0)
    #: Longest wait between attempts to reach the database while spooling.
    db_retry_max_s: float = 30.0
    #: MQTT 5 user property in which the broker names each message's sender (core.identity); unset: not checked.
    sender_property: str | None = None
    #: Service accounts the sender check accepts on any device's telemetry topic: relays that carry readings that
    #: arrived another way (the HJ 212 listener, ``ingest.hj212.relay``). JSON list in the environment.
    relay_senders: tuple[str, ...] = ("ehs-hj212",)
    #: Dead letters: kept this many days, at most this many per topic and day (made-up topics cannot fill the
    #: disk), at most this many rows in all; pruned by the housekeeping at most every ``dead_letter_prune_s``.
    dead_letter_days: int = Field(30, ge=1)
    dead_letter_per_topic_day: int = Field(1000, ge=1)
    dead_letter_max_rows: int = Field(1_000_000, ge=1000)
    dead_letter_prune_s: float = Field(300.0, gt=0)

    @field_validator("sites", mode="before")
    @classmethod
    def _split_sites(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, list):
            value = sorted({str(part).strip() for part in value if str(part).strip()}) or None
        return value
