"""The energy job end to end: readings -> intervals -> a balance finding -> an alarm of the alarm engine."""

from __future__ import annotations

from datetime import timedelta

from energy.__main__ import run_once
from energy.summary import summary
from tests.energy.world import T0, World


def test_run_once_raises_the_balance_alarm(conn) -> None:
    w = World(conn)
    minutes = range(0, 4 * 60 + 1, 5)
    w.readings("e-main", [(T0 + timedelta(minutes=m), 10.0 * m) for m in minutes])
    w.readings("e-coat", [(T0 + timedelta(minutes=m), 4.0 * m) for m in minutes])
    w.readings("e-dry", [(T0 + timedelta(minutes=m), 4.0 * m) for m in minutes])  # 20 % unaccounted
    conn.execute(
        "INSERT INTO energy_balance_limit (meter_id, loss_pct_max, hold_minutes) VALUES (%s, 10, 60)",
        (w.meter["e-main"],),
    )
    done, findings = run_once(conn, now=T0 + timedelta(hours=4, minutes=3))
    assert done.meters == 3 and [f.rule for f in findings] == ["energy.balance"]
    alarm = conn.execute("SELECT rule, source, state FROM alarm WHERE rule = 'energy.balance'").fetchone()
    assert alarm is not None and alarm[1] == f"{w.site}/utilities/em-main" and alarm[2].startswith("active")
    # the energy summary lists the open finding with its figures: the mean loss against the limit, in percent
    (listed,) = summary(conn, site=w.site, now=T0 + timedelta(hours=4, minutes=3))["abnormal"]
    assert listed["meter"] == "e-main" and listed["rule"] == "energy.balance" and listed["unit"] == "%"
    assert listed["expected"] == 10.0 and listed["actual"] > 10.0 and listed["since"] is not None
