"""The tamper-evident archive: a run archives every format with its SHA-256, parameters and revisions, enters
each in the audit chain; downloads are byte for byte and audited; a changed byte is detected (API-free here, the
console's ``ehs reports verify`` too); the archive refuses rewrites and notices rows altered behind its back."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from core import audit
from core.clock import FrozenClock
from reports import archive, service
from reports.model import Params, month_period
from tests.api.conftest import SITE
from tests.reports.world import MONTH
from tests.support import REPO_ROOT

pytestmark = pytest.mark.db
NOW = datetime(2026, 4, 2, tzinfo=UTC)


def run_report(url: str, kind: str = "alarm_month", formats=("pdf", "xlsx", "csv"), **kw) -> dict:
    since, until = month_period(MONTH, "Asia/Shanghai")
    params = Params(site=kw.pop("site", SITE), since=since, until=until, **kw)
    with psycopg.connect(url) as conn:
        queued = service.create_run(conn, kind=kind, params=params, formats=list(formats), actor="user:ehs_manager")
        conn.commit()
    assert queued["status"] == "queued" and queued["progress"] == 0
    return service.execute(lambda: psycopg.connect(url), queued["id"], clock=FrozenClock(NOW))


def test_a_run_archives_every_format_with_hash_revision_and_audit_entry(month_db) -> None:
    url, _ = month_db
    run = run_report(url)
    assert (run["status"], run["progress"], run["error"]) == ("done", 1.0, None)
    assert [f["format"] for f in run["files"]] == ["pdf", "xlsx", "csv"]
    with psycopg.connect(url) as conn:
        for f in run["files"]:
            (content,) = conn.execute("SELECT content FROM report_file WHERE id = %s", (f["id"],)).fetchone()
            assert hashlib.sha256(content).hexdigest() == f["sha256"] and len(content) == f["size_bytes"]
            assert (
                f["params"]["site"] == SITE
                and f["revision"]["rule_set"] >= 1
                and f["areas"] == ["empty", "formation", "wastewater"]
            )
            entry = conn.execute(
                "SELECT action, actor, target, detail FROM audit_entry WHERE seq = %s", (f["audit_seq"],)
            ).fetchone()
            assert entry[:3] == ("export.report", "user:ehs_manager", f"report:{f['id']}")
            assert entry[3]["sha256"] == f["sha256"] and entry[3]["revision"] == f["revision"]
            assert f["filename"] == f"ehs-{SITE}-alarm_month-2026-03-{f['id']}.{f['format']}"
        checked, problems = audit.verify(conn)
    assert checked > 0 and problems == []


def test_download_is_byte_for_byte_and_audited(month_db) -> None:
    url, _ = month_db
    pdf = run_report(url, formats=("pdf",))["files"][0]
    with psycopg.connect(url) as conn:
        got = archive.download(conn, pdf["id"], actor="user:regulator")
        conn.commit()
        (stored,) = conn.execute("SELECT content FROM report_file WHERE id = %s", (pdf["id"],)).fetchone()
        entry = conn.execute(
            "SELECT actor, detail FROM audit_entry WHERE action = 'export.report.download' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert got["content"] == bytes(stored) and got["content"].startswith(b"%PDF")
    assert entry == ("user:regulator", {"sha256": pdf["sha256"], "filename": pdf["filename"], "site": SITE})


def test_a_changed_byte_is_detected(month_db, tmp_path: Path) -> None:
    url, _ = month_db
    pdf = run_report(url, formats=("pdf",))["files"][0]
    with psycopg.connect(url) as conn:
        original = archive.download(conn, pdf["id"], actor="user:regulator")["content"]
        assert archive.verify(conn, original)["valid"] is True
        changed = bytearray(original)
        changed[1234] ^= 0x01
        result = archive.verify(conn, bytes(changed), file_id=pdf["id"])
    assert result["valid"] is False and result["differs"]["first_byte"] == 1234
    # the console, as a regulator would run it
    good, bad = tmp_path / "good.pdf", tmp_path / "bad.pdf"
    good.write_bytes(original)
    bad.write_bytes(bytes(changed))
    env = {**os.environ, "EHS_DATABASE_URL": url, "PYTHONPATH": str(REPO_ROOT)}
    ok = subprocess.run(
        [sys.executable, "-m", "cli.main", "reports", "verify", str(good)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0 and f"is archived report {pdf['id']}" in ok.stdout, ok.stderr
    no = subprocess.run(
        [sys.executable, "-m", "cli.main", "reports", "verify", str(bad), "--id", str(pdf["id"])],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert no.returncode == 1 and "NOT VALID" in no.stderr and "from byte 1234 on" in no.stderr


def test_the_archive_refuses_rewrites_and_notices_altered_rows(month_db) -> None:
    url, _ = month_db
    csv_file = run_report(url, "device_health", formats=("csv",))["files"][0]
    with psycopg.connect(url) as conn:
        original = archive.download(conn, csv_file["id"], actor="user:admin")["content"]
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE report_file SET content = 'x' WHERE id = %s", (csv_file["id"],))
    with psycopg.connect(url, autocommit=True) as conn:  # someone with the owner's rights goes around it
        conn.execute("ALTER TABLE report_file DISABLE TRIGGER report_file_append_only")
        conn.execute("UPDATE report_file SET content = %s WHERE id = %s", (original + b"1,2\r\n", csv_file["id"]))
        conn.execute("ALTER TABLE report_file ENABLE TRIGGER report_file_append_only")
        result = archive.verify(conn, original)
    assert result["valid"] is False and "archive was altered" in result["reason"]


def test_a_failed_run_says_why_and_archives_nothing(month_db) -> None:
    url, _ = month_db
    run = run_report(url, site="nowhere")
    assert run["status"] == "failed" and "no site 'nowhere'" in run["error"] and run["files"] == []


def test_the_archive_list_follows_the_callers_scope(month_db) -> None:
    url, _ = month_db
    whole = run_report(url, formats=("csv",))["files"][0]
    wastewater = run_report(url, formats=("csv",), areas=("wastewater",))["files"][0]
    with psycopg.connect(url) as conn:
        everything = {f["id"] for f in archive.list_files(conn)}
        regulator = {f["id"] for f in archive.list_files(conn, sites=[SITE], areas=[f"{SITE}/wastewater"])}
        other_site = {f["id"] for f in archive.list_files(conn, sites=["s2"])}
        with pytest.raises(service.NotFound):
            archive.get(conn, whole["id"], sites=[SITE], areas=[f"{SITE}/wastewater"])
    assert {whole["id"], wastewater["id"]} <= everything
    assert wastewater["id"] in regulator and whole["id"] not in regulator and not other_site
