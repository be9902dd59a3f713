"""The OpenAPI document names the alarm engine's statuses (issue 18, item 1): alarm state, priority, severity,
command status and notification statuses are the domain's enums, not bare strings."""

from __future__ import annotations

from typing import Any

from alerts.decisions import CommandStatus
from alerts.models import AlarmState, Priority
from alerts.notifications.status import DeliveryStatus, OutboxStatus
from api.main import create_app
from core.model import Severity
from core.settings import CoreSettings

DOC = create_app(CoreSettings(database_url="postgresql://unused@127.0.0.1/unused")).openapi()
SCHEMAS: dict[str, Any] = DOC["components"]["schemas"]


def _enum(prop: dict[str, Any]) -> list:
    """The enum values a property allows (through its ``$ref``, or an ``anyOf`` with null)."""
    for option in prop.get("anyOf", [prop]):
        if "$ref" in option:
            return SCHEMAS[option["$ref"].rsplit("/", 1)[1]]["enum"]
        if "enum" in option:
            return option["enum"]
    raise AssertionError(f"no enum in {prop}")


def _prop(model: str, name: str) -> dict[str, Any]:
    return SCHEMAS[model]["properties"][name]


def test_alarm_state_and_priority_are_enums() -> None:
    states = [s.value for s in AlarmState]
    assert _enum(_prop("AlarmRead", "state")) == states
    assert "active_unacked" in states and "out_of_service" in states
    assert _enum(_prop("AlarmDetail", "state")) == states
    assert _enum(_prop("AlarmEventRead", "to_state")) == states
    assert _enum(_prop("AlarmRead", "priority")) == [1, 2, 3, 4] == [int(p) for p in Priority]
    assert _enum(_prop("AlarmRead", "severity")) == [int(s) for s in Severity]


def test_command_and_notification_statuses_are_enums() -> None:
    assert _enum(_prop("CommandRead", "status")) == [s.value for s in CommandStatus]
    assert set(_enum(_prop("DeliveryRead", "status"))) == {s.value for s in DeliveryStatus}
    # two models are named NotificationRead (alarm detail, notification list): FastAPI prefixes their module
    notifications = [
        m for name, m in SCHEMAS.items() if name.endswith("NotificationRead") or name == "NotificationDetail"
    ]
    assert len(notifications) == 3
    for model in notifications:
        assert _enum(model["properties"]["status"]) == [s.value for s in OutboxStatus]
        assert _enum(model["properties"]["priority"]) == [int(p) for p in Priority]
