"""Who is calling and what data they may see: principals and scopes (the permission table is ``core.permissions``).

Routes declare the permission they need (``api.deps.require``); queries apply the caller's ``Scope``.
Site scope: an object of a site outside the caller's scope answers 404, as if it did not exist; a list
filtered explicitly by such a site answers 403 (the caller named it); unfiltered lists leave it out.
Regulators read compliance data only: areas of the processes in ``COMPLIANCE_PROCESSES`` and the
compliance-relevant audit actions.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.permissions import (
    COMPLIANCE_PROCESSES,
    KEY_ROLES,
    POLICY,
    ROLE_PROCESSES,
    USER_ROLES,
    Permission,
    Role,
    allowed,
)

__all__ = [
    "COMPLIANCE_ACTIONS",
    "COMPLIANCE_PROCESSES",
    "KEY_ROLES",
    "POLICY",
    "ROLE_PROCESSES",
    "USER_ROLES",
    "Permission",
    "Principal",
    "Role",
    "Scope",
    "allowed",
    "console",
    "scope_for",
]


#: Audit actions (prefixes) that are compliance-relevant: what regulators and EHS managers may read. (``rule.``:
#: the API's safety-configuration entries written before they became ``config.apply``, api.safety.)
COMPLIANCE_ACTIONS = ("config.", "export.", "alarm.", "command.", "bypass.", "response_plan.", "rule.", "hazwaste.")


@dataclass(frozen=True, slots=True)
class Scope:
    """The data a caller may see: site ids (None = every site) and process types (None = every process)."""

    site_ids: frozenset[int] | None
    processes: frozenset[str] | None = None

    def sites_param(self) -> list[int] | None:
        return None if self.site_ids is None else sorted(self.site_ids)

    def processes_param(self) -> list[str] | None:
        return None if self.processes is None else sorted(self.processes)

    def has_site(self, site_id: int) -> bool:
        return self.site_ids is None or site_id in self.site_ids

    def has_process(self, process: str) -> bool:
        return self.processes is None or process in self.processes

    def covers(self, other: Scope) -> bool:
        """True when this scope includes every site of ``other`` (for delegation by site admins)."""
        if self.site_ids is None:
            return True
        return other.site_ids is not None and other.site_ids <= self.site_ids


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a signed-in user or an API key, with role and scope."""

    kind: str  # "user", "api_key", or "cli" (an operator at the server's console: ehs users ...)
    id: int
    name: str  # username, or the key's name
    role: Role
    scope: Scope
    label: str = ""  # the key prefix for API keys

    @property
    def actor(self) -> str:
        """How the audit record names this caller."""
        return {"user": f"user:{self.name}", "cli": f"cli:{self.name}"}.get(self.kind, f"key:{self.label}")

    def can(self, permission: Permission) -> bool:
        return allowed(self.role, permission)

    def permissions(self) -> list[str]:
        return sorted(p.value for p in Permission if self.can(p))


def scope_for(role: Role, site_ids: list[int] | None, all_sites: bool) -> Scope:
    """The scope of a user or key from its stored sites and its role."""
    sites = None if all_sites else frozenset(site_ids or ())
    return Scope(sites, ROLE_PROCESSES.get(role))


def console(name: str) -> Principal:
    """The principal of someone at the server's console (the ``ehs`` CLI): an administrator of all sites."""
    return Principal("cli", 0, name, Role.ADMIN, Scope(None))
