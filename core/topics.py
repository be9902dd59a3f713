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


#: What ingest subscribes to, with the QoS of each subscription. Telemetry is QoS 1 (acknowledged after commit).
#: Status is retained state, subscribed at QoS 0: on every (re)subscription the broker sends the retained status
#: of every device at once, and at QoS 1 Mosquitto queues at most ``max_queued_messages`` (1000 by default) of
#: them and drops the rest; at QoS 0 they all arrive, and a change missed while ingest was away comes back as
#: the retained value at the next subscription.
SUBSCRIPTIONS: tuple[tuple[str, int], ...] = ((f"{PREFIX}/+/+/{TELEMETRY}", 1), (f"{PREFIX}/+/+/{STATUS}", 0))


def subscriptions(sites: list[str] | None) -> tuple[tuple[str, int], ...]:
    """``SUBSCRIPTIONS`` narrowed to the given sites (an ingest process that owns some sites); all when None."""
    if not sites:
        return SUBSCRIPTIONS
    return tuple(
        (f"{PREFIX}/{site}/+/{channel}", qos) for site in sites for channel, qos in ((TELEMETRY, 1), (STATUS, 0))
    )
