"""Site-level records (no area) and callers limited to some processes (regulators): the one rule of core.scope,
in the alarm list's SQL, one record, and the live feed's routing."""

from __future__ import annotations

from api.policy import COMPLIANCE_PROCESSES, Principal, Role, Scope
from api.subscriptions import Registry, Session
from core.scope import CodeScope


def test_code_scope_lets_site_level_records_through_only_when_asked() -> None:
    regulator = CodeScope(["s1"], ["s1/wastewater"])
    assert regulator.sees("s1", "wastewater") and not regulator.sees("s1", "formation")
    assert not regulator.sees("s1", None)  # default: strict (a whole-site report holds every area's data)
    assert regulator.sees("s1", None, site_level=True)
    assert not regulator.sees("s2", None, site_level=True)
    assert not regulator.sees("s1", "formation", site_level=True)
    assert CodeScope.everything().sees("s9", None)
    term, _ = regulator.sql(site_level=True)
    assert "OR area IS NULL" in term and "OR area IS NULL" not in regulator.sql()[0]


def test_live_feed_sends_site_level_alarms_to_regulators_of_the_site() -> None:
    registry = Registry(areas={10: (1, "formation"), 11: (1, "wastewater")}, sites={"s1": 1, "s2": 2})
    registry.area_codes.update({(1, "formation"): 10, (1, "wastewater"): 11})
    regulator = Principal("user", 1, "reg", Role.REGULATOR, Scope(frozenset({1}), COMPLIANCE_PROCESSES))
    session = Session(regulator, alarm_capacity=10)
    session.alarm_all = True
    assert session.wants_alarm(registry, {"site": "s1", "area": None})
    assert session.wants_alarm(registry, {"site": "s1", "area": "wastewater"})
    assert not session.wants_alarm(registry, {"site": "s1", "area": "formation"})
    assert not session.wants_alarm(registry, {"site": "s2", "area": None})
