"""Two commands to one device in the same millisecond (two plan levels in one batch) both pass the device-side
replay check: the interlock client gives each device strictly increasing ``issued_at``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.interlock import MqttInterlock
from core import mqtt as mq
from core.commands import DeviceCommandState, check_command, device_key, new_command, to_ms

SECRET = "order-test-secret"


def test_same_millisecond_commands_to_one_device_are_all_accepted() -> None:
    interlock = MqttInterlock(
        mq.BrokerAddress.parse("mqtt://127.0.0.1:9"), secret=SECRET, client_id="order-test", protocol=mq.MQTTv5
    )  # never connected: publish only queues
    now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    sent = [
        interlock.send("s1", dev, new_command(action=action, params={}, issued_at=now, ttl=timedelta(seconds=30)))
        for dev, action in (
            ("cab-01", "charge.stop"),
            ("cab-01", "charge.stop"),
            ("fan-01", "exhaust_fan.on"),
            ("cab-01", "charge.resume"),
        )
    ]
    assert [b["issued_at"] - to_ms(now) for b in sent] == [0, 1, 0, 2]
    assert all(b["expires_at"] - b["issued_at"] == 30_000 for b in sent)
    states = {"cab-01": DeviceCommandState(), "fan-01": DeviceCommandState()}
    for body, dev in zip(sent, ("cab-01", "cab-01", "fan-01", "cab-01"), strict=True):
        verdict = check_command(body, device_key(SECRET, "s1", dev), states[dev], now_ms=to_ms(now) + 5)
        assert verdict.outcome == "accept", verdict.reason
