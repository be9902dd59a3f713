"""Who a device is on the broker, and the optional check that a message's topic is its sender's.

A device logs in to MQTT as ``{site}/{device}`` (its codes from the plant configuration; one credential per site
and device). The shipped Mosquitto ACL (``deploy/mosquitto/acl``) substitutes that user name into
``ehs/v1/%u/...``, so the broker itself confines a device to its own topics on its own site; with client
certificates (``use_identity_as_username``) the certificate's CN is that same name.

Ingest and the alerts worker can check it again where the broker says who sent a message: a broker that adds the
publishing client's user name to each message as an MQTT 5 user property (EMQX: a rule that republishes with
``${username}``; a broker plugin) and strips the property from what clients send. Name that property in
``EHS_INGEST_SENDER_PROPERTY`` / ``EHS_ALERTS_SENDER_PROPERTY``; then a device message whose property is missing or
names another device is rejected (dead letter ``wrong_sender``). Unset (the default), the ACL is the guard.
"""

from __future__ import annotations

#: Service accounts (``ehs-ingest``, ``ehs-alerts``...) have no ``/`` in their name, devices always one.
SEPARATOR = "/"


def device_username(site: str, device: str) -> str:
    """The MQTT user name (and certificate CN) of one device."""
    return f"{site}{SEPARATOR}{device}"


def sender_refusal(
    site: str, device: str, properties: object, property_name: str | None, *, relays: frozenset[str] = frozenset()
) -> str | None:
    """Why a message on ``ehs/v1/{site}/{device}/...`` is not from that device, or None (also when unchecked).

    ``properties`` is the paho message's ``properties`` (MQTT 5), or None. ``relays``: service accounts accepted
    for any device (the HJ 212 listener relaying its loggers' readings as telemetry).
    """
    if not property_name:
        return None
    senders = [value for name, value in (getattr(properties, "UserProperty", None) or []) if name == property_name]
    if len(senders) != 1:
        return (
            f"the broker did not say who sent it (user property {property_name!r} "
            f"{'missing' if not senders else 'given more than once'})"
        )
    if senders[0] in relays and SEPARATOR not in senders[0]:
        return None
    if senders[0] != device_username(site, device):
        return f"sent by {senders[0][:100]!r}, not by {device_username(site, device)!r}"
    return None
