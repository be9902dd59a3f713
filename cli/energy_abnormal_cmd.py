"""``ehs energy abnormal``: the abnormal-consumption evaluation (findings -> alarms), a composition root.

Kept apart from the energy core's ``ehs energy`` group (issue #13 is built on three branches); the two can be
merged into one group once both have landed.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import psycopg
import typer

from alerts import service as alert_service
from cli.common import database_url
from core.model import Finding
from energy import abnormal_job

app = typer.Typer(help="Abnormal energy consumption: evaluate and raise or clear alarms.", no_args_is_help=True)


def evaluate_once(*, conn: psycopg.Connection, now: datetime) -> list[Finding]:
    """Evaluate the abnormal-consumption checks and record the changed findings as alarm transitions (one
    transaction, the caller's)."""
    findings = abnormal_job.evaluate(conn=conn, now=now)
    if findings:
        alert_service.apply_findings(conn=conn, findings=findings, now=now)
    return findings


@app.command("evaluate")
def evaluate_cmd(every: float = typer.Option(0.0, help="Repeat every N seconds (0: once)")) -> None:
    """Check every compressed-air meter's night-time base load; raise or clear alarms for what changed."""
    with database_url() as url:
        while True:
            with psycopg.connect(url) as conn, conn.transaction():
                findings = evaluate_once(conn=conn, now=datetime.now(UTC))
            for f in findings:
                typer.echo(f"{f.severity!s:8} {f.rule:30} {f.subject.key}  {f.message}")
            typer.echo(json.dumps({"findings": len(findings)}))
            if every <= 0:
                return
            time.sleep(every)
