"""``ehs reports``: list the report kinds and the archive, run a report now, download an archived one, and check a
file against the archive (what a regulator does with a file they were sent)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from cli.common import database_url

app = typer.Typer(no_args_is_help=True, help="Reports: PDF, XLSX and CSV, archived and tamper-evident.")


def _connect(url: str):
    import psycopg

    return lambda: psycopg.connect(url)


@app.command("list")
def list_(
    archive_: bool = typer.Option(False, "--archive", help="List archived reports instead of the kinds"),
    site: str | None = None,
    kind: str | None = None,
    limit: int = 50,
) -> None:
    """The report kinds, or (--archive) the archived reports, newest first."""
    from reports.registry import KINDS

    if not archive_:
        for k in KINDS.values():
            needs = (
                "--alarm ID or --flood ID"
                if k.subject == "incident"
                else "--site S --day YYYY-MM-DD"
                if k.name == "compliance_day"
                else "--site S --month YYYY-MM"
            )
            typer.echo(f"{k.name:16} {k.title} / {k.title_en}  ({needs})")
        return
    import psycopg

    from reports import archive

    with database_url() as url, psycopg.connect(url) as conn:
        found = archive.list_files(conn, site=site, kind=kind, limit=limit)
    if not found:
        typer.echo("no archived reports")
    for r in found:
        typer.echo(
            f"{r['id']:>6}  {r['generated_at']:%Y-%m-%d %H:%M}  {r['kind']:13} {r['site']:8} "
            f"{r['format']:4} {r['size_bytes']:>9} B  {r['sha256'][:16]}  {r['filename']}"
        )


@app.command()
def run(
    kind: str = typer.Argument(
        ..., help="incident, alarm_month, interlocks, device_health, carbon_inventory, compliance_day, compliance_month"
    ),
    site: str | None = typer.Option(None, help="Site code (period reports)"),
    month: str | None = typer.Option(None, help="YYYY-MM in the site's time zone"),
    day: datetime | None = typer.Option(None, formats=["%Y-%m-%d"], help="YYYY-MM-DD in the site's time zone"),
    since: datetime | None = typer.Option(None, help="Start (ISO 8601; with until, instead of a month)"),
    until: datetime | None = typer.Option(None),
    area: list[str] = typer.Option([], "--area", help="Only these areas (repeatable)"),
    lang: str = typer.Option("zh-CN", help="zh-CN or en"),
    alarm: int | None = typer.Option(None, help="Incident report: the alarm"),
    flood: int | None = typer.Option(None, help="Incident report: the flood"),
    fmt: list[str] = typer.Option(["pdf", "xlsx", "csv"], "--format", help="pdf, xlsx, csv (repeatable)"),
    out: Path | None = typer.Option(None, help="Also write the files into this folder"),
    user: str = typer.Option(..., "--user", help="Who asks for it (recorded in the audit record)"),
) -> None:
    """Generate a report now: archived with its SHA-256 and entered in the audit record."""
    import psycopg

    from core.clock import SystemClock
    from reports import archive, service
    from reports.context import ReportError

    def aware(value: datetime | None) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)

    clock = SystemClock()
    with database_url() as url:
        try:
            with psycopg.connect(url) as conn:
                params = service.make_params(
                    conn,
                    kind=kind,
                    site=site,
                    month=month,
                    day=day.date() if day else None,
                    since=aware(since),
                    until=aware(until),
                    areas=area,
                    lang=lang,
                    alarm_id=alarm,
                    flood_id=flood,
                    now=clock.now(),
                )
                queued = service.create_run(conn, kind=kind, params=params, formats=fmt, actor=f"cli:{user}")
                conn.commit()
        except ReportError as exc:
            typer.echo(f"refused: {exc}", err=True)
            raise typer.Exit(1) from None
        done = service.execute(_connect(url), queued["id"], clock=clock)
        if done["status"] != "done":
            typer.echo(f"report run {done['id']} failed: {done['error']}", err=True)
            raise typer.Exit(1)
        for f in done["files"]:
            line = f"report {f['id']}: {f['filename']}  {f['size_bytes']} B  sha256 {f['sha256']}"
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                with psycopg.connect(url) as conn:
                    got = archive.download(conn, f["id"], actor=f"cli:{user}")
                    conn.commit()
                (out / f["filename"]).write_bytes(got["content"])
                line += f"  -> {out / f['filename']}"
            typer.echo(line)


@app.command()
def download(
    report_id: int,
    out: Path = typer.Option(Path("."), help="Folder to write the file into"),
    user: str = typer.Option(..., "--user", help="Who downloads it (audited)"),
) -> None:
    """Write an archived report, byte for byte as it was generated (audited)."""
    import psycopg

    from reports import archive
    from reports.context import NotFound

    with database_url() as url, psycopg.connect(url) as conn:
        try:
            got = archive.download(conn, report_id, actor=f"cli:{user}")
        except NotFound as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        conn.commit()
    out.mkdir(parents=True, exist_ok=True)
    (out / got["filename"]).write_bytes(got["content"])
    typer.echo(f"{out / got['filename']}  sha256 {got['sha256']}")


@app.command()
def verify(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    report_id: int | None = typer.Option(None, "--id", help="The archived report it claims to be"),
) -> None:
    """Check a report file against the archive: exit 0 if it is, byte for byte, a report generated here."""
    import psycopg

    from reports import archive

    with database_url() as url, psycopg.connect(url) as conn:
        result = archive.verify(conn, file.read_bytes(), file_id=report_id)
    report = result["report"]
    if result["valid"]:
        typer.echo(
            f"VALID: {file.name} is archived report {report['id']} ({report['kind']}, site {report['site']}, "
            f"generated {report['generated_at']:%Y-%m-%d %H:%M:%S %Z} by {report['generated_by']}, audit entry "
            f"{report['audit_seq']}); sha256 {result['sha256']}"
        )
        return
    typer.echo(f"NOT VALID: {file.name}: {result['reason']} (sha256 {result['sha256']})", err=True)
    raise typer.Exit(1)


schedule_app = typer.Typer(no_args_is_help=True, help="Report schedules (run by the alerts worker).")
app.add_typer(schedule_app, name="schedule")


@schedule_app.command("add")
def schedule_add(
    name: str,
    kind: str,
    site: str = typer.Option(..., help="Site code"),
    every: str = typer.Option(..., help="daily, weekly, monthly, or incident (after each incident)"),
    area: list[str] = typer.Option([], "--area", help="Only these areas (repeatable)"),
    fmt: list[str] = typer.Option(["pdf", "xlsx"], "--format", help="pdf, xlsx, csv (repeatable)"),
    lang: str = typer.Option("zh-CN", help="zh-CN or en"),
    deliver: list[str] = typer.Option(
        [], "--deliver", help="A notification channel's name, or CHANNEL:ADDRESS for an e-mail channel (repeatable)"
    ),
    user: str = typer.Option(..., "--user", help="Who sets it (audited)"),
) -> None:
    """Create or replace a schedule: the report of the period that just ended, or of each closed incident;
    e-mail channels get the files attached, chat channels a signed download link (7 days)."""
    import psycopg

    from reports import schedules
    from reports.context import ReportError

    spec = schedules.ScheduleSpec(
        name=name,
        kind=kind,
        site=site,
        every=every,
        formats=tuple(fmt),
        areas=tuple(area) or None,
        lang=lang,
        deliver_to=tuple(deliver),
    )
    with database_url() as url, psycopg.connect(url) as conn:
        try:
            schedules.put_schedule(conn, spec=spec, actor=f"cli:{user}")
        except ReportError as exc:
            typer.echo(f"refused: {exc}", err=True)
            raise typer.Exit(1) from None
        conn.commit()
    typer.echo(f"schedule {name}: {kind} of {site}, {every}, {', '.join(fmt)}")


@schedule_app.command("list")
def schedule_list() -> None:
    """The schedules."""
    import psycopg

    from reports import schedules

    with database_url() as url, psycopg.connect(url) as conn:
        found = schedules.list_schedules(conn)
    if not found:
        typer.echo("no schedules")
    for s in found:
        typer.echo(
            f"{s['name']:20} {s['kind']:14} {s['site']:8} {s['every']:8} {','.join(s['formats']):13} "
            f"{','.join(s['areas'] or []) or 'all areas'}  {'on' if s['enabled'] else 'off'}  "
            f"-> {', '.join(s['deliver_to']) or 'archive only'}"
        )


@schedule_app.command("remove")
def schedule_remove(name: str, user: str = typer.Option(..., "--user", help="Who removes it (audited)")) -> None:
    """Remove a schedule (its reports stay in the archive)."""
    import psycopg

    from reports import schedules
    from reports.context import ReportError

    with database_url() as url, psycopg.connect(url) as conn:
        try:
            schedules.remove_schedule(conn, name=name, actor=f"cli:{user}")
        except ReportError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        conn.commit()
    typer.echo(f"schedule {name} removed")
