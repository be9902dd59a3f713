"""The MQTT topic grammar of ARCHITECTURE.md: ``ehs/v1/{site}/{device}/{channel}``."""

from __future__ import annotations

from typing import NamedTuple

PREFIX = "ehs/v1"
TELEMETRY = "telemetry"
STATUS = "status"
CMD = "cmd"
CMD_ACK = "cmd/ack"
CHANNELS = (TELEMETRY, STATUS, CMD, CMD_ACK)


class Topic(NamedTuple):
    site: str
    device: str
    channel: str


def parse(topic: str) -> Topic | None:
    """Split a device topic; None when it is not of the grammar."""
    parts = topic.split("/", 4)
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != PREFIX or not parts[2] or not parts[3]:
        return None
    if parts[4] not in CHANNELS:
        return None
    return Topic(parts[2], parts[3], parts[4])


def device_topic(site: str, device: str, channel: str) -> str:
    return f"{PREFIX}/{site}/{device}/{channel}"


def alarms_topic(site: str) -> str:
    return f"{PREFIX}/{site}/alarms"


#: What ingest subscribes to.
SUBSCRIPTIONS = (f"{PREFIX}/+/+/{TELEMETRY}", f"{PREFIX}/+/+/{STATUS}")
