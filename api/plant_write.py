"""Admin changes to the plant registry, made through ``core.plant`` so the registry stays consistent.

Each change exports the site's configuration, edits it, validates it as a whole (schema and cross-references,
the same checks as ``ehs config apply``), applies it with ``apply_plant`` (a config revision, and the
``config_changed`` notification that makes ingest reload) and records it in the audit record, all in the
caller's transaction. The site row is locked first, so concurrent edits of one site are serialised.
Nothing is deleted: removing an item retires it, as ``apply_plant`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from pydantic import BaseModel, ValidationError

from api.errors import Conflict, Forbidden, Invalid, NotFound
from api.policy import Principal
from api.queries import fetch_one
from api.schemas import plant as s
from core import audit
from core.plant import PlantConfig, apply_plant, check_references, export_plant
from core.yamlconf import format_loc

Edit = Callable[[dict[str, Any]], None]


def _lock_site(conn: psycopg.Connection, principal: Principal, site_id: int) -> str:
    row = fetch_one(conn, "SELECT code FROM site WHERE id = %s FOR UPDATE", (site_id,))
    if row is None or not principal.scope.has_site(site_id):
        raise NotFound(f"no site {site_id}")
    return row["code"]


def _apply(
    conn: psycopg.Connection,
    principal: Principal,
    data: dict[str, Any],
    *,
    action: str,
    target: str,
    detail: dict[str, Any],
) -> None:
    try:
        plant = PlantConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(first["msg"], field=format_loc(first["loc"])) from None
    problems = check_references(plant)
    if problems:
        raise Conflict("; ".join(message for _, message in problems))
    summary = apply_plant(conn=conn, plant=plant, source=f"api ({principal.actor})")
    audit.append(
        conn,
        actor=principal.actor,
        action=action,
        target=target,
        site=plant.sites[0].code,
        detail={**detail, "site": plant.sites[0].code, "revision": summary.revision, "changes": summary.as_dict()},
    )


def _edit(
    conn: psycopg.Connection,
    principal: Principal,
    site_id: int,
    edit: Edit,
    *,
    action: str,
    target: str,
    detail: dict[str, Any],
) -> None:
    code = _lock_site(conn, principal, site_id)
    data = export_plant(conn=conn, site=code).model_dump(mode="json")
    edit(data["sites"][0])
    _apply(conn, principal, data, action=action, target=target, detail=detail)


def _changes(body: BaseModel) -> dict[str, Any]:
    """The fields the client sent (so that an explicit null clears a field and an absent one is kept)."""
    return body.model_dump(mode="json", exclude_unset=True)


def _find(items: list[dict[str, Any]], key: str, value: str, what: str) -> dict[str, Any]:
    for item in items:
        if item[key] == value:
            return item
    raise NotFound(f"no {what} {value!r}")


def _ref(conn: psycopg.Connection, sql: str, obj_id: int, what: str) -> dict[str, Any]:
    row = fetch_one(conn, sql, (obj_id,))
    if row is None:
        raise NotFound(f"no {what} {obj_id}")
    return row


_AREA_REF = "SELECT a.site_id, a.code AS area FROM area a WHERE a.id = %s AND a.retired_at IS NULL"
_DEVICE_REF = (
    "SELECT d.site_id, a.code AS area, d.code AS device FROM device d JOIN area a ON a.id = d.area_id "
    "WHERE d.id = %s AND d.retired_at IS NULL"
)
_POINT_REF = (
    "SELECT d.site_id, a.code AS area, d.code AS device, p.key FROM point p "
    "JOIN device d ON d.id = p.device_id JOIN area a ON a.id = d.area_id "
    "WHERE p.id = %s AND p.retired_at IS NULL AND d.retired_at IS NULL"
)
_METER_REF = "SELECT site_id, code AS meter FROM meter WHERE id = %s AND retired_at IS NULL"


def _new_id(conn: psycopg.Connection, sql: str, params: tuple) -> int:
    return fetch_one(conn, sql, params)["id"]


# --- sites --------------------------------------------------------------------------------------------------


def create_site(*, conn: psycopg.Connection, principal: Principal, body: s.SiteCreate) -> int:
    if principal.scope.site_ids is not None:
        raise Forbidden("creating a site needs an administrator of all sites")
    if fetch_one(conn, "SELECT 1 FROM site WHERE code = %s", (body.code,)):
        raise Conflict(f"site {body.code!r} exists")
    data = {"version": 1, "sites": [{**body.model_dump(mode="json"), "areas": [], "meters": []}]}
    _apply(conn, principal, data, action="config.site.create", target=f"site/{body.code}", detail={})
    return _new_id(conn, "SELECT id FROM site WHERE code = %s", (body.code,))


def update_site(*, conn: psycopg.Connection, principal: Principal, site_id: int, body: s.SiteUpdate) -> None:
    changes = _changes(body)
    if "name" in changes and changes["name"] is None:
        raise Invalid("a site must have a name", field="body.name")
    _edit(
        conn,
        principal,
        site_id,
        lambda site: site.update(changes),
        action="config.site.update",
        target=f"site/{site_id}",
        detail={"set": changes},
    )


# --- areas --------------------------------------------------------------------------------------------------


def create_area(*, conn: psycopg.Connection, principal: Principal, body: s.AreaCreate) -> int:
    def edit(site: dict[str, Any]) -> None:
        if any(a["code"] == body.code for a in site["areas"]):
            raise Conflict(f"area {body.code!r} exists in this site")
        site["areas"].append(
            {
                "code": body.code,
                "name": body.name,
                "name_en": body.name_en,
                "process": body.process.value,
                "devices": [],
            }
        )

    _edit(
        conn,
        principal,
        body.site_id,
        edit,
        action="config.area.create",
        target=f"area/{body.code}",
        detail={"code": body.code},
    )
    return _new_id(conn, "SELECT id FROM area WHERE site_id = %s AND code = %s", (body.site_id, body.code))


def update_area(*, conn: psycopg.Connection, principal: Principal, area_id: int, body: s.AreaUpdate) -> None:
    ref = _ref(conn, _AREA_REF, area_id, "area")
    changes = _changes(body)
    for required in ("name", "process"):
        if required in changes and changes[required] is None:
            raise Invalid(f"an area must have a {required}", field=f"body.{required}")

    def edit(site: dict[str, Any]) -> None:
        _find(site["areas"], "code", ref["area"], "area").update(changes)

    _edit(
        conn,
        principal,
        ref["site_id"],
        edit,
        action="config.area.update",
        target=f"area/{area_id}",
        detail={"set": changes},
    )


def retire_area(*, conn: psycopg.Connection, principal: Principal, area_id: int) -> None:
    ref = _ref(conn, _AREA_REF, area_id, "area")

    def edit(site: dict[str, Any]) -> None:
        area = _find(site["areas"], "code", ref["area"], "area")
        if area["devices"]:
            raise Conflict(
                f"area {ref['area']!r} still has {len(area['devices'])} device(s); move or retire them first"
            )
        site["areas"].remove(area)

    _edit(conn, principal, ref["site_id"], edit, action="config.area.retire", target=f"area/{area_id}", detail={})


# --- devices ------------------------------------------------------------------------------------------------


def _all_devices(site: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for a in site["areas"] for d in a["devices"]]


def _meters_reading(site: dict[str, Any], device: str, key: str | None = None) -> list[str]:
    return [
        m["code"]
        for m in site["meters"]
        if m["point"].split("/")[0] == device and (key is None or m["point"].split("/")[1] == key)
    ]


def create_device(*, conn: psycopg.Connection, principal: Principal, body: s.DeviceCreate) -> int:
    ref = _ref(conn, _AREA_REF, body.area_id, "area")

    def edit(site: dict[str, Any]) -> None:
        if any(d["code"] == body.code for d in _all_devices(site)):
            raise Conflict(f"device {body.code!r} exists in this site")
        device = body.model_dump(mode="json", exclude={"area_id"})
        _find(site["areas"], "code", ref["area"], "area")["devices"].append(device)

    _edit(
        conn,
        principal,
        ref["site_id"],
        edit,
        action="config.device.create",
        target=f"device/{body.code}",
        detail={"code": body.code, "points": len(body.points)},
    )
    return _new_id(conn, "SELECT id FROM device WHERE site_id = %s AND code = %s", (ref["site_id"], body.code))


def update_device(*, conn: psycopg.Connection, principal: Principal, device_id: int, body: s.DeviceUpdate) -> None:
    ref = _ref(conn, _DEVICE_REF, device_id, "device")
    changes = _changes(body)
    move_to = changes.pop("area_id", None)
    target_area = _ref(conn, _AREA_REF, move_to, "area") if move_to is not None else None
    if target_area is not None and target_area["site_id"] != ref["site_id"]:
        raise Invalid("a device can only move within its site", field="body.area_id")
    for required in ("name", "kind", "interval_s"):
        if required in changes and changes[required] is None:
            raise Invalid(f"a device must have {required}", field=f"body.{required}")

    def edit(site: dict[str, Any]) -> None:
        area = _find(site["areas"], "code", ref["area"], "area")
        device = _find(area["devices"], "code", ref["device"], "device")
        device.update(changes)
        if target_area is not None and target_area["area"] != ref["area"]:
            area["devices"].remove(device)
            _find(site["areas"], "code", target_area["area"], "area")["devices"].append(device)

    _edit(
        conn,
        principal,
        ref["site_id"],
        edit,
        action="config.device.update",
        target=f"device/{device_id}",
        detail={"set": changes, "area_id": move_to},
    )


def retire_device(*, conn: psycopg.Connection, principal: Principal, device_id: int) -> None:
    ref = _ref(conn, _DEVICE_REF, device_id, "device")

    def edit(site: dict[str, Any]) -> None:
        if meters := _meters_reading(site, ref["device"]):
            raise Conflict(f"meter(s) {', '.join(meters)} read this device; retire or change them first")
        area = _find(site["areas"], "code", ref["area"], "area")
        area["devices"].remove(_find(area["devices"], "code", ref["device"], "device"))

    _edit(conn, principal, ref["site_id"], edit, action="config.device.retire", target=f"device/{device_id}", detail={})
    # apply_plant retires the device; its points go with it (they are no longer listed under any device)
    conn.execute(
        "UPDATE point SET retired_at = now(), updated_at = now() WHERE device_id = %s AND retired_at IS NULL",
        (device_id,),
    )


# --- points -------------------------------------------------------------------------------------------------


def create_point(*, conn: psycopg.Connection, principal: Principal, body: s.PointCreate) -> int:
    ref = _ref(conn, _DEVICE_REF, body.device_id, "device")

    def edit(site: dict[str, Any]) -> None:
        device = _find(_find(site["areas"], "code", ref["area"], "area")["devices"], "code", ref["device"], "device")
        if any(p["key"] == body.key for p in device["points"]):
            raise Conflict(f"point {body.key!r} exists on device {ref['device']!r}")
        device["points"].append(body.model_dump(mode="json", exclude={"device_id"}))

    _edit(
        conn,
        principal,
        ref["site_id"],
        edit,
        action="config.point.create",
        target=f"point/{ref['device']}/{body.key}",
        detail={"device_id": body.device_id, "key": body.key},
    )
    return _new_id(conn, "SELECT id FROM point WHERE device_id = %s AND key = %s", (body.device_id, body.key))


def update_point(*, conn: psycopg.Connection, principal: Principal, point_id: int, body: s.PointUpdate) -> None:
    ref = _ref(conn, _POINT_REF, point_id, "point")
    changes = _changes(body)
    if "name" in changes and changes["name"] is None:
        raise Invalid("a point must have a name", field="body.name")

    def edit(site: dict[str, Any]) -> None:
        device = _find(_find(site["areas"], "code", ref["area"], "area")["devices"], "code", ref["device"], "device")
        point = _find(device["points"], "key", ref["key"], "point")
        point.update(changes)
        if "range" in changes and changes["range"] is None:
            point.pop("range")  # back to the quantity's default range

    _edit(
        conn,
        principal,
        ref["site_id"],
        edit,
        action="config.point.update",
        target=f"point/{point_id}",
        detail={"set": changes},
    )


def retire_point(*, conn: psycopg.Connection, principal: Principal, point_id: int) -> None:
    ref = _ref(conn, _POINT_REF, point_id, "point")

    def edit(site: dict[str, Any]) -> None:
        if meters := _meters_reading(site, ref["device"], ref["key"]):
            raise Conflict(f"meter(s) {', '.join(meters)} read this point; retire or change them first")
        device = _find(_find(site["areas"], "code", ref["area"], "area")["devices"], "code", ref["device"], "device")
        if len(device["points"]) == 1:
            raise Conflict("the last point of a device cannot be retired; retire the device instead")
        device["points"].remove(_find(device["points"], "key", ref["key"], "point"))

    _edit(conn, principal, ref["site_id"], edit, action="config.point.retire", target=f"point/{point_id}", detail={})


# --- meters -------------------------------------------------------------------------------------------------


def _meter_refs(conn: psycopg.Connection, site_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Turn the ids of a meter body (point, parent, area) into the codes of the configuration file."""
    out: dict[str, Any] = {}
    if changes.get("point_id") is not None:
        point = _ref(conn, _POINT_REF, changes["point_id"], "point")
        if point["site_id"] != site_id:
            raise Invalid("the point must belong to the meter's site", field="body.point_id")
        out["point"] = f"{point['device']}/{point['key']}"
    if "parent_id" in changes:
        parent = _ref(conn, _METER_REF, changes["parent_id"], "meter") if changes["parent_id"] is not None else None
        if parent is not None and parent["site_id"] != site_id:
            raise Invalid("the parent must belong to the meter's site", field="body.parent_id")
        out["parent"] = parent["meter"] if parent else None
    if "area_id" in changes:
        area = _ref(conn, _AREA_REF, changes["area_id"], "area") if changes["area_id"] is not None else None
        if area is not None and area["site_id"] != site_id:
            raise Invalid("the area must belong to the meter's site", field="body.area_id")
        out["area"] = area["area"] if area else None
    return out


def create_meter(*, conn: psycopg.Connection, principal: Principal, body: s.MeterCreate) -> int:
    _lock_site(conn, principal, body.site_id)
    meter = {
        "code": body.code,
        "name": body.name,
        "name_en": body.name_en,
        "medium": body.medium.value,
        **_meter_refs(conn, body.site_id, body.model_dump(include={"point_id", "parent_id", "area_id"})),
    }

    def edit(site: dict[str, Any]) -> None:
        if any(m["code"] == body.code for m in site["meters"]):
            raise Conflict(f"meter {body.code!r} exists in this site")
        site["meters"].append(meter)

    _edit(
        conn,
        principal,
        body.site_id,
        edit,
        action="config.meter.create",
        target=f"meter/{body.code}",
        detail={"code": body.code},
    )
    return _new_id(conn, "SELECT id FROM meter WHERE site_id = %s AND code = %s", (body.site_id, body.code))


def update_meter(*, conn: psycopg.Connection, principal: Principal, meter_id: int, body: s.MeterUpdate) -> None:
    ref = _ref(conn, _METER_REF, meter_id, "meter")
    _lock_site(conn, principal, ref["site_id"])
    changes = _changes(body)
    if "name" in changes and changes["name"] is None:
        raise Invalid("a meter must have a name", field="body.name")
    refs = _meter_refs(conn, ref["site_id"], changes)
    plain = {k: v for k, v in changes.items() if k in ("name", "name_en")}

    def edit(site: dict[str, Any]) -> None:
        _find(site["meters"], "code", ref["meter"], "meter").update({**plain, **refs})

    _edit(
        conn,
        principal,
        ref["site_id"],
        edit,
        action="config.meter.update",
        target=f"meter/{meter_id}",
        detail={"set": changes},
    )


def retire_meter(*, conn: psycopg.Connection, principal: Principal, meter_id: int) -> None:
    ref = _ref(conn, _METER_REF, meter_id, "meter")

    def edit(site: dict[str, Any]) -> None:
        if children := [m["code"] for m in site["meters"] if m.get("parent") == ref["meter"]]:
            raise Conflict(f"meter(s) {', '.join(children)} hang below this meter; move them first")
        site["meters"].remove(_find(site["meters"], "code", ref["meter"], "meter"))

    _edit(conn, principal, ref["site_id"], edit, action="config.meter.retire", target=f"meter/{meter_id}", detail={})
