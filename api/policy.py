"""The one place that decides who may do what: roles, permissions, and the data scope of a caller.

Routes declare the permission they need (``api.deps.require``); queries apply the caller's ``Scope``.
Site scope: an object of a site outside the caller's scope answers 404, as if it did not exist; a list
filtered explicitly by such a site answers 403 (the caller named it); unfiltered lists leave it out.
Regulators read compliance data only: areas of the processes in ``COMPLIANCE_PROCESSES`` and the
compliance-relevant audit actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.model import ProcessType


class Role(StrEnum):
    ADMIN = "admin"
    EHS_MANAGER = "ehs_manager"
    OPERATOR = "operator"
    VIEWER = "viewer"            # the control room: big screens, read only
    REGULATOR = "regulator"      # read only, compliance data only
    DEVICE = "device"            # API keys of devices and gateways


#: Roles a person may have; ``device`` is for API keys only, and API keys are never admins.
USER_ROLES = (Role.ADMIN, Role.EHS_MANAGER, Role.OPERATOR, Role.VIEWER, Role.REGULATOR)
KEY_ROLES = (Role.EHS_MANAGER, Role.OPERATOR, Role.VIEWER, Role.REGULATOR, Role.DEVICE)


class Permission(StrEnum):
    PLANT_READ = "plant.read"
    PLANT_WRITE = "plant.write"
    READINGS_READ = "readings.read"
    READINGS_EXPORT = "readings.export"
    DEAD_LETTERS_READ = "dead_letters.read"
    SYSTEM_READ = "system.read"
    LIVE_SUBSCRIBE = "live.subscribe"
    USERS_MANAGE = "users.manage"
    API_KEYS_MANAGE = "api_keys.manage"
    AUDIT_READ = "audit.read"                        # the whole record
    AUDIT_READ_COMPLIANCE = "audit.read_compliance"  # compliance-relevant actions only
    AUDIT_VERIFY = "audit.verify"
    # alarm engine (routes follow it; alerts.models.PERMISSIONS holds the same table as a domain-level guard):
    # ISA-18.2 / IEC 62682 operator actions and management of change
    ALARMS_READ = "alarms.read"
    ALARMS_ACK = "alarms.ack"
    ALARMS_COMMENT = "alarms.comment"
    ALARMS_RESET = "alarms.reset"
    ALARMS_SHELVE = "alarms.shelve"
    ALARMS_OUT_OF_SERVICE = "alarms.out_of_service"
    COMMANDS_ISSUE = "commands.issue"
    BYPASS_REQUEST = "bypass.request"
    BYPASS_APPROVE = "bypass.approve"
    DRILLS_RUN = "drills.run"
    SAFETY_CONFIG_WRITE = "safety_config.write"      # rule sets and alarm configuration (management of change)
    # notifications: channels, escalation policies, rosters; the record of notifications and attempts
    NOTIFY_MANAGE = "notify.manage"
    NOTIFY_READ = "notify.read"
    # reports: run them (a background job), read and download the archive (within the caller's scope; every
    # download audited), check a file against the archive
    REPORTS_RUN = "reports.run"
    REPORTS_READ = "reports.read"
    REPORTS_VERIFY = "reports.verify"
    # hazardous waste: the catalogue, containers, ledger and manifests (regulators read, never write)
    HAZWASTE_READ = "hazwaste.read"
    HAZWASTE_RECORD = "hazwaste.record"              # ledger entries, containers, manifests (from the phone)
    HAZWASTE_MANAGE = "hazwaste.manage"              # catalogue, facilities, declarations filed
    HAZWASTE_EXPORT = "hazwaste.export"
    # energy: ledgers, balance, flow, tariffs and production (read); tariffs, production figures and offline
    # meter imports (manage: the EHS manager acts as the energy manager; no separate role)
    ENERGY_READ = "energy.read"
    ENERGY_MANAGE = "energy.manage"


_A, _M, _O, _V, _R, _D = (Role.ADMIN, Role.EHS_MANAGER, Role.OPERATOR, Role.VIEWER, Role.REGULATOR,
                          Role.DEVICE)

#: permission -> roles that hold it. Reviewed like safety limits: change it here and in the matrix test.
POLICY: dict[Permission, frozenset[Role]] = {
    Permission.PLANT_READ: frozenset({_A, _M, _O, _V, _R, _D}),
    Permission.PLANT_WRITE: frozenset({_A}),
    Permission.READINGS_READ: frozenset({_A, _M, _O, _V, _R}),
    Permission.READINGS_EXPORT: frozenset({_A, _M, _R}),
    Permission.DEAD_LETTERS_READ: frozenset({_A, _M}),
    Permission.SYSTEM_READ: frozenset({_A, _M, _O, _V}),
    Permission.LIVE_SUBSCRIBE: frozenset({_A, _M, _O, _V, _R}),
    Permission.USERS_MANAGE: frozenset({_A}),
    Permission.API_KEYS_MANAGE: frozenset({_A}),
    Permission.AUDIT_READ: frozenset({_A}),
    Permission.AUDIT_READ_COMPLIANCE: frozenset({_A, _M, _R}),
    Permission.AUDIT_VERIFY: frozenset({_A, _M, _R}),
    Permission.ALARMS_READ: frozenset({_A, _M, _O, _V, _R}),
    Permission.ALARMS_ACK: frozenset({_A, _M, _O}),
    Permission.ALARMS_COMMENT: frozenset({_A, _M, _O}),
    Permission.ALARMS_RESET: frozenset({_A, _M, _O}),
    Permission.ALARMS_SHELVE: frozenset({_A, _M, _O}),
    Permission.ALARMS_OUT_OF_SERVICE: frozenset({_A, _M}),
    Permission.COMMANDS_ISSUE: frozenset({_A, _M, _O}),
    Permission.BYPASS_REQUEST: frozenset({_A, _M, _O}),
    Permission.BYPASS_APPROVE: frozenset({_A, _M}),
    Permission.DRILLS_RUN: frozenset({_A, _M}),
    Permission.SAFETY_CONFIG_WRITE: frozenset({_A}),
    Permission.NOTIFY_MANAGE: frozenset({_A, _M}),
    Permission.NOTIFY_READ: frozenset({_A, _M}),
    Permission.REPORTS_RUN: frozenset({_A, _M}),
    Permission.REPORTS_READ: frozenset({_A, _M, _R}),
    Permission.REPORTS_VERIFY: frozenset({_A, _M, _R}),
    Permission.HAZWASTE_READ: frozenset({_A, _M, _O, _V, _R}),
    Permission.HAZWASTE_RECORD: frozenset({_A, _M, _O}),
    Permission.HAZWASTE_MANAGE: frozenset({_A, _M}),
    Permission.HAZWASTE_EXPORT: frozenset({_A, _M, _R}),
    Permission.ENERGY_READ: frozenset({_A, _M, _O, _V}),       # not regulators: energy is not compliance data
    Permission.ENERGY_MANAGE: frozenset({_A, _M}),
}

#: Process areas whose data is compliance data (emissions, wastewater, hazardous waste): what regulators see.
COMPLIANCE_PROCESSES = frozenset({ProcessType.WASTEWATER.value, ProcessType.VOC_INCINERATOR.value,
                                  ProcessType.HAZWASTE_STORE.value})
#: Roles limited to some process areas.
ROLE_PROCESSES: dict[Role, frozenset[str]] = {Role.REGULATOR: COMPLIANCE_PROCESSES}

#: Audit actions (prefixes) that are compliance-relevant: what regulators and EHS managers may read.
COMPLIANCE_ACTIONS = ("config.", "export.", "alarm.", "command.", "bypass.", "response_plan.", "rule.", "hazwaste.")


def allowed(role: Role, permission: Permission) -> bool:
    return role in POLICY[permission]


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

    kind: str              # "user", "api_key", or "cli" (an operator at the server's console: ehs users ...)
    id: int
    name: str              # username, or the key's name
    role: Role
    scope: Scope
    label: str = ""        # the key prefix for API keys

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
