"""The authorization matrix: every route x every principal -> the expected status.

The route list comes from the app itself, so a new route without an entry here fails
``test_every_route_has_a_matrix_entry``. The expectations are written out by hand (not derived from
api/policy.py), so a change of the policy table must be mirrored here on purpose.
Principals: every role (``device`` is an API key), no credentials, an expired token, and an administrator of
another site (objects of this site are 404 for them, lists leave them out, creating for this site is 403).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from api import auth, security, users
from api.main import create_app, http_routes, iter_route_contexts, websocket_paths
from api.policy import Principal, Role, scope_for
from core.permissions import POLICY, Permission
from core.settings import CoreSettings
from tests.api import alarm_world, carbon_world, hazwaste_world
from tests.api.conftest import PASSWORD, SECRET, SITE, World

PRINCIPALS = ("anon", "expired", "other_site", "device", "viewer", "regulator", "operator", "ehs_manager", "admin")
ROLES = frozenset({"admin", "ehs_manager", "operator", "viewer", "regulator", "device"})
PEOPLE = ROLES - {"device"}
ADMIN = frozenset({"admin"})
OPS = frozenset({"admin", "ehs_manager", "operator"})  # alarm actions of the control room
MANAGERS = frozenset({"admin", "ehs_manager"})
REPORT_READERS = frozenset({"admin", "ehs_manager", "regulator"})
CARBON_READERS = frozenset({"admin", "ehs_manager", "operator", "viewer"})
ENERGY_READERS = frozenset({"admin", "ehs_manager", "operator", "viewer"})  # energy is not compliance data


@dataclass(frozen=True)
class Expect:
    ok: int  # status for the roles in ``roles``
    roles: frozenset[str]  # the others get 403
    other_site: int  # an administrator of another site
    special: dict[str, int] = field(default_factory=dict)  # per-role exceptions (regulators: compliance only)
    public: bool = False  # no credentials needed: anon and expired get ``ok`` too

    def status(self, who: str) -> int:
        if self.public:
            return self.ok
        if who in ("anon", "expired"):
            return 401
        if who == "other_site":
            return self.other_site
        if who in self.special:
            return self.special[who]
        return self.ok if who in self.roles else 403


def public(ok: int) -> Expect:
    return Expect(ok, ROLES, ok, public=True)


def reader(item: bool, roles: frozenset[str] = ROLES, *, compliance_hidden: bool = False) -> Expect:
    """A read: lists answer 200 to another site's admin (without this site's rows); items answer 404."""
    special = {"regulator": 404} if compliance_hidden else {}
    return Expect(200, roles, 404 if item else 200, special)


def write(ok: int, *, other_site: int = 404) -> Expect:
    return Expect(ok, ADMIN, other_site)


MATRIX: dict[tuple[str, str], Expect] = {
    ("GET", "/healthz"): public(200),
    ("GET", "/readyz"): public(200),
    ("GET", "/openapi.json"): public(200),
    ("GET", "/docs"): public(200),
    ("GET", "/docs/oauth2-redirect"): public(200),
    ("POST", "/api/v1/auth/token"): public(200),
    ("POST", "/api/v1/auth/refresh"): public(200),
    ("POST", "/api/v1/auth/logout"): public(204),
    ("GET", "/api/v1/auth/me"): Expect(200, ROLES, 200),
    ("POST", "/api/v1/auth/password"): Expect(200, PEOPLE, 200),
    ("POST", "/api/v1/auth/mfa/setup"): Expect(200, PEOPLE, 200),
    ("POST", "/api/v1/auth/mfa/enable"): Expect(204, PEOPLE, 204),
    ("POST", "/api/v1/auth/mfa/disable"): Expect(204, PEOPLE, 204),
    ("GET", "/api/v1/sites"): reader(False),
    ("GET", "/api/v1/sites/{site_id}"): reader(True),
    ("POST", "/api/v1/sites"): write(201, other_site=403),
    ("PATCH", "/api/v1/sites/{site_id}"): write(200),
    ("GET", "/api/v1/areas"): reader(False),
    ("GET", "/api/v1/areas/{area_id}"): reader(True, compliance_hidden=True),
    ("POST", "/api/v1/areas"): write(201),
    ("PATCH", "/api/v1/areas/{area_id}"): write(200),
    ("DELETE", "/api/v1/areas/{area_id}"): write(204),
    ("GET", "/api/v1/devices"): reader(False),
    ("GET", "/api/v1/devices/{device_id}"): reader(True, compliance_hidden=True),
    ("POST", "/api/v1/devices"): write(201),
    ("PATCH", "/api/v1/devices/{device_id}"): write(200),
    ("DELETE", "/api/v1/devices/{device_id}"): write(204),
    ("GET", "/api/v1/points"): reader(False),
    ("GET", "/api/v1/points/{point_id}"): reader(True, compliance_hidden=True),
    ("POST", "/api/v1/points"): write(201),
    ("PATCH", "/api/v1/points/{point_id}"): write(200),
    ("DELETE", "/api/v1/points/{point_id}"): write(204),
    ("GET", "/api/v1/meters"): reader(False),
    ("GET", "/api/v1/meters/{meter_id}"): reader(True, compliance_hidden=True),
    ("POST", "/api/v1/meters"): write(201),
    ("PATCH", "/api/v1/meters/{meter_id}"): write(200),
    ("DELETE", "/api/v1/meters/{meter_id}"): write(204),
    ("GET", "/api/v1/latest"): reader(False, PEOPLE),
    ("GET", "/api/v1/points/{point_id}/readings"): reader(True, PEOPLE, compliance_hidden=True),
    ("GET", "/api/v1/exports/readings"): reader(True, frozenset({"admin", "ehs_manager", "regulator"})),
    ("GET", "/api/v1/dead-letters"): reader(False, frozenset({"admin", "ehs_manager"})),
    ("GET", "/api/v1/dead-letters/{dead_letter_id}"): reader(True, frozenset({"admin", "ehs_manager"})),
    ("GET", "/api/v1/system/health"): reader(False, frozenset({"admin", "ehs_manager", "operator", "viewer"})),
    ("GET", "/api/v1/users"): reader(False, ADMIN),
    ("GET", "/api/v1/users/{user_id}"): reader(True, ADMIN),
    ("POST", "/api/v1/users"): write(201, other_site=403),
    ("PATCH", "/api/v1/users/{user_id}"): write(200),
    ("POST", "/api/v1/users/{user_id}/password"): write(200),
    ("POST", "/api/v1/users/{user_id}/mfa-reset"): write(204),
    ("POST", "/api/v1/users/{user_id}/unlock"): write(204),
    ("GET", "/api/v1/api-keys"): reader(False, ADMIN),
    ("GET", "/api/v1/api-keys/{key_id}"): reader(True, ADMIN),
    ("POST", "/api/v1/api-keys"): write(201, other_site=403),
    ("DELETE", "/api/v1/api-keys/{key_id}"): write(204),
    ("GET", "/api/v1/audit"): reader(False, frozenset({"admin", "ehs_manager", "regulator"})),
    ("GET", "/api/v1/audit/verify"): reader(False, frozenset({"admin", "ehs_manager", "regulator"})),
    # the alarm engine: alarms of s1/formation, which regulators do not see (not a compliance area)
    ("GET", "/api/v1/alarms"): reader(False, PEOPLE),
    ("GET", "/api/v1/alarms/kpi"): reader(False, PEOPLE),
    ("GET", "/api/v1/alarms/{alarm_id}"): reader(True, PEOPLE, compliance_hidden=True),
    ("POST", "/api/v1/alarms/{alarm_id}/ack"): Expect(200, OPS, 404),
    ("POST", "/api/v1/alarms/{alarm_id}/shelve"): Expect(200, OPS, 404),
    ("POST", "/api/v1/alarms/{alarm_id}/unshelve"): Expect(200, OPS, 404),
    ("POST", "/api/v1/alarms/{alarm_id}/comment"): Expect(201, OPS, 404),
    ("POST", "/api/v1/alarms/{alarm_id}/reset"): Expect(200, OPS, 404),
    ("POST", "/api/v1/alarms/{alarm_id}/out-of-service"): Expect(200, MANAGERS, 404),
    ("POST", "/api/v1/alarms/{alarm_id}/return-to-service"): Expect(200, MANAGERS, 404),
    ("GET", "/api/v1/floods"): reader(False, PEOPLE),
    ("GET", "/api/v1/floods/{flood_id}"): reader(True, PEOPLE, compliance_hidden=True),
    ("GET", "/api/v1/commands"): reader(False, PEOPLE),
    ("GET", "/api/v1/commands/{command_id}"): reader(True, PEOPLE, compliance_hidden=True),
    ("POST", "/api/v1/commands"): Expect(201, OPS, 403),
    ("GET", "/api/v1/bypasses"): reader(False, PEOPLE),
    ("POST", "/api/v1/bypasses"): Expect(201, OPS, 403),
    ("POST", "/api/v1/bypasses/{bypass_id}/approve"): Expect(200, MANAGERS, 404),
    ("POST", "/api/v1/bypasses/{bypass_id}/revoke"): Expect(200, OPS, 404),
    ("POST", "/api/v1/drills"): Expect(201, MANAGERS, 403),
    ("POST", "/api/v1/drills/{alarm_id}/end"): Expect(200, MANAGERS, 404),
    # the safety configuration is one document for every site: read by all people, written by administrators
    # of all sites (an administrator of another site only: 403)
    ("GET", "/api/v1/alarm-config"): reader(False, PEOPLE),
    ("GET", "/api/v1/alarm-config/versions"): reader(False, PEOPLE),
    ("GET", "/api/v1/alarm-config/versions/{revision}"): reader(False, PEOPLE),
    ("PUT", "/api/v1/alarm-config"): write(200, other_site=403),
    ("GET", "/api/v1/rules"): reader(False, PEOPLE),
    ("GET", "/api/v1/rules/versions"): reader(False, PEOPLE),
    ("PUT", "/api/v1/rules"): write(200, other_site=403),
    # notifications: the PWA's own routes (signed-in people), the signed links (the token is the credential),
    # and the administration of channels, escalation and rosters (admins and EHS managers, by site)
    ("GET", "/api/v1/push/vapid-public-key"): Expect(200, PEOPLE, 200),
    ("POST", "/api/v1/push/subscriptions"): Expect(201, PEOPLE, 201),
    ("GET", "/api/v1/push/subscriptions"): Expect(200, PEOPLE, 200),
    ("DELETE", "/api/v1/push/subscriptions/{subscription_id}"): Expect(204, PEOPLE, 204),
    ("GET", "/api/v1/me/notification-settings"): Expect(200, PEOPLE, 200),
    ("PUT", "/api/v1/me/notification-settings"): Expect(200, PEOPLE, 200),
    ("GET", "/api/v1/links/{token}"): public(200),
    ("POST", "/api/v1/links/{token}/ack"): public(200),
    ("GET", "/api/v1/notification-channels"): reader(False, MANAGERS),
    ("POST", "/api/v1/notification-channels"): Expect(201, MANAGERS, 403),
    ("GET", "/api/v1/notification-channels/{channel_id}"): reader(True, MANAGERS),
    ("PUT", "/api/v1/notification-channels/{channel_id}"): Expect(200, MANAGERS, 404),
    ("DELETE", "/api/v1/notification-channels/{channel_id}"): Expect(204, MANAGERS, 404),
    ("GET", "/api/v1/escalation-policies"): reader(False, MANAGERS),
    ("PUT", "/api/v1/escalation-policies/{name}"): Expect(200, MANAGERS, 403),
    ("GET", "/api/v1/rosters"): reader(False, MANAGERS),
    ("PUT", "/api/v1/rosters/{name}"): Expect(200, MANAGERS, 403),
    ("GET", "/api/v1/notifications"): reader(False, MANAGERS),
    ("GET", "/api/v1/notifications/{notification_id}"): reader(True, MANAGERS),
    # reports: run by administrators and EHS managers; the archive read, downloaded and checked by them and by
    # regulators (the seeded report covers the wastewater area only, a compliance area: regulators see it)
    ("GET", "/api/v1/reports/kinds"): reader(False, REPORT_READERS),
    ("POST", "/api/v1/reports/runs"): Expect(202, MANAGERS, 403),
    ("GET", "/api/v1/reports/runs/{run_id}"): reader(True, MANAGERS),
    ("GET", "/api/v1/reports"): reader(False, REPORT_READERS),
    ("GET", "/api/v1/reports/{report_id}"): reader(True, REPORT_READERS),
    ("GET", "/api/v1/reports/{report_id}/download"): reader(True, REPORT_READERS),
    ("POST", "/api/v1/reports/verify"): Expect(200, REPORT_READERS, 200),
    ("GET", "/api/v1/reports/links/{token}"): public(200),  # a signed link sent to a chat channel
    # report schedules: kept by administrators and EHS managers of the site
    ("GET", "/api/v1/reports/schedules"): reader(False, MANAGERS),
    ("POST", "/api/v1/reports/schedules"): Expect(201, MANAGERS, 403),
    ("PUT", "/api/v1/reports/schedules/{name}"): Expect(200, MANAGERS, 404),
    ("DELETE", "/api/v1/reports/schedules/{name}"): Expect(204, MANAGERS, 404),
    # hazardous waste: everyone reads (regulators too: it is compliance data), operators record, managers keep
    # the catalogue and file declarations, exports for administrators, EHS managers and regulators
    # the compliance overview (the regulator's view): every person reads it within their scope
    ("GET", "/api/v1/compliance/overview"): reader(False, PEOPLE),
    ("GET", "/api/v1/hazwaste/waste-types"): reader(False, PEOPLE),
    ("POST", "/api/v1/hazwaste/waste-types"): Expect(201, MANAGERS, 403),
    ("GET", "/api/v1/hazwaste/facilities"): reader(False, PEOPLE),
    ("POST", "/api/v1/hazwaste/facilities"): Expect(201, MANAGERS, 403),
    ("GET", "/api/v1/hazwaste/containers"): reader(False, PEOPLE),
    ("POST", "/api/v1/hazwaste/containers"): Expect(201, OPS, 403),
    ("GET", "/api/v1/hazwaste/containers/{container_id}"): reader(True, PEOPLE),
    ("GET", "/api/v1/hazwaste/containers/{container_id}/label.pdf"): reader(True, PEOPLE),
    ("POST", "/api/v1/hazwaste/containers/{container_id}/entries"): Expect(201, OPS, 404),
    ("GET", "/api/v1/hazwaste/ledger"): reader(False, PEOPLE),
    ("POST", "/api/v1/hazwaste/ledger/{entry_id}/corrections"): Expect(201, OPS, 404),
    ("GET", "/api/v1/hazwaste/ledger/export"): Expect(200, frozenset({"admin", "ehs_manager", "regulator"}), 403),
    ("GET", "/api/v1/hazwaste/declaration"): Expect(200, PEOPLE, 403),
    ("POST", "/api/v1/hazwaste/declarations"): Expect(201, MANAGERS, 403),
    ("GET", "/api/v1/hazwaste/manifests"): reader(False, PEOPLE),
    ("POST", "/api/v1/hazwaste/manifests"): Expect(201, OPS, 403),
    ("GET", "/api/v1/hazwaste/manifests/{manifest_id}"): reader(True, PEOPLE),
    ("GET", "/api/v1/hazwaste/manifests/{manifest_id}/manifest.pdf"): reader(True, PEOPLE),
    ("POST", "/api/v1/hazwaste/manifests/{manifest_id}/events"): Expect(200, OPS, 404),
    ("POST", "/api/v1/hazwaste/manifests/receipts"): Expect(200, OPS, 403),
    ("GET", "/api/v1/hazwaste/manifests/export"): Expect(200, frozenset({"admin", "ehs_manager", "regulator"}), 403),
    ("GET", "/api/v1/carbon/factors"): Expect(200, CARBON_READERS, 200),
    ("GET", "/api/v1/carbon/factors/{version}"): Expect(200, CARBON_READERS, 200),
    ("POST", "/api/v1/carbon/factors"): Expect(201, ADMIN, 403),
    ("GET", "/api/v1/carbon/ledger"): Expect(200, CARBON_READERS, 403),
    ("GET", "/api/v1/carbon/settings"): Expect(200, CARBON_READERS, 403),
    ("PUT", "/api/v1/carbon/settings"): Expect(200, MANAGERS, 403),
    ("POST", "/api/v1/carbon/periods"): Expect(201, MANAGERS, 403),
    ("POST", "/api/v1/carbon/periods/recalculate"): Expect(200, MANAGERS, 403),
    ("GET", "/api/v1/carbon/intensity"): Expect(200, CARBON_READERS, 403),
    ("GET", "/api/v1/carbon/summary"): Expect(200, CARBON_READERS, 403),
    ("POST", "/api/v1/carbon/entries"): Expect(201, MANAGERS, 403),
    ("POST", "/api/v1/carbon/certificates"): Expect(201, MANAGERS, 403),
    ("POST", "/api/v1/carbon/contracts"): Expect(201, MANAGERS, 403),
    ("GET", "/api/v1/carbon/instruments"): Expect(200, CARBON_READERS, 403),
    ("POST", "/api/v1/carbon/offsets"): Expect(201, MANAGERS, 403),
    ("GET", "/api/v1/carbon/offsets"): Expect(200, CARBON_READERS, 403),
    ("POST", "/api/v1/carbon/projects"): Expect(201, MANAGERS, 403),
    ("POST", "/api/v1/carbon/projects/savings"): Expect(200, MANAGERS, 403),
    ("POST", "/api/v1/carbon/projects/baseline-savings"): Expect(200, MANAGERS, 403),
    ("GET", "/api/v1/carbon/projects"): Expect(200, CARBON_READERS, 403),
    ("PUT", "/api/v1/carbon/routing"): Expect(200, MANAGERS, 403),
    ("GET", "/api/v1/carbon/routing"): Expect(200, CARBON_READERS, 403),
    ("POST", "/api/v1/carbon/batches"): Expect(201, MANAGERS, 403),
    ("GET", "/api/v1/carbon/batches/{code}/footprint"): Expect(200, CARBON_READERS, 403),
    ("GET", "/api/v1/carbon/footprint"): Expect(200, CARBON_READERS, 403),
    ("GET", "/api/v1/carbon/batches/{code}/declaration.pdf"): Expect(200, CARBON_READERS, 403),
    ("GET", "/api/v1/energy/ledger"): Expect(200, ENERGY_READERS, 403),
    ("GET", "/api/v1/energy/summary"): Expect(200, ENERGY_READERS, 403),
    ("GET", "/api/v1/energy/flow"): Expect(200, ENERGY_READERS, 403),
    ("GET", "/api/v1/energy/balance"): Expect(200, ENERGY_READERS, 403),
    ("GET", "/api/v1/energy/per-unit"): Expect(200, ENERGY_READERS, 403),
    ("GET", "/api/v1/energy/tariffs"): Expect(200, ENERGY_READERS, 403),
    ("POST", "/api/v1/energy/tariffs"): Expect(201, MANAGERS, 403),
    ("GET", "/api/v1/energy/production"): Expect(200, ENERGY_READERS, 403),
    ("POST", "/api/v1/energy/production"): Expect(201, MANAGERS, 403),
    ("POST", "/api/v1/energy/offline"): Expect(201, MANAGERS, 403),
    # energy baselines: energy readers see the re-baselining record, managers (re-)baseline
    ("GET", "/api/v1/energy/baselines"): Expect(200, ENERGY_READERS, 403),
    ("POST", "/api/v1/energy/baselines"): Expect(201, MANAGERS, 403),
}


def app_routes() -> set[tuple[str, str]]:
    """Every (method, path) the app serves over HTTP (the WebSocket has its own tests)."""
    return http_routes(create_app(CoreSettings(database_url="postgresql://unused@127.0.0.1/unused")))


def test_every_route_has_a_matrix_entry() -> None:
    routes = app_routes()
    missing = sorted(routes - MATRIX.keys())
    stale = sorted(MATRIX.keys() - routes)
    assert not missing, f"routes without an authorization matrix entry: {missing}"
    assert not stale, f"matrix entries for routes that no longer exist: {stale}"


def _permissions(dependant: Any) -> set[Permission]:
    """The permissions an endpoint's dependency tree requires (``api.deps.require`` marks its checks)."""
    found = set()
    for dependency in dependant.dependencies:
        if (permission := getattr(dependency.call, "permission", None)) is not None:
            found.add(permission)
        found |= _permissions(dependency)
    return found


def test_matrix_agrees_with_the_permission_table() -> None:
    """The hand-written expectations and the one table (core.permissions.POLICY) name the same roles for every
    route guarded by a permission; a route without one is public or open to every signed-in person."""
    app = create_app(CoreSettings(database_url="postgresql://unused@127.0.0.1/unused"))
    problems, checked = [], 0
    for ctx in iter_route_contexts(app.routes):
        if not ctx.methods or getattr(ctx.route, "dependant", None) is None:
            continue
        needed = _permissions(ctx.route.dependant)
        for method in ctx.methods - {"HEAD"}:
            expect = MATRIX[(method, ctx.path)]
            if not needed:
                if not (expect.public or expect.roles in (ROLES, PEOPLE)):
                    problems.append(f"{method} {ctx.path}: no permission but limited to {sorted(expect.roles)}")
                continue
            if len(needed) > 1:
                problems.append(f"{method} {ctx.path}: several permissions {sorted(needed)}")
                continue
            checked += 1
            (permission,) = needed
            if {str(r) for r in POLICY[permission]} != set(expect.roles):
                problems.append(
                    f"{method} {ctx.path} ({permission}): table {sorted(POLICY[permission])}, "
                    f"matrix {sorted(expect.roles)}"
                )
    assert not problems, "\n".join(problems)
    assert checked > 100  # the walk found the guarded routes


#: WebSocket paths, each with its own authorization test (tests/api/test_ws.py::test_websocket_principals).
WEBSOCKETS = {"/api/v1/ws"}


def test_every_websocket_has_an_authorization_test() -> None:
    assert websocket_paths(create_app(CoreSettings(database_url="postgresql://unused@127.0.0.1/unused"))) == WEBSOCKETS


# --- requests: what each route is called with ---------------------------------------------------------------

Build = Callable[[World, str], dict[str, Any]]


def _me(world: World, who: str) -> Principal | None:
    if who not in world.passwords or who in ("anon", "expired"):
        return None
    with world.db() as conn:
        user_id, role, sites, all_sites = conn.execute(
            "SELECT id, role, site_ids, all_sites FROM app_user WHERE username = %s", (who,)
        ).fetchone()
    return Principal("user", user_id, who, Role(role), scope_for(Role(role), sites, all_sites))


def _mfa(world: World, who: str, *, enable: bool) -> dict[str, Any]:
    me = _me(world, who)
    if me is None:
        return {"json": {"code": "000000", **({} if enable else {"password": "x"})}}
    cfg = world.client.app.state.auth
    now = datetime.now(UTC)
    with world.db() as conn, conn.transaction():
        secret, _ = users.mfa_setup(conn=conn, cfg=cfg, me=me)
        if enable:
            return {"json": {"code": security.totp_now(secret, now)}}
        # enrol with the previous time step, so the current code is still fresh (codes are single-use)
        users.mfa_enable(
            conn=conn, cfg=cfg, me=me, code=security.totp_now(secret, now - timedelta(seconds=30)), now=now
        )
    return {"json": {"password": world.passwords[who], "code": security.totp_now(secret, now)}}


def _refresh_token(world: World) -> str:
    with world.db() as conn, conn.transaction():
        user_id = conn.execute("SELECT id FROM app_user WHERE username = 'login'").fetchone()[0]
        return auth.issue_tokens(
            conn=conn, cfg=world.client.app.state.auth, user_id=user_id, token_version=1, now=datetime.now(UTC)
        ).refresh_token


def _password(world: World, who: str) -> dict[str, Any]:
    new = world.unique("a fresh long password ")
    return {"json": {"current_password": world.passwords.get(who, "x"), "new_password": new}, "_new": new}


def _device(world: World) -> dict[str, Any]:
    return {
        "area_id": world.ids["area"],
        "code": world.unique("dev-"),
        "name": "新设备",
        "kind": "gas_detector",
        "points": [{"key": "h2_ppm", "name": "氢气", "quantity": "h2"}],
    }


def _fresh(state: str, body: dict[str, Any] | None = None) -> Build:
    """A new alarm in ``state`` for every call (an action changes it: the next principal needs its own)."""
    return lambda w, who: {
        "_path": {"alarm_id": alarm_world.alarm_in_state(w.url, state)},
        **({"json": body} if body is not None else {}),
    }


def _carbon_build() -> dict[tuple[str, str], Callable[[World, str], dict[str, Any]]]:
    """Bodies and queries of the carbon routes; writes that create something use a fresh serial, code or month."""
    from carbon.factors import DATA_DIR

    files = {n: (DATA_DIR / n).read_text(encoding="utf-8") for n in ("grid.csv", "fuel.csv", "heat.csv", "gwp.csv")}
    site = {"params": {"site": SITE}}
    c = "/api/v1/carbon"

    def cert(w, who):
        k = carbon_world.n()
        return {
            "json": {
                "site": SITE,
                "csv": "scheme,serial_prefix,serial_first,serial_last,vintage_year,"
                f"period_start,period_end,reference\nGEC,M,{k * 10},{k * 10 + 9},2025,2025-01-01,"
                "2026-01-01,matrix\n",
            }
        }

    return {
        ("POST", f"{c}/factors"): lambda w, who: {"json": {"version": "2026.1", "files": files}},
        ("GET", f"{c}/ledger"): lambda w, who: {"params": {"site": SITE, "period": "2025-06"}},
        ("GET", f"{c}/settings"): lambda w, who: site,
        ("PUT", f"{c}/settings"): lambda w, who: {
            "json": {"site": SITE, "province": "jiangsu", "grid_region": "east", "pv_meters": ["pv-roof"]}
        },
        ("POST", f"{c}/periods"): lambda w, who: {"json": {"site": SITE, "period": carbon_world.period()}},
        ("POST", f"{c}/periods/recalculate"): lambda w, who: {
            "json": {"site": SITE, "period": "2025-06", "reason": "matrix"}
        },
        ("GET", f"{c}/summary"): lambda w, who: site,
        ("GET", f"{c}/intensity"): lambda w, who: {
            "params": {"site": SITE, "start": "2025-06-01T00:00:00Z", "end": "2025-06-02T00:00:00Z"}
        },
        ("POST", f"{c}/entries"): lambda w, who: {
            "json": {
                "site": SITE,
                "month": "2026-02-01",
                "kind": "fugitive",
                "code": "R-32",
                "quantity": 1.5,
                "unit": "kg",
            }
        },
        ("POST", f"{c}/certificates"): cert,
        ("POST", f"{c}/contracts"): lambda w, who: {
            "json": {
                "site": SITE,
                "mwh": 10,
                "vintage_year": 2025,
                "period_start": "2025-01-01",
                "period_end": "2026-01-01",
                "reference": f"PPA-{carbon_world.n()}",
            }
        },
        ("GET", f"{c}/instruments"): lambda w, who: site,
        ("POST", f"{c}/offsets"): lambda w, who: {
            "json": {
                "site": SITE,
                "project": "森林碳汇",
                "serial_first": (k := carbon_world.n()) * 10,
                "serial_last": k * 10 + 4,
                "tco2e": 5,
                "vintage_year": 2024,
                "retired_on": "2025-03-01",
                "retirement_ref": f"R-{k}",
                "claim_year": 2025,
            }
        },
        ("GET", f"{c}/offsets"): lambda w, who: {"params": {"site": SITE, "year": 2025}},
        ("POST", f"{c}/projects"): lambda w, who: {
            "json": {
                "site": SITE,
                "code": f"p{carbon_world.n()}",
                "name": "余热回收",
                "baseline_tco2e_per_year": 50,
                "started_on": "2025-01-01",
            }
        },
        ("POST", f"{c}/projects/savings"): lambda w, who: {
            "json": {"site": SITE, "project": "vfd", "month": "2025-05-01", "tco2e": 3.5, "method": "metered"}
        },
        ("POST", f"{c}/projects/baseline-savings"): lambda w, who: {
            "json": {
                "site": SITE,
                "project": "led",
                "period": "2025-03",
                "periods": [{"start": "2025-03-01T00:00:00+08:00", "energy": 1700, "variables": {"output": 500}}],
            }
        },
        ("GET", f"{c}/projects"): lambda w, who: site,
        ("PUT", f"{c}/routing"): lambda w, who: {"json": {"site": SITE, "routing": _demo_routing()}},
        ("GET", f"{c}/routing"): lambda w, who: site,
        ("POST", f"{c}/batches"): lambda w, who: {
            "json": {
                "site": SITE,
                "code": f"B-{carbon_world.n()}",
                "product": "pack",
                "started_at": "2025-07-01T00:00:00Z",
                "ended_at": "2025-07-02T00:00:00Z",
                "output": {"pack": 5},
            }
        },
        ("GET", f"{c}/batches/{{code}}/footprint"): lambda w, who: site,
        ("GET", f"{c}/batches/{{code}}/declaration.pdf"): lambda w, who: site,
        ("GET", f"{c}/footprint"): lambda w, who: {"params": {"site": SITE, "period": "2025-06"}},
    }


def _demo_routing() -> dict[str, Any]:
    from carbon.footprint import demo_routing

    return demo_routing().model_dump(mode="json", by_alias=True)


BUILD: dict[tuple[str, str], Build] = {
    ("GET", "/api/v1/alarms/kpi"): lambda w, who: {"params": {"area": "wastewater"}},
    ("POST", "/api/v1/alarms/{alarm_id}/ack"): _fresh("active_unacked", {"comment": "seen"}),
    ("POST", "/api/v1/alarms/{alarm_id}/shelve"): _fresh("active_unacked", {"reason": "sensor swap", "minutes": 30}),
    ("POST", "/api/v1/alarms/{alarm_id}/unshelve"): _fresh("shelved"),
    ("POST", "/api/v1/alarms/{alarm_id}/comment"): lambda w, who: {"json": {"text": "checked on site"}},
    ("POST", "/api/v1/alarms/{alarm_id}/reset"): _fresh("latched_acked"),
    ("POST", "/api/v1/alarms/{alarm_id}/out-of-service"): _fresh(
        "active_unacked", {"reason": "calibration", "permit": "PTW-7"}
    ),
    ("POST", "/api/v1/alarms/{alarm_id}/return-to-service"): _fresh("out_of_service"),
    ("POST", "/api/v1/commands"): lambda w, who: {
        "json": {"site": SITE, "device": "gas-02", "action": "alarm.sound", "reason": "test the horn"}
    },
    ("POST", "/api/v1/bypasses"): lambda w, who: {
        "json": {"site": SITE, "device": "gas-02", "reason": "new sensor", "minutes": 60}
    },
    ("POST", "/api/v1/bypasses/{bypass_id}/approve"): lambda w, who: {
        "_path": {"bypass_id": alarm_world.bypass_request(w.url)}
    },
    ("POST", "/api/v1/bypasses/{bypass_id}/revoke"): lambda w, who: {
        "_path": {"bypass_id": alarm_world.bypass_request(w.url)}
    },
    ("POST", "/api/v1/drills"): lambda w, who: {
        "json": {"site": SITE, "area": "formation", "level": 2, "reason": "quarterly drill"}
    },
    ("POST", "/api/v1/drills/{alarm_id}/end"): lambda w, who: {"_path": {"alarm_id": alarm_world.drill_alarm(w.url)}},
    ("PUT", "/api/v1/alarm-config"): lambda w, who: {"json": alarm_world.ALERTS},
    ("PUT", "/api/v1/rules"): lambda w, who: {"json": alarm_world.RULES},
    ("POST", "/api/v1/auth/token"): lambda w, who: {"data": {"username": "login", "password": PASSWORD}},
    ("POST", "/api/v1/auth/refresh"): lambda w, who: {"json": {"refresh_token": _refresh_token(w)}},
    ("POST", "/api/v1/auth/logout"): lambda w, who: {"json": {"refresh_token": _refresh_token(w)}},
    ("POST", "/api/v1/auth/password"): _password,
    ("POST", "/api/v1/auth/mfa/enable"): lambda w, who: _mfa(w, who, enable=True),
    ("POST", "/api/v1/auth/mfa/disable"): lambda w, who: _mfa(w, who, enable=False),
    ("POST", "/api/v1/sites"): lambda w, who: {"json": {"code": w.unique("new-"), "name": "新厂"}},
    ("PATCH", "/api/v1/sites/{site_id}"): lambda w, who: {"json": {"name": "一厂 (改)"}},
    ("POST", "/api/v1/areas"): lambda w, who: {
        "json": {"site_id": w.ids["site"], "code": w.unique("area-"), "name": "新区", "process": "aging"}
    },
    ("PATCH", "/api/v1/areas/{area_id}"): lambda w, who: {"json": {"name_en": "Formation"}},
    ("POST", "/api/v1/devices"): lambda w, who: {"json": _device(w)},
    ("PATCH", "/api/v1/devices/{device_id}"): lambda w, who: {"json": {"interval_s": 5}},
    ("POST", "/api/v1/points"): lambda w, who: {
        "json": {
            "device_id": w.ids["device"],
            "key": w.unique("t") + "_temp_c",
            "name": "温度",
            "quantity": "temperature",
        }
    },
    ("PATCH", "/api/v1/points/{point_id}"): lambda w, who: {"json": {"range": [0, 5000]}},
    ("POST", "/api/v1/meters"): lambda w, who: {
        "json": {
            "site_id": w.ids["site"],
            "code": w.unique("m-"),
            "name": "分表",
            "medium": "electricity",
            "point_id": w.ids["energy_point"],
            "parent_id": w.ids["meter"],
        }
    },
    ("PATCH", "/api/v1/meters/{meter_id}"): lambda w, who: {"json": {"name_en": "Incomer"}},
    ("GET", "/api/v1/exports/readings"): lambda w, who: {"params": {"point_id": w.ids["ww_point"]}},
    ("POST", "/api/v1/users"): lambda w, who: {
        "json": {"username": w.unique("new-user-"), "role": "viewer", "sites": [SITE]}
    },
    ("PATCH", "/api/v1/users/{user_id}"): lambda w, who: {"json": {"display_name": "Target"}},
    ("POST", "/api/v1/users/{user_id}/password"): lambda w, who: {"json": {}},
    ("POST", "/api/v1/api-keys"): lambda w, who: {"json": {"name": "scada", "role": "viewer", "sites": [SITE]}},
    ("POST", "/api/v1/push/subscriptions"): lambda w, who: {"json": _push(w)},
    ("PUT", "/api/v1/me/notification-settings"): lambda w, who: {
        "json": {
            "lang": "en",
            "channels": {"sms": False},
            "quiet_hours": {"start": "22:00", "end": "07:00"},
            "min_priority": 2,
        }
    },
    ("POST", "/api/v1/links/{token}/ack"): lambda w, who: {"json": {"comment": "收到"}},
    ("POST", "/api/v1/notification-channels"): lambda w, who: {"json": _channel_body(w)},
    ("PUT", "/api/v1/notification-channels/{channel_id}"): lambda w, who: {
        "json": {**_channel_body(w), "name": "matrix-channel"}
    },
    ("PUT", "/api/v1/escalation-policies/{name}"): lambda w, who: {
        "json": {"name": w.ids["policy_name"], "site": SITE, "tiers": [{"after_s": 300, "roles": ["ehs_manager"]}]}
    },
    ("PUT", "/api/v1/rosters/{name}"): lambda w, who: {
        "json": {
            "name": w.ids["roster_name"],
            "site": SITE,
            "role": "shift_leader",
            "shifts": [{"name": "day", "start": "08:00", "end": "20:00", "users": ["operator"]}],
        }
    },
    ("POST", "/api/v1/reports/runs"): lambda w, who: {
        "json": {"kind": "device_health", "site": SITE, "month": "2026-03", "areas": ["wastewater"], "formats": ["csv"]}
    },
    ("POST", "/api/v1/reports/verify"): lambda w, who: {"files": {"file": ("report.csv", _report_bytes(w))}},
    ("POST", "/api/v1/reports/schedules"): lambda w, who: {"json": {**_schedule_body(), "name": w.unique("sched-")}},
    ("PUT", "/api/v1/reports/schedules/{name}"): lambda w, who: {"json": _schedule_body()},
    ("POST", "/api/v1/hazwaste/waste-types"): lambda w, who: {
        "json": {"site": SITE, "code": w.unique("wt-"), "name": "废包装桶", "waste_code": "900-041-49"}
    },
    ("POST", "/api/v1/hazwaste/facilities"): lambda w, who: {
        "json": {"site": SITE, "code": w.unique("WH-"), "name": "暂存点", "kind": "storage_point", "capacity_kg": 500}
    },
    ("POST", "/api/v1/hazwaste/containers"): lambda w, who: {
        "json": {"site": SITE, "code": w.unique("C-"), "waste_type": "carbon", "container_type": "bag", "volume_l": 60}
    },
    ("POST", "/api/v1/hazwaste/containers/{container_id}/entries"): lambda w, who: {
        "json": {"stage": "generation", "quantity_kg": 12.5, "handler": "张三"}
    },
    ("POST", "/api/v1/hazwaste/ledger/{entry_id}/corrections"): lambda w, who: {
        "json": {"quantity_kg": 39.5, "reason": "复磅"}
    },
    ("GET", "/api/v1/hazwaste/ledger/export"): lambda w, who: {"params": {"site": SITE, "period": "2026-01"}},
    ("GET", "/api/v1/hazwaste/declaration"): lambda w, who: {"params": {"site": SITE, "period": "2026-01"}},
    ("POST", "/api/v1/hazwaste/declarations"): lambda w, who: {
        "json": {"site": SITE, "period": hazwaste_world.period()}
    },
    ("POST", "/api/v1/hazwaste/manifests"): lambda w, who: {
        "json": {
            "site": SITE,
            "waste_type": "carbon",
            "trip": w.unique("trip-"),
            "carrier_name": "c",
            "vehicle_plate": "苏E1",
            "carrier_permit": "p",
            "receiver_name": "r",
            "receiver_licence": "L",
            "receiver_scope": ["HW49"],
            "method": "disposal",
            "container_ids": [w.ids["hw_container"]],
        }
    },
    ("POST", "/api/v1/hazwaste/manifests/{manifest_id}/events"): lambda w, who: {"json": {"event": "cancel"}},
    ("POST", "/api/v1/hazwaste/manifests/receipts"): lambda w, who: {
        "params": {"site": SITE},
        "files": {"file": ("receipts.csv", hazwaste_world.receipts_csv(hazwaste_world.delivered(w.url, 40.0), 40.0))},
    },
    ("GET", "/api/v1/hazwaste/manifests/export"): lambda w, who: {"params": {"site": SITE, "period": "2026-01"}},
    **_carbon_build(),
    ("GET", "/api/v1/energy/ledger"): lambda w, who: {"params": {**_ENERGY_WINDOW, "by": "meter"}},
    ("GET", "/api/v1/energy/summary"): lambda w, who: {"params": {"site": SITE}},
    ("GET", "/api/v1/energy/flow"): lambda w, who: {"params": _ENERGY_WINDOW},
    ("GET", "/api/v1/energy/balance"): lambda w, who: {"params": _ENERGY_WINDOW},
    ("GET", "/api/v1/energy/per-unit"): lambda w, who: {"params": _ENERGY_WINDOW},
    ("GET", "/api/v1/energy/tariffs"): lambda w, who: {"params": {"site": SITE}},
    ("POST", "/api/v1/energy/tariffs"): lambda w, who: {
        "json": {
            "site": SITE,
            "code": "flat",
            "name": "平价",
            "medium": "water",
            "valid_from": "2026-01-01",
            "prices": {"flat": 4.2},
        }
    },
    ("GET", "/api/v1/energy/production"): lambda w, who: {"params": _ENERGY_WINDOW},
    ("POST", "/api/v1/energy/production"): lambda w, who: {
        "json": {
            "site": SITE,
            "rows": [
                {
                    "area": "formation",
                    "start": "2026-03-01T00:00:00+08:00",
                    "end": "2026-03-02T00:00:00+08:00",
                    "quantity": 12000,
                    "unit": "cells",
                }
            ],
        }
    },
    ("POST", "/api/v1/energy/offline"): lambda w, who: {
        "params": {"site": SITE},
        "files": {"file": ("readings.csv", b"meter,time,value\ne-main,2026-03-01T08:00:00+08:00,100\n")},
    },
    ("GET", "/api/v1/energy/baselines"): lambda w, who: {"params": {"site": SITE, "meter": "e-main"}},
    ("POST", "/api/v1/energy/baselines"): lambda w, who: {
        "json": {
            "site": SITE,
            "meter": "e-main",
            "granularity": "monthly",
            "reason": "2025 基线",
            "periods": [
                {
                    "start": f"2025-{m:02d}-01T00:00:00+08:00",
                    "energy": 100 + 5 * m + 2 * (1, -1, -1, 1)[m % 4],
                    "variables": {"production": m},
                }
                for m in range(1, 13)
            ],
        }
    },
}

_ENERGY_WINDOW = {"site": SITE, "start": "2026-03-01T00:00:00+08:00", "end": "2026-03-02T00:00:00+08:00"}


def _report(world: World) -> None:
    """A device-health report of s1's wastewater station, archived (ids "report" and "report_run")."""
    from core.clock import SystemClock
    from reports import service
    from reports.model import Params

    with world.db() as conn:
        params = Params(
            site=SITE,
            since=datetime(2026, 3, 1, tzinfo=UTC),
            until=datetime(2026, 4, 1, tzinfo=UTC),
            areas=("wastewater",),
        )
        run = service.create_run(conn, kind="device_health", params=params, formats=["csv"], actor="user:seed")
    done = service.execute(lambda: psycopg.connect(world.url), run["id"], clock=SystemClock())
    world.ids["report_run"], world.ids["report"] = done["id"], done["files"][0]["id"]


def _schedule_body() -> dict[str, Any]:
    return {"kind": "device_health", "site": SITE, "cadence": "monthly", "areas": ["wastewater"], "formats": ["csv"]}


def _new_schedule(world: World) -> str:
    """A schedule of this site's wastewater station made over the API (one per call where a call uses it up)."""
    from reports import schedules

    name = world.unique("sched-")
    with world.db() as conn, conn.transaction():
        schedules.put_schedule(
            conn,
            spec=schedules.ScheduleSpec(
                name, "device_health", SITE, "monthly", ("csv",), ("wastewater",), managed_by="api"
            ),
            actor="user:seed",
        )
    return name


def _report_bytes(world: World) -> bytes:
    with world.db() as conn:
        row = conn.execute("SELECT content FROM report_file WHERE id = %s", (world.ids["report"],)).fetchone()
        return bytes(row[0])


def _push(world: World) -> dict[str, Any]:
    return {
        "endpoint": f"https://push.example/{world.unique('sub-')}",
        "lang": "zh-CN",
        "keys": {
            "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
            "auth": "tBHItJI5svbpez7KI4CCXg",
        },
    }


def _channel_body(world: World) -> dict[str, Any]:
    return {"name": world.unique("ch-"), "kind": "dingtalk", "url": "dingtalk://SECabc123@tokentoken/", "site": SITE}


def _new_channel(world: World, name: str | None = None) -> int:
    from alerts.notifications import notify_config

    with world.db() as conn, conn.transaction():
        return notify_config.put_channel(
            conn=conn,
            secret=SECRET,
            spec=notify_config.ChannelSpec(**{**_channel_body(world), **({"name": name} if name else {})}),
        )["id"]


def _link(world: World, who: str) -> str:
    """A signed link to a fresh alarm of this site, sent to the operator."""
    from alerts import service
    from alerts.notifications import links
    from core.model import Severity, SubjectRef

    now = datetime.now(UTC)
    with world.db() as conn, conn.transaction():
        service.raise_system_alarm(
            conn=conn,
            rule=world.unique("matrix.link."),
            subject=SubjectRef(SITE, "formation"),
            severity=Severity.HIGH,
            message="matrix",
            caused_by="test",
            at=now,
            title="测试",
            title_en="test",
        )
        alarm_id = conn.execute("SELECT max(id) FROM alarm").fetchone()[0]
    return links.make(SECRET, alarm_id=alarm_id, user_id=world.ids["user:operator"], now=now, ttl=timedelta(minutes=30))


def _subscription(world: World, who: str) -> int:
    me = _me(world, who)
    if me is None:
        return 1
    from alerts.notifications import notify_config

    with world.db() as conn, conn.transaction():
        return notify_config.add_subscription(
            conn=conn,
            user_id=me.id,
            **{k: v for k, v in {**_push(world), **_push(world)["keys"]}.items() if k != "keys"},
        )["id"]


def _notification(world: World) -> int:
    if "notification" not in world.ids:
        with world.db() as conn, conn.transaction():
            world.ids["notification"] = conn.execute(
                "INSERT INTO notification_outbox (kind, site, area, priority, title, body) VALUES ('alarm', %s, "
                "'formation', 3, '测试', '测试') RETURNING id",
                (SITE,),
            ).fetchone()[0]
    return world.ids["notification"]


#: Path parameters made per call (objects that a call uses up, or that belong to the caller).
PATH_BUILD: dict[tuple[str, str], Callable[[World, str], dict[str, Any]]] = {
    ("GET", "/api/v1/links/{token}"): lambda w, who: {"token": _link(w, who)},
    ("POST", "/api/v1/links/{token}/ack"): lambda w, who: {"token": _link(w, who)},
    ("DELETE", "/api/v1/push/subscriptions/{subscription_id}"): lambda w, who: {
        "subscription_id": _subscription(w, who)
    },
    ("GET", "/api/v1/notification-channels/{channel_id}"): lambda w, who: {
        "channel_id": w.ids.setdefault("channel", _new_channel(w, "matrix-channel"))
    },
    ("PUT", "/api/v1/notification-channels/{channel_id}"): lambda w, who: {
        "channel_id": w.ids.setdefault("channel", _new_channel(w, "matrix-channel"))
    },
    ("DELETE", "/api/v1/notification-channels/{channel_id}"): lambda w, who: {"channel_id": _new_channel(w)},
    ("PUT", "/api/v1/escalation-policies/{name}"): lambda w, who: {
        "name": w.ids.__setitem__("policy_name", w.unique("policy-")) or w.ids["policy_name"]
    },
    ("PUT", "/api/v1/rosters/{name}"): lambda w, who: {
        "name": w.ids.__setitem__("roster_name", w.unique("roster-")) or w.ids["roster_name"]
    },
    ("GET", "/api/v1/notifications/{notification_id}"): lambda w, who: {"notification_id": _notification(w)},
    ("GET", "/api/v1/reports/links/{token}"): lambda w, who: {"token": _report_link(w)},
    ("PUT", "/api/v1/reports/schedules/{name}"): lambda w, who: {
        "name": w.ids.setdefault("schedule", _new_schedule(w))
    },
    ("DELETE", "/api/v1/reports/schedules/{name}"): lambda w, who: {"name": _new_schedule(w)},
    ("POST", "/api/v1/hazwaste/containers/{container_id}/entries"): lambda w, who: {
        "container_id": hazwaste_world.container(w.url)
    },
    ("POST", "/api/v1/hazwaste/manifests/{manifest_id}/events"): lambda w, who: {
        "manifest_id": hazwaste_world.manifest(w.url, w.ids["hw_container"])
    },
    ("GET", "/api/v1/carbon/factors/{version}"): lambda w, who: {"version": "2026.1"},
    ("GET", "/api/v1/carbon/batches/{code}/footprint"): lambda w, who: {"code": carbon_world.BATCH},
    ("GET", "/api/v1/carbon/batches/{code}/declaration.pdf"): lambda w, who: {"code": carbon_world.BATCH},
}


def _report_link(world: World) -> str:
    from reports import links

    return links.make(SECRET, report_id=world.ids["report"], to="ding", now=datetime.now(UTC))


#: Path parameters: which object of this site each route is called on.
PATH_IDS = {
    "site_id": "site",
    "area_id": "area",
    "device_id": "device",
    "point_id": "point",
    "meter_id": "meter",
    "dead_letter_id": "dead_letter",
    "user_id": "user:target",
    "key_id": "key",
    "alarm_id": "alarm",
    "command_id": "command",
    "flood_id": "flood",
    "revision": "alarm_config",
    "run_id": "report_run",
    "report_id": "report",
    "container_id": "hw_container",
    "entry_id": "hw_entry",
    "manifest_id": "hw_manifest",
}
#: Routes of the alarm engine: their world gets an alarm configuration, an alarm, a command and a flood.
ALARM_ENGINE = (
    "/api/v1/alarms",
    "/api/v1/floods",
    "/api/v1/commands",
    "/api/v1/bypasses",
    "/api/v1/drills",
    "/api/v1/alarm-config",
    "/api/v1/rules",
)
#: Objects that differ for one route (an empty area can be retired; gas-02's second point).
PATH_OVERRIDES = {
    ("DELETE", "/api/v1/areas/{area_id}"): {"area_id": "empty_area"},
    ("DELETE", "/api/v1/points/{point_id}"): {"point_id": "point2"},
}


def _request(world: World, method: str, path: str, who: str) -> int:
    path_values = PATH_BUILD.get((method, path), lambda w, p: {})(world, who)
    kwargs = BUILD.get((method, path), lambda w, p: {})(world, who)
    new_password = kwargs.pop("_new", None)
    ids = {**PATH_IDS, **PATH_OVERRIDES.get((method, path), {})}
    values = {name: world.ids[obj] for name, obj in ids.items() if "{" + name + "}" in path and obj in world.ids}
    url = path.format(**{**values, **path_values, **kwargs.pop("_path", {})})
    response = world.client.request(method, url, headers=world.headers(who), **kwargs)
    if new_password and response.status_code == 200:
        world.passwords[who] = new_password
    return response.status_code


@pytest.mark.db
@pytest.mark.parametrize(("method", "path"), sorted(MATRIX), ids=lambda v: v)
def test_authorization_matrix(world: World, method: str, path: str) -> None:
    with psycopg.connect(world.url) as conn:
        world.ids["energy_point"] = conn.execute(
            "SELECT point_id FROM meter WHERE id = %s", (world.ids["meter"],)
        ).fetchone()[0]
    if path.startswith(ALARM_ENGINE):
        world.ids.update(alarm_world.seed(world.url))
    if path.startswith("/api/v1/reports"):
        _report(world)
    if path.startswith("/api/v1/hazwaste"):
        world.ids.update(hazwaste_world.seed(world.url))
    if path.startswith("/api/v1/carbon"):
        carbon_world.seed(world.url)
        world.client.app.state.carbon_source = carbon_world.SOURCE
    expect = MATRIX[(method, path)]
    wrong = []
    for who in PRINCIPALS:  # administrators last: their writes change the world
        status = _request(world, method, path, who)
        if status != expect.status(who):
            wrong.append(f"{who}: got {status}, expected {expect.status(who)}")
    assert not wrong, f"{method} {path}\n  " + "\n  ".join(wrong)


# --- scope of what a read returns (issue 12): statuses alone do not show a leak -------------------------------

#: Sites whose actuators and response plans each principal sees in the alarm configuration.
CONFIG_SITES = {
    "admin": {SITE, "s2"},
    "other_site": {"s2"},
    "ehs_manager": {SITE},
    "operator": {SITE},
    "viewer": {SITE},
    "regulator": set(),
}
#: Rules each principal sees (regulators: the compliance points' thresholds only; s2 has no pH meter).
RULES_SEEN = {
    "admin": {"gas.h2", "gas.co", "gas.latch", "water.ph"},
    "other_site": {"gas.h2", "gas.co", "gas.latch"},
    "ehs_manager": {"gas.h2", "gas.co", "gas.latch", "water.ph"},
    "regulator": {"water.ph"},
    "operator": {"gas.h2", "gas.co", "gas.latch", "water.ph"},
    "viewer": {"gas.h2", "gas.co", "gas.latch", "water.ph"},
}
#: Sites whose audit entries each reader may get (None: plant-wide entries).
AUDIT_SITES = {
    "admin": {SITE, "s2", None},
    "other_site": {"s2", None},
    "ehs_manager": {SITE, None},
    "regulator": {SITE, None},
}


@pytest.mark.db
def test_configuration_and_audit_reads_stay_in_scope(world: World) -> None:
    world.ids.update(alarm_world.seed(world.url))
    with psycopg.connect(world.url) as conn:  # an alarm action of each site in the record
        theirs = alarm_world.raise_alarm(conn, site="s2", area="formation", device="gas-01", point="h2_ppm")
        conn.commit()
    for alarm_id in (world.ids["alarm"], theirs):
        assert (
            world.client.post(f"/api/v1/alarms/{alarm_id}/ack", json={}, headers=world.headers("admin")).status_code
            == 200
        )
    wrong = []
    for who in PRINCIPALS:
        config = world.client.get("/api/v1/alarm-config", headers=world.headers(who))
        if config.status_code == 200:
            body = config.json()["body"]
            seen = {a["site"] for a in body["actuators"]} | {p["site"] for p in body["response_plans"]}
            if seen != CONFIG_SITES[who]:
                wrong.append(f"{who}: alarm-config shows sites {sorted(seen)}")
        rules = world.client.get("/api/v1/rules", headers=world.headers(who))
        if rules.status_code == 200 and {r["id"] for r in rules.json()["rules"]} != RULES_SEEN[who]:
            wrong.append(f"{who}: rules {sorted(r['id'] for r in rules.json()['rules'])}")
        entries = world.client.get("/api/v1/audit", params={"limit": 1000}, headers=world.headers(who))
        if entries.status_code == 200:
            sites = {e["site"] for e in entries.json()["items"]}
            if not sites <= AUDIT_SITES[who]:
                wrong.append(f"{who}: audit entries of sites {sites - AUDIT_SITES[who]}")
            if who == "regulator" and any(e["area"] == "formation" for e in entries.json()["items"]):
                wrong.append("regulator: audit entries of a non-compliance area")
    assert not wrong, "\n".join(wrong)
