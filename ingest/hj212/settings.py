"""Settings of the HJ 212 listener (prefix ``EHS_HJ212_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Hj212Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EHS_HJ212_", env_file=".env", extra="ignore")

    #: Address and TCP port the data loggers connect to (``ehs up`` starts the listener only when
    #: ``EHS_HJ212_PORT`` is set).
    host: str = "0.0.0.0"  # noqa: S104 - loggers connect from the plant network
    port: int = Field(9212, ge=0, le=65535)
    #: Connections served at once; more are closed at once (and logged).
    max_connections: int = Field(2000, ge=1)
    #: A connection silent this long is closed (loggers reconnect; HJ 212 has no keep-alive before 2025).
    idle_timeout_s: float = Field(600.0, gt=0)
    #: Bytes a frame may have before its CRLF (a whole frame is at most 1036); longer input is refused.
    max_frame_bytes: int = Field(4096, ge=1100)
    #: Frames waiting for the database; when full, the listener stops reading (TCP back-pressure).
    queue_size: int = Field(20000, ge=10)
    #: Frames written in one transaction at most.
    batch_max_frames: int = Field(5000, ge=1)
    #: Parts of a split upload wait this long for the rest.
    split_timeout_s: float = Field(120.0, gt=0)
    #: A data time further ahead of the listener's clock is refused (the logger's clock is wrong).
    max_future_s: float = 300.0
    #: Older data is refused (loggers re-send history after an outage; HJ 212 loggers keep about a month).
    max_age_days: float = 60.0
    #: Seconds between heartbeats and configuration checks.
    heartbeat_s: float = 5.0
    #: A connection that sends this many refused frames in a row is closed (each refused frame is a dead letter;
    #: this bounds what one misbehaving or hostile sender can write).
    max_refusals_in_a_row: int = Field(200, ge=1)
    #: Answer a logger's time-calibration request (1013) with a set-time command (1012).
    time_calibration: bool = True
    #: Relay the readings to ingest's rules and detectors over the broker (``ingest.hj212.relay``); needs
    #: EHS_MQTT_URL. Off: HJ 212 readings are stored and evaluated for compliance only, no alarms.
    relay: bool = True
    #: Seconds the relay loop waits for the broker to confirm (PUBACK) a batch of outbox messages; the
    #: unconfirmed ones stay unsent and are tried again (the 9014 answers never wait for the broker).
    relay_timeout_s: float = Field(5.0, gt=0)
    #: Outbox messages published per pass at most.
    relay_batch: int = Field(500, ge=1)
    #: Seconds between outbox checks when no commit wakes the relay loop (another listener's rows, restarts).
    relay_poll_s: float = Field(2.0, gt=0)
    #: First and longest back-off (seconds) while the broker does not take the messages.
    relay_retry_s: float = Field(1.0, gt=0)
    relay_retry_max_s: float = Field(30.0, gt=0)
    #: An unsent message older than this (seconds) is logged as an ERROR and shown in the heartbeat
    #: (``relay_backlog_late``).
    relay_backlog_alarm_s: float = Field(300.0, gt=0)
    #: Sent outbox rows are deleted after this many days.
    relay_retention_days: float = Field(7.0, gt=0)
    #: Seconds between retention passes.
    relay_purge_every_s: float = Field(3600.0, gt=0)
    #: Readings older than this (hours) are stored but not relayed (history re-sent after an outage).
    relay_max_age_h: float = Field(24.0, gt=0)
