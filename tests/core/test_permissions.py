"""The one permission table (core.permissions): the API, the alarm engine's domain guard and the console read it,
so they agree on who may do what (e.g. approve a bypass)."""

from __future__ import annotations

import pytest

from alerts.models import ACTIONS, PERMISSIONS, Actor, PermissionDenied
from api.policy import Principal, Scope, console
from core.permissions import POLICY, Permission, Role, allowed

ROLES = list(Role)


def test_every_permission_has_a_row() -> None:
    assert set(POLICY) == set(Permission)
    assert all(POLICY[p] <= set(Role) for p in Permission)


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("role", ROLES)
def test_domain_guard_follows_the_table(action: str, role: Role) -> None:
    """alerts' Actor.require (used by the console and the API's domain calls) and api's Principal.can agree."""
    api_says = Principal("user", 1, "u", role, Scope(None)).can(ACTIONS[action])
    assert api_says == allowed(role, ACTIONS[action]) == (role in PERMISSIONS[action])
    actor = Actor("u", role)
    if api_says:
        actor.require(action)
        actor.require(ACTIONS[action])
    else:
        with pytest.raises(PermissionDenied):
            actor.require(action)
        with pytest.raises(PermissionDenied):
            actor.require(ACTIONS[action])


@pytest.mark.parametrize("role", ROLES)
def test_api_and_console_agree_on_bypass_approval(role: Role) -> None:
    """The console passes ``--role`` as a plain string; the API passes the principal's Role: same answer."""
    api_says = Principal("user", 1, "u", role, Scope(None)).can(Permission.BYPASS_APPROVE)
    try:
        Actor("cli-user", role.value).require("bypass_approve")
        console_says = True
    except PermissionDenied:
        console_says = False
    assert api_says == console_says
    assert api_says == (role in (Role.ADMIN, Role.EHS_MANAGER))


def test_services_hold_no_permission_and_the_console_is_an_admin() -> None:
    system = Actor.system("ingest")
    for action in ACTIONS:
        with pytest.raises(PermissionDenied):
            system.require(action)
    assert console("root").permissions() == sorted(p.value for p in Permission)
