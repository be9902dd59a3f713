"""Notification administration (EHS managers and administrators): channels (URLs sealed, shown redacted),
escalation policies, duty rosters, and the record of notifications with every delivery attempt.

Site scope: an object of a site outside the caller's scope is 404; objects for every site (no site) are for
callers of every site only (403 to create or change, left out of lists).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response

from alerts.notifications import notify_config
from alerts.notifications.notify_config import ChannelSpec, PolicySpec, RosterSpec
from api import config_scope
from api.deps import After, Conn, Limit, PathId, QueryId, Settings, require
from api.errors import Invalid
from api.policy import Permission, Principal
from api.queries import Page, after_id, page
from api.schemas.notifications import ChannelRead, NotificationDetail, NotificationRead, PolicyRead, RosterRead
from core import audit
from core.scope import site_codes

router = APIRouter(prefix="/api/v1", tags=["notifications"])
Manager = Annotated[Principal, require(Permission.NOTIFY_MANAGE)]
Reader = Annotated[Principal, require(Permission.NOTIFY_READ)]
Name = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[\w.\- ]+$")]


def _sites(conn, who: Principal) -> list[str] | None:
    """The site codes of the caller's scope (None: every site)."""
    return site_codes(conn, who.scope.site_ids)


def _may_write(conn, who: Principal, site: str | None) -> None:
    sites = _sites(conn, who)
    if sites is not None and (site is None or site not in sites):
        raise HTTPException(
            403,
            "only callers of every site may configure this for " + ("every site" if site is None else f"site {site}"),
        )


def _visible(conn, who: Principal, site: str | None) -> bool:
    sites = _sites(conn, who)
    return sites is None or (site is not None and site in sites)


def _recipients(conn, names: dict[str, list[str]], site: str | None) -> None:
    """422 when a named person cannot receive for the site (same answer whether or not they exist)."""
    if problems := config_scope.recipient_problems(conn, names, site):
        field, message = problems[0]
        raise Invalid(message, field=field)


# --- channels -----------------------------------------------------------------------------------------------


@router.get("/notification-channels", response_model=list[ChannelRead])
def list_channels(who: Manager, conn: Conn):
    return [c for c in notify_config.list_channels(conn=conn) if _visible(conn, who, c["site"])]


@router.post("/notification-channels", response_model=ChannelRead, status_code=201)
def create_channel(body: ChannelSpec, who: Manager, conn: Conn, settings: Settings):
    """Add a channel (an apprise URL: wecombot://, dingtalk://, feishu://, mailto://, json://); the URL is sealed
    and never returned."""
    _may_write(conn, who, body.site)
    if notify_config.channel_name_taken(conn=conn, name=body.name):
        raise HTTPException(409, f"a channel named {body.name!r} exists")
    out = notify_config.put_channel(conn=conn, secret=settings.keyring, spec=body)
    audit.append(
        conn,
        actor=who.actor,
        action="notify.channel.create",
        target=f"channel:{out['id']}",
        site=out["site"],
        detail={"name": out["name"], "kind": out["kind"], "url": out["url"], "site": out["site"]},
    )
    return out


def _channel(conn, who: Principal, channel_id: int) -> dict:
    found = notify_config.get_channel(conn=conn, channel_id=channel_id)
    if not _visible(conn, who, found["site"]):
        raise HTTPException(404, f"no channel {channel_id}")
    return found


@router.get("/notification-channels/{channel_id}", response_model=ChannelRead)
def get_channel(channel_id: PathId, who: Manager, conn: Conn):
    return _channel(conn, who, channel_id)


@router.put("/notification-channels/{channel_id}", response_model=ChannelRead)
def replace_channel(channel_id: PathId, body: ChannelSpec, who: Manager, conn: Conn, settings: Settings):
    _channel(conn, who, channel_id)
    _may_write(conn, who, body.site)
    if notify_config.channel_name_taken(conn=conn, name=body.name, other_than=channel_id):
        raise HTTPException(409, f"a channel named {body.name!r} exists")
    out = notify_config.put_channel(conn=conn, secret=settings.keyring, spec=body, channel_id=channel_id)
    audit.append(
        conn,
        actor=who.actor,
        action="notify.channel.update",
        target=f"channel:{channel_id}",
        site=out["site"],
        detail={"name": out["name"], "kind": out["kind"], "url": out["url"], "site": out["site"]},
    )
    return out


@router.delete("/notification-channels/{channel_id}", status_code=204, response_class=Response)
def delete_channel(channel_id: PathId, who: Manager, conn: Conn) -> Response:
    found = _channel(conn, who, channel_id)
    _may_write(conn, who, found["site"])
    notify_config.delete_channel(conn=conn, channel_id=channel_id)
    audit.append(
        conn,
        actor=who.actor,
        action="notify.channel.delete",
        target=f"channel:{channel_id}",
        site=found["site"],
        detail={"name": found["name"]},
    )
    return Response(status_code=204)


# --- escalation policies and rosters ------------------------------------------------------------------------


@router.get("/escalation-policies", response_model=list[PolicyRead])
def list_policies(who: Manager, conn: Conn):
    return notify_config.list_policies(conn=conn, sites=_sites(conn, who))


@router.put("/escalation-policies/{name}", response_model=PolicyRead)
def put_policy(name: Name, body: PolicySpec, who: Manager, conn: Conn):
    """Create or replace the policy ``name`` (the body's name must match)."""
    if body.name != name:
        raise Invalid("the body's name must be the name in the path", field="body.name")
    existing = notify_config.policy_owner(conn=conn, name=name)
    if existing is not None and not _visible(conn, who, existing["site"]):
        raise HTTPException(404, f"no policy {name}")
    _may_write(conn, who, body.site)
    _recipients(conn, {f"body.tiers.{i}.users": t.users for i, t in enumerate(body.tiers)}, body.site)
    out = notify_config.put_policy(conn=conn, spec=body)
    audit.append(
        conn,
        actor=who.actor,
        action="notify.escalation.put",
        target=f"escalation:{name}",
        site=body.site,
        detail=body.model_dump(),
    )
    return out


@router.get("/rosters", response_model=list[RosterRead])
def list_rosters(who: Manager, conn: Conn):
    return notify_config.list_rosters(conn=conn, sites=_sites(conn, who))


@router.put("/rosters/{name}", response_model=RosterRead)
def put_roster(name: Name, body: RosterSpec, who: Manager, conn: Conn):
    """Create or replace the duty roster ``name``: who holds a role on which shift."""
    if body.name != name:
        raise Invalid("the body's name must be the name in the path", field="body.name")
    existing = notify_config.roster_owner(conn=conn, name=name)
    if existing is not None and not _visible(conn, who, existing["site"]):
        raise HTTPException(404, f"no roster {name}")
    _may_write(conn, who, body.site)
    _recipients(
        conn,
        {
            **{f"body.shifts.{i}.users": s.users for i, s in enumerate(body.shifts)},
            **{f"body.shifts.{i}.on_call": s.on_call for i, s in enumerate(body.shifts)},
        },
        body.site,
    )
    out = notify_config.put_roster(conn=conn, spec=body)
    audit.append(
        conn,
        actor=who.actor,
        action="notify.roster.put",
        target=f"roster:{name}",
        site=body.site,
        detail=body.model_dump(mode="json"),
    )
    return out


# --- the record ---------------------------------------------------------------------------------------------


@router.get("/notifications", response_model=Page[NotificationRead])
def list_notifications(
    who: Reader,
    conn: Conn,
    alarm_id: QueryId = None,
    status: Annotated[str | None, Query(pattern=r"^[a-z]{1,20}$")] = None,
    after: After = None,
    limit: Limit = 100,
):
    rows = notify_config.list_notifications(
        conn=conn, sites=_sites(conn, who), alarm_id=alarm_id, status=status, after=after_id(after), limit=limit
    )
    return page(rows, limit, lambda r: (r["id"],))


@router.get("/notifications/{notification_id}", response_model=NotificationDetail)
def get_notification(notification_id: PathId, who: Reader, conn: Conn):
    return notify_config.get_notification(conn=conn, notification_id=notification_id, sites=_sites(conn, who))
