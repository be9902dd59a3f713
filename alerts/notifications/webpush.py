"""Web Push to the PWA (RFC 8030 messages, RFC 8291 aes128gcm encryption, RFC 8292 VAPID) through pywebpush.

The VAPID key pair is generated once and kept in ``vapid_key`` (private key sealed under ``EHS_SECRET_KEY``),
unless ``EHS_VAPID_PRIVATE_KEY`` (raw P-256 private key, URL-safe base64) is set. The payload is the JSON the
PWA's service worker shows with an "确认/Acknowledge" action (the contract with the PWA)::

    {"kind": "alarm"|"reminder"|"flood"|"test", "alarm_id", "event_id", "title", "body", "priority": 1..4,
     "drill": bool, "url": "/app/#/alarms/<id>?t=<token>", "link_token", "at": ISO time}

Each message carries the delivery key as its ``Topic`` (RFC 8030 section 5.4), so that a copy sent again after
a crash replaces an undelivered first copy at the push service instead of showing twice.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from alerts.notifications.notify import SendResult
from alerts.seal import seal, unseal
from core import db
from core.keys import Keyring

_PURPOSE = "vapid-private-key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _public_of(private: ec.EllipticCurvePrivateKey) -> str:
    return _b64(
        private.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )


def keys_from_private(private_b64: str) -> tuple[str, str]:
    """(public, private) from a raw private key in URL-safe base64."""
    raw = base64.urlsafe_b64decode(private_b64 + "=" * (-len(private_b64) % 4))
    private = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    return _public_of(private), private_b64


def vapid_keys(*, conn: psycopg.Connection, secret: str | Keyring, configured: str | None = None) -> tuple[str, str]:
    """(public, private) VAPID keys: the configured private key, else the stored pair, else a new stored pair."""
    if configured:
        return keys_from_private(configured)
    row = db.execute(conn, "SELECT public_key, private_sealed FROM vapid_key WHERE id = 1").fetchone()
    if row is None:
        private = ec.generate_private_key(ec.SECP256R1())
        private_b64 = _b64(private.private_numbers().private_value.to_bytes(32, "big"))
        conn.execute(
            "INSERT INTO vapid_key (id, public_key, private_sealed) VALUES (1, %s, %s) ON CONFLICT (id) DO NOTHING",
            (_public_of(private), seal(secret, private_b64, purpose=_PURPOSE)),
        )
        row = db.execute(conn, "SELECT public_key, private_sealed FROM vapid_key WHERE id = 1").fetchone()
    return row[0], unseal(secret, row[1], purpose=_PURPOSE)


def payload(
    *,
    kind: str,
    alarm_id: int | None,
    event_id: int | None,
    title: str,
    body: str,
    priority: int,
    drill: bool,
    url: str | None,
    link_token: str | None,
    at: datetime,
) -> bytes:
    kind = {"plan": "alarm", "drill": "alarm", "summary": "flood", "interlock": "alarm"}.get(kind, kind)
    return orjson.dumps(
        {
            "kind": kind,
            "alarm_id": alarm_id,
            "event_id": event_id,
            "title": title,
            "body": body,
            "priority": priority,
            "drill": drill,
            "url": url,
            "link_token": link_token,
            "at": at.isoformat(),
        }
    )


def send(
    subscription: Mapping[str, Any],
    data: bytes,
    *,
    private_key: str,
    subject: str,
    key: str,
    ttl_s: int,
    urgency: str,
    timeout_s: float = 10.0,
) -> SendResult:
    """Encrypt and post one message; 404/410 from the push service means the subscription is gone."""
    endpoint = subscription["endpoint"]
    parts = urlsplit(endpoint)
    topic = hashlib.sha256(key.encode()).hexdigest()[:32]  # Topic: at most 32 URL-safe characters
    try:
        webpush(
            {"endpoint": endpoint, "keys": {"p256dh": subscription["p256dh"], "auth": subscription["auth"]}},
            data=data.decode(),
            vapid_private_key=Vapid02.from_string(private_key),
            vapid_claims={"sub": subject, "aud": f"{parts.scheme}://{parts.netloc}"},
            ttl=ttl_s,
            timeout=timeout_s,
            headers={"Topic": topic, "Urgency": urgency},
        )
    except WebPushException as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (404, 410):
            return SendResult("gone", f"push service answered {status}: subscription expired")
        if status == 429:
            return SendResult("rate_limited", "push service answered 429", retry_after_s=30.0)
        return SendResult("error", f"push service answered {status}")
    except Exception as exc:  # noqa: BLE001 - network errors of requests, bad keys
        return SendResult("error", f"push failed: {type(exc).__name__}")
    return SendResult("ok")
