"""``ehs hazwaste``: the periodic compliance evaluation (findings -> alarms), the stage-model evaluation and the
import of the receivers' confirmations of receipt."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import typer

from alerts import service as alert_service
from cli.common import database_url
from core import audit
from core.model import Finding
from hazwaste import compliance, dwell, exchange
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


@app.command("import-receipts")
def import_receipts_cmd(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or XLSX from the receiver"),
    site: str | None = typer.Option(None, help="Only manifests of this site (default: every site)"),
    actor: str = typer.Option("console", help="Who imports (recorded on the manifests' events)"),
) -> None:
    """Confirm manifests from the receiver's file (联单编号, 接收量, 接收日期, 经营许可证编号): all rows or none;
    each refusal names its line and column. Last line: one JSON object."""
    with database_url() as url, psycopg.connect(url) as conn:
        site_ids = None
        if site is not None:
            row = conn.execute("SELECT id FROM site WHERE code = %s", (site,)).fetchone()
            if row is None:
                typer.echo(f"no site {site!r}", err=True)
                raise typer.Exit(2)
            site_ids = [row[0]]
        try:
            with conn.transaction():
                result = exchange.import_receipts(
                    conn=conn,
                    data=file.read_bytes(),
                    filename=file.name,
                    site_ids=site_ids,
                    actor=f"console:{actor}",
                    now=datetime.now(UTC),
                )
                audit.append(
                    conn,
                    actor=f"console:{actor}",
                    action="hazwaste.manifest.import_receipts",
                    target=site or "*",
                    detail={k: result[k] for k in ("rows", "received", "discrepancies", "unchanged")},
                )
        except exchange.ReceiptsRefused as exc:
            for p in exc.problems:
                typer.echo(p, err=True)
            typer.echo(json.dumps({"refused": len(exc.problems)}))
            raise typer.Exit(1) from None
    for m in result["manifests"]:
        typer.echo(f"line {m['line']:>5}  {m['number']}  {m['state']:12} {m['received_kg']} kg")
    typer.echo(json.dumps({k: result[k] for k in ("rows", "received", "discrepancies", "unchanged")}))
