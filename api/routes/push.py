"""What the PWA needs for notifications: the VAPID key, push subscriptions, own notification settings, and the
signed alarm links of messages (open and acknowledge an alarm without signing in: the token is the credential)."""

from __future__ import annotations

from datetime import time
from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from alerts.notifications import link_access, links, notify_config, webpush
from alerts.settings import AlertSettings
from api.deps import AppClock, Conn, PathId, Settings, require_user
from api.policy import Principal
from api.schemas.notifications import (
    LinkAck,
    LinkRead,
    NotificationSettings,
    PushSubscriptionCreate,
    PushSubscriptionRead,
    VapidKeyRead,
)

router = APIRouter(prefix="/api/v1", tags=["notifications"])
Person = Annotated[Principal, require_user()]
Token = Annotated[str, "signed link token"]


@router.get("/push/vapid-public-key", response_model=VapidKeyRead)
def vapid_public_key(_me: Person, conn: Conn, settings: Settings):
    """The VAPID public key (``applicationServerKey`` of ``pushManager.subscribe``)."""
    public, _ = webpush.vapid_keys(conn=conn, secret=settings.keyring, configured=AlertSettings().vapid_private_key)
    return {"public_key": public}


@router.post("/push/subscriptions", response_model=PushSubscriptionRead, status_code=201)
def subscribe(body: PushSubscriptionCreate, me: Person, conn: Conn):
    return notify_config.add_subscription(
        conn=conn, user_id=me.id, endpoint=body.endpoint, p256dh=body.keys.p256dh, auth=body.keys.auth, lang=body.lang
    )


@router.get("/push/subscriptions", response_model=list[PushSubscriptionRead])
def my_subscriptions(me: Person, conn: Conn):
    return notify_config.list_subscriptions(conn=conn, user_id=me.id)


@router.delete("/push/subscriptions/{subscription_id}", status_code=204, response_class=Response)
def unsubscribe(subscription_id: PathId, me: Person, conn: Conn) -> Response:
    notify_config.delete_subscription(conn=conn, user_id=me.id, subscription_id=subscription_id)
    return Response(status_code=204)


@router.get("/me/notification-settings", response_model=NotificationSettings)
def my_settings(me: Person, conn: Conn):
    return notify_config.get_settings(conn=conn, user_id=me.id)


@router.put("/me/notification-settings", response_model=NotificationSettings)
def put_my_settings(body: NotificationSettings, me: Person, conn: Conn):
    quiet = (
        (time.fromisoformat(body.quiet_hours.start), time.fromisoformat(body.quiet_hours.end))
        if body.quiet_hours
        else None
    )
    notify_config.put_settings(
        conn=conn,
        user_id=me.id,
        lang=body.lang,
        channels=body.channels.model_dump(),
        quiet_hours=quiet,
        min_priority=body.min_priority,
        email=body.email,
        phone=body.phone,
        wecom_user=body.wecom_user,
    )
    return notify_config.get_settings(conn=conn, user_id=me.id)


# --- signed links ---------------------------------------------------------------------------------------------


def _link(token: str, settings, clock) -> links.Link:
    if len(token) > 1000:
        raise HTTPException(404, "unknown link")
    try:
        return links.read(settings.keyring, token, now=clock.now())
    except links.LinkError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.get("/links/{token}", response_model=LinkRead)
def open_link(token: Token, conn: Conn, settings: Settings, clock: AppClock):
    """The alarm a notification link points to (no sign-in: the signed, short-lived token is the credential)."""
    link = _link(token, settings, clock)
    alarm = link_access.alarm(conn, link)
    can_ack = link_access.can_ack(conn, link, alarm)
    return {"alarm_id": alarm["id"], "alarm": alarm, "expires_at": link.expires_at, "can_ack": can_ack}


@router.post("/links/{token}/ack")
def ack_link(token: Token, body: LinkAck, conn: Conn, settings: Settings, clock: AppClock):
    """Acknowledge the alarm as the person the link was sent to (audited as them)."""
    link = _link(token, settings, clock)
    return link_access.acknowledge(conn, link, now=clock.now(), comment=body.comment)
