"""``ehs hazwaste``: the periodic compliance evaluation (findings -> alarms) and the stage-model evaluation."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import psycopg
import typer

from alerts import service as alert_service
from cli.common import database_url
from core.model import Finding
from hazwaste import compliance, dwell
from hazwaste.settings import HazwasteSettings
from hazwaste.workdays import WorkCalendar

app = typer.Typer(help="Hazardous waste: compliance evaluation, stage model.", no_args_is_help=True)


def evaluate_once(
    *, conn: psycopg.Connection, now: datetime, calendar: WorkCalendar | None = None, use_dwell: bool = True
) -> list[Finding]:
    """Evaluate the hazardous-waste checks and record the changed findings as alarm transitions (one
    transaction, the caller's)."""
    findings = compliance.evaluate(conn=conn, now=now, calendar=calendar, dwell=use_dwell)
    if findings:
        alert_service.apply_findings(conn=conn, findings=findings, now=now)
    return findings


@app.command("evaluate")
def evaluate_cmd(
    every: float = typer.Option(0.0, help="Repeat every N seconds (0: once)"),
    no_dwell: bool = typer.Option(False, help="Skip the stage model"),
) -> None:
    """Check storage time, capacity, incompatibility, manifests, declarations and the stage model; raise or clear
    alarms for what changed."""
    with database_url() as url:
        while True:
            with psycopg.connect(url) as conn, conn.transaction():
                findings = evaluate_once(
                    conn=conn, now=datetime.now(UTC), use_dwell=not no_dwell, calendar=HazwasteSettings().calendar()
                )
            for f in findings:
                typer.echo(f"{f.severity!s:8} {f.rule:38} {f.subject.key}  {f.message}")
            typer.echo(json.dumps({"findings": len(findings)}))
            if every <= 0:
                return
            time.sleep(every)


@app.command("dwell-eval")
def dwell_eval(
    containers: int = typer.Option(3000, help="Containers in the generated history"),
    seed: int = typer.Option(7),
    late_factor: float = typer.Option(3.0),
) -> None:
    """Evaluate the stage model on a generated history with planted gaps; last line: one JSON object."""
    now = datetime(2026, 6, 1, tzinfo=UTC)
    events, truth = dwell.generated_history(containers, now, seed=seed, late_factor=late_factor)
    found = dwell.StageModel().fit(events).detect(events, now)
    result = dwell.score(found, truth)
    for kind in ("missing", "late"):
        part = dwell.score([a for a in found if a.kind == kind], {c: t for c, t in truth.items() if t[0] == kind})
        typer.echo(
            f"{kind:8} planted {part['planted']:5}  flagged {part['flagged']:5}  precision "
            f"{part['precision']:.3f}  recall {part['recall']:.3f}  "
            f"step named right {part['step_named_right']:.3f}"
        )
        result[f"{kind}_precision"], result[f"{kind}_recall"] = part["precision"], part["recall"]
    typer.echo(json.dumps({"containers": containers, "events": len(events), **result}))
