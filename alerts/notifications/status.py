"""Statuses of the notification outbox and of its deliveries, as the database's CHECK constraints allow them
(core/migrations/0013 and 0030); the API's schemas type their ``status`` fields with them."""

from __future__ import annotations

from enum import StrEnum


class OutboxStatus(StrEnum):
    """A notification of the outbox (``notification_outbox.status``)."""

    PENDING = "pending"
    SENDING = "sending"  # claimed by a worker, expanded into deliveries
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    GROUPED = "grouped"  # folded into a flood's notification


class DeliveryStatus(StrEnum):
    """One delivery of a notification to one person on one channel (``notification_delivery.status``)."""

    PENDING = "pending"
    SENDING = "sending"  # leased by a worker
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
