"""The compliance job: evaluate what arrived since the last run, outfall by outfall, off the hot path.

Each run reads the samples of every configured outfall from its watermark to ``now - lag_s`` (the outfall's
setting: data arrive a little after their data time, interval data after their interval ends), corrects them
(O2), feeds them with the flow as weight to one ``Evaluator`` per (pollutant, limit), stores the closed
periods, checks the year-to-date totals against the permit, and returns the findings for the alarm engine.
Evaluators live as long as the job; a new job starts again at the beginning of the local day of its watermark,
so a period is never judged on half its data (results are upserted, and the alarm engine ignores a finding that
repeats the alarm's current state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from compliance.averaging import Sample, annual_check, correct_series, is_valid
from compliance.config import OutfallConfig
from compliance.evaluate import Evaluator
from compliance.limits import Averaging, LimitSet, effective_limits, load_standards
from compliance.service import (
    fetch_samples,
    load_compliance,
    set_watermark,
    site_points,
    store_results,
    total_since,
    watermark,
)
from core.model import Finding, Severity, SubjectRef

#: HJ 212-2017 Table 4, SBxxx-RS: the running state of treatment equipment.
EQUIPMENT_STATES = {0: "stopped", 1: "running", 2: "calibrating", 3: "maintenance", 4: "alarm", 5: "back-flushing"}
EQUIPMENT_SEVERITY = {
    0: Severity.HIGH,
    1: Severity.NORMAL,
    2: Severity.LOW,
    3: Severity.LOW,
    4: Severity.HIGH,
    5: Severity.LOW,
}

#: How far back a first run looks when an outfall has no watermark yet.
FIRST_LOOK_BACK = timedelta(days=2)


@dataclass
class ComplianceJob:
    standards: list[LimitSet] = field(default_factory=load_standards)
    _evaluators: dict[tuple, Evaluator] = field(default_factory=dict)
    _totals: dict[tuple, Severity] = field(default_factory=dict)
    _equipment: dict[tuple, Severity] = field(default_factory=dict)

    def run_once(self, conn: psycopg.Connection, *, now: datetime) -> list[Finding]:
        """Evaluate every outfall up to ``now - lag_s`` inside the caller's transaction; return the findings."""
        _, section = load_compliance(conn=conn)
        findings: list[Finding] = []
        for outfall in section.outfalls:
            findings += self._outfall(conn, outfall, now)
        return findings

    def _outfall(self, conn: psycopg.Connection, outfall: OutfallConfig, now: datetime) -> list[Finding]:
        tz_name, points, areas = site_points(conn=conn, site=outfall.site)
        tz = ZoneInfo(tz_name)
        end = now - timedelta(seconds=outfall.lag_s)
        mark = watermark(conn=conn, site=outfall.site, outfall=outfall.code)
        fresh = not any(key[:2] == (outfall.site, outfall.code) for key in self._evaluators)
        start = mark or (end - FIRST_LOOK_BACK)
        if fresh:  # start at a day boundary so no period is judged on part of its data
            start = start.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(microseconds=1)
        if start >= end:
            return []
        wanted = [points.get(p.point) for p in outfall.pollutants] + [points.get(e.point) for e in outfall.equipment]
        extra = [points.get(ref) for ref in (outfall.flow_point, outfall.o2_point) if ref]
        samples = fetch_samples(
            conn=conn, point_ids=[p for p in wanted + extra if p is not None], since=start, until=end
        )
        flows = {s.ts: s for s in samples.get(points.get(outfall.flow_point or ""), [])}
        o2 = samples.get(points.get(outfall.o2_point or ""), [])
        limits = effective_limits(
            self.standards,
            standards=outfall.standards,
            medium=outfall.medium,
            regime=outfall.regime,
            at=end.astimezone(tz).date(),
            permit=outfall.permit_limits(end.astimezone(tz).date()),
        )
        findings: list[Finding] = []
        for cfg in outfall.pollutants:
            point_id = points.get(cfg.point)
            if point_id is None:
                continue
            series = samples.get(point_id, [])
            if outfall.o2_point and outfall.o2_reference_pct is not None:
                series = correct_series(series, o2, outfall.o2_reference_pct)
            device, key = cfg.point.split("/")
            subject = SubjectRef(outfall.site, areas.get(device), device, key)
            for (pollutant, averaging), (limit, source) in sorted(limits.items(), key=lambda item: item[0]):
                if pollutant != cfg.pollutant:
                    continue
                ident = (outfall.site, outfall.code, pollutant, averaging, limit, source)
                evaluator = self._evaluators.get(ident)
                if evaluator is None:
                    evaluator = self._evaluators[ident] = Evaluator(
                        subject=subject,
                        pollutant=pollutant,
                        limit=limit,
                        source=source,
                        tz=tz_name,
                        interval_s=cfg.interval_s,
                        min_valid=outfall.min_valid.get(averaging, 1),
                    )
                for sample in series:
                    findings += evaluator.feed(
                        sample.ts, sample.value, is_valid(sample), _weight(sample, flows) if flows else 1.0
                    )
                store_results(conn=conn, site=outfall.site, outfall=outfall.code, results=evaluator.take_results())
        findings += self._check_equipment(outfall, points, areas, samples)
        findings += self._check_totals(conn, outfall, points, areas, tz, end)
        set_watermark(conn=conn, site=outfall.site, outfall=outfall.code, to=end)
        return findings

    def _check_equipment(
        self, outfall: OutfallConfig, points: dict[str, int], areas: dict[str, str], samples: dict[int, list[Sample]]
    ) -> list[Finding]:
        """Treatment equipment stopped or in alarm is HIGH (GB 37822-2019: VOC collection and treatment must run in
        step with production; whether production runs is for the response plan to weigh); calibrating,
        maintenance or back-flush is LOW; running is normal."""
        out = []
        for item in outfall.equipment:
            point_id = points.get(item.point)
            if point_id is None:
                continue
            device, key = item.point.split("/")
            for sample in samples.get(point_id, []):
                if sample.value is None:
                    continue
                state = int(sample.value)
                severity = EQUIPMENT_SEVERITY.get(state, Severity.LOW)
                ident = (outfall.site, outfall.code, item.point)
                if self._equipment.get(ident, Severity.NORMAL) == severity:
                    continue
                self._equipment[ident] = severity
                out.append(
                    Finding(
                        rule="compliance.equipment.state",
                        detector="compliance_equipment",
                        subject=SubjectRef(outfall.site, areas.get(device), device, key),
                        severity=severity,
                        ts=sample.ts,
                        value=sample.value,
                        message=f"{item.name}: {EQUIPMENT_STATES.get(state, f'state {state}')} ({outfall.name})",
                        details={"state": state, "outfall": outfall.code},
                    )
                )
        return out

    def _check_totals(
        self,
        conn: psycopg.Connection,
        outfall: OutfallConfig,
        points: dict[str, int],
        areas: dict[str, str],
        tz: ZoneInfo,
        end: datetime,
    ) -> list[Finding]:
        """Year-to-date -Cou totals against the permitted annual totals: on pace to exceed, exceeded."""
        if outfall.permit is None:
            return []
        out = []
        local_end = end.astimezone(tz)
        year_start = local_end.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        for cfg in outfall.totals:
            permitted = outfall.permit.annual_totals.get(cfg.pollutant)
            point_id = points.get(cfg.point)
            if not permitted or point_id is None:
                continue
            total = total_since(conn=conn, point_id=point_id, since=year_start - timedelta(microseconds=1), until=end)
            check = annual_check(total, permitted, through=local_end.date())
            severity = (
                Severity.HIGH if check.exceeded else Severity.MEDIUM if check.on_pace_to_exceed else Severity.NORMAL
            )
            key = (outfall.site, outfall.code, cfg.pollutant)
            if self._totals.get(key, Severity.NORMAL) == severity:
                continue
            self._totals[key] = severity
            device, point = cfg.point.split("/")
            out.append(
                Finding(
                    rule=f"compliance.total.{cfg.pollutant}.year",
                    detector="compliance_total",
                    subject=SubjectRef(outfall.site, areas.get(device), device, point),
                    severity=severity,
                    ts=end,
                    score=check.projected / permitted,
                    value=total,
                    message=f"{cfg.pollutant} {local_end.year} total {total:.6g} of {permitted:.6g} permitted "
                    f"({check.used:.0%}); at this pace {check.projected:.6g} (permit {outfall.permit.number})",
                    details={"pollutant": cfg.pollutant, "permitted": permitted, "projected": check.projected},
                )
            )
        return out


def _weight(sample: Sample, flows: dict[datetime, Sample]) -> float | None:
    flow = flows.get(sample.ts)
    return flow.value if flow is not None and is_valid(flow) else None


__all__ = ["Averaging", "ComplianceJob"]
