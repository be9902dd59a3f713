"""Settings of the alerts worker (prefix ``EHS_ALERTS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EHS_ALERTS_", env_file=".env", extra="ignore")

    #: MQTT client id of the worker (commands out, acknowledgements in, alarm events out).
    client_id: str = "ehs-alerts"
    #: The worker's loop runs at least this often (acknowledgements and LISTEN notifications wake it sooner).
    tick_s: float = Field(0.5, gt=0)
    heartbeat_s: float = Field(5.0, gt=0)
    #: Publish alarm events on ehs/v1/{site}/alarms for SCADA and other consumers.
    publish_alarms: bool = True
