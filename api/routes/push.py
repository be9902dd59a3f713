"""What the PWA needs for notifications: the VAPID key, push subscriptions, own notification settings, and the
signed alarm links of messages (open and acknowledge an alarm without signing in: the token is the credential)."""

from __future__ import annotations

from datetime import time
from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from alerts import service, store
from alerts.models import Actor, AlarmState
from alerts.notifications import links, notify_config, webpush
from alerts.settings import AlertSettings
from api.deps import AppClock, Conn, PathId, Settings, require_user
from api.policy import Permission, Principal, Role, allowed, scope_for
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


def _link(token: str, conn, settings, clock) -> tuple[links.Link, dict]:
    if len(token) > 1000:
        raise HTTPException(404, "unknown link")
    try:
        link = links.read(settings.keyring, token, now=clock.now())
    except links.LinkError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    alarm = store.fetch_one(conn, "SELECT * FROM alarm WHERE id = %s", (link.alarm_id,))
    if alarm is None:
        raise HTTPException(404, "unknown link")
    return link, alarm


def _acker(conn, link: links.Link, alarm: dict) -> Actor | None:
    """The person the link was sent to, if they may acknowledge this alarm: an active user whose role allows it
    and whose sites (and processes) include the alarm's, as if they had signed in."""
    if link.user_id is None:
        return None
    user = store.fetch_one(
        conn,
        "SELECT username, role, site_ids, all_sites FROM app_user WHERE id = %s AND disabled_at IS NULL",
        (link.user_id,),
    )
    if user is None or not allowed(Role(user["role"]), Permission.ALARMS_ACK):
        return None
    scope = scope_for(Role(user["role"]), user["site_ids"], user["all_sites"])
    where = store.fetch_one(
        conn,
        "SELECT s.id AS site_id, a.process_type FROM site s LEFT JOIN area a "
        "ON a.site_id = s.id AND a.code = %s WHERE s.code = %s",
        (alarm["area"], alarm["site"]),
    )
    if (
        where is None
        or not scope.has_site(where["site_id"])
        or (scope.processes is not None and not scope.has_process(where["process_type"] or ""))
    ):
        return None
    return Actor(f"user:{user['username']}", user["role"])  # named as every API action names a person


@router.get("/links/{token}", response_model=LinkRead)
def open_link(token: Token, conn: Conn, settings: Settings, clock: AppClock):
    """The alarm a notification link points to (no sign-in: the signed, short-lived token is the credential)."""
    link, alarm = _link(token, conn, settings, clock)
    can_ack = _acker(conn, link, alarm) is not None and AlarmState(alarm["state"]).needs_ack
    return {"alarm_id": alarm["id"], "alarm": alarm, "expires_at": link.expires_at, "can_ack": can_ack}


@router.post("/links/{token}/ack")
def ack_link(token: Token, body: LinkAck, conn: Conn, settings: Settings, clock: AppClock):
    """Acknowledge the alarm as the person the link was sent to (audited as them)."""
    link, alarm = _link(token, conn, settings, clock)
    actor = _acker(conn, link, alarm)
    if actor is None:
        raise HTTPException(403, "this link may open the alarm but not acknowledge it")
    if not AlarmState(alarm["state"]).needs_ack:
        raise HTTPException(409, "the alarm does not need an acknowledgement any more")
    return service.acknowledge(
        conn=conn,
        alarm_id=alarm["id"],
        actor=actor,
        now=clock.now(),
        comment=body.comment or "确认 (通知链接) / acknowledged from a notification link",
    ).to_dict()
