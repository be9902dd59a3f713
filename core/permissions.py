"""The one permission table: roles, permissions, and which roles hold each permission.

The API (``api.deps.require``, ``api.policy.Principal``), the alarm engine's domain guard
(``alerts.models.Actor.require``) and the console (``ehs alarms ... --role``) all read this table, so they cannot
disagree about who may, say, approve a bypass. Reviewed like safety limits: change it here and in the
authorization matrix test (tests/api/test_authz_matrix.py).
"""

from __future__ import annotations

from enum import StrEnum

from core.model import ProcessType


class Role(StrEnum):
    ADMIN = "admin"
    EHS_MANAGER = "ehs_manager"
    OPERATOR = "operator"
    VIEWER = "viewer"  # the control room: big screens, read only
    REGULATOR = "regulator"  # read only, compliance data only
    DEVICE = "device"  # API keys of devices and gateways


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
    AUDIT_READ = "audit.read"  # the whole record
    AUDIT_READ_COMPLIANCE = "audit.read_compliance"  # compliance-relevant actions only
    AUDIT_VERIFY = "audit.verify"
    # alarm engine (the routes and the domain guard alerts.models.Actor.require both read this table):
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
    SAFETY_CONFIG_WRITE = "safety_config.write"  # rule sets and alarm configuration (management of change)
    # notifications: channels, escalation policies, rosters; the record of notifications and attempts
    NOTIFY_MANAGE = "notify.manage"
    NOTIFY_READ = "notify.read"
    # reports: run them (a background job), read and download the archive (within the caller's scope; every
    # download audited), check a file against the archive
    REPORTS_RUN = "reports.run"
    REPORTS_READ = "reports.read"
    REPORTS_VERIFY = "reports.verify"
    REPORTS_SCHEDULE = "reports.schedule"  # read and keep report schedules (the plant file's are read only)
    # hazardous waste: the catalogue, containers, ledger and manifests (regulators read, never write)
    HAZWASTE_READ = "hazwaste.read"
    HAZWASTE_RECORD = "hazwaste.record"  # ledger entries, containers, manifests (from the phone)
    HAZWASTE_MANAGE = "hazwaste.manage"  # catalogue, facilities, declarations filed
    HAZWASTE_EXPORT = "hazwaste.export"
    # the compliance overview: emissions against limits, exceedances, treatment-plant alarms (the regulator's view)
    COMPLIANCE_READ = "compliance.read"
    # carbon: ledgers, footprints, instruments and offsets (read by the plant's people, kept by managers);
    # the factor library is reviewed data that administrators import
    CARBON_READ = "carbon.read"
    CARBON_MANAGE = "carbon.manage"
    CARBON_FACTORS = "carbon.factors"
    # energy: ledgers, balance, flow, tariffs and production (read); tariffs, production figures and offline
    # meter imports (manage: the EHS manager acts as the energy manager; no separate role)
    ENERGY_READ = "energy.read"
    ENERGY_MANAGE = "energy.manage"


_A, _M, _O, _V, _R, _D = (Role.ADMIN, Role.EHS_MANAGER, Role.OPERATOR, Role.VIEWER, Role.REGULATOR, Role.DEVICE)

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
    Permission.REPORTS_SCHEDULE: frozenset({_A, _M}),
    Permission.HAZWASTE_READ: frozenset({_A, _M, _O, _V, _R}),
    Permission.HAZWASTE_RECORD: frozenset({_A, _M, _O}),
    Permission.HAZWASTE_MANAGE: frozenset({_A, _M}),
    Permission.HAZWASTE_EXPORT: frozenset({_A, _M, _R}),
    Permission.COMPLIANCE_READ: frozenset({_A, _M, _O, _V, _R}),
    Permission.CARBON_READ: frozenset({_A, _M, _O, _V}),
    Permission.CARBON_MANAGE: frozenset({_A, _M}),
    Permission.CARBON_FACTORS: frozenset({_A}),
    Permission.ENERGY_READ: frozenset({_A, _M, _O, _V}),  # not regulators: energy is not compliance data
    Permission.ENERGY_MANAGE: frozenset({_A, _M}),
}


def allowed(role: Role, permission: Permission) -> bool:
    return role in POLICY[permission]


#: Process areas whose data is compliance data (emissions, wastewater, hazardous waste): what regulators see.
COMPLIANCE_PROCESSES = frozenset(
    {ProcessType.WASTEWATER.value, ProcessType.VOC_INCINERATOR.value, ProcessType.HAZWASTE_STORE.value}
)
#: Roles limited to some process areas.
ROLE_PROCESSES: dict[Role, frozenset[str]] = {Role.REGULATOR: COMPLIANCE_PROCESSES}
