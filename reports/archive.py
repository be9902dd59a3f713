"""The report archive: every generated file with its parameters, SHA-256 and the revisions it used, entered in
the audit chain; downloads byte for byte (audited); and the check of a file someone was sent against it.

A file is tampered with if its SHA-256 matches no archived report. An archived row is trusted only when its
bytes still hash to its SHA-256 and its audit entry (whose detail repeats the SHA-256) still verifies, so that
editing the archive table alone is detected too (the table also refuses UPDATE and DELETE).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import psycopg

from core import audit, db
from reports.context import NotFound, one, rows
from reports.model import Document
from reports.render import FORMATS

#: Columns of an archive entry as lists show it (everything but the bytes).
COLUMNS = (
    "id",
    "run_id",
    "kind",
    "site",
    "areas",
    "lang",
    "format",
    "filename",
    "media_type",
    "size_bytes",
    "sha256",
    "params",
    "revision",
    "period_start",
    "period_end",
    "data_as_of",
    "generated_at",
    "generated_by",
    "audit_seq",
)
_SELECT = ", ".join(COLUMNS) + ", (SELECT timezone FROM site WHERE code = report_file.site) AS timezone"


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def filename(doc: Document, file_id: int, fmt: str) -> str:
    """``ehs-<site>-<kind>-<period>-<id>.<fmt>``: the archive id is in the name, so a file can be traced back."""
    since = doc.local(datetime.fromisoformat(doc.params["since"]))
    period = doc.period if len(doc.period) == 7 else since.strftime("%Y%m%d-%H%M")  # 2026-03, or the start
    return f"ehs-{doc.site}-{doc.kind}-{period}-{file_id}{FORMATS[fmt].suffix}"


def store(
    conn: psycopg.Connection, *, doc: Document, fmt: str, content: bytes, actor: str, run_id: int | None
) -> dict[str, Any]:
    """Archive one rendered file and enter it in the audit chain, in the caller's transaction."""
    file_id = db.execute(conn, "SELECT nextval('report_file_id_seq')").fetchone()[0]
    digest = sha256(content)
    name = filename(doc, file_id, fmt)
    seq = audit.append(
        conn,
        actor=actor,
        action="export.report",
        target=f"report:{file_id}",
        detail={
            "kind": doc.kind,
            "site": doc.site,
            "areas": doc.areas,
            "format": fmt,
            "filename": name,
            "sha256": digest,
            "size_bytes": len(content),
            "params": doc.params,
            "revision": doc.revision,
        },
    )
    conn.execute(
        "INSERT INTO report_file (id, run_id, kind, site, areas, lang, format, filename, media_type, size_bytes, "
        "sha256, content, params, revision, period_start, period_end, data_as_of, generated_at, generated_by, "
        "audit_seq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            file_id,
            run_id,
            doc.kind,
            doc.site,
            doc.areas,
            doc.lang,
            fmt,
            name,
            FORMATS[fmt].media_type,
            len(content),
            digest,
            content,
            orjson.dumps(doc.params).decode(),
            orjson.dumps(doc.revision, default=str).decode(),
            doc.params["since"],
            doc.params["until"],
            doc.data_as_of,
            doc.generated_at,
            actor,
            seq,
        ),
    )
    return get(conn, file_id)


def _scope(
    sites: Sequence[str] | None, areas: Sequence[str] | None, kinds: Sequence[str] | None = None
) -> tuple[str, dict[str, Any]]:
    """WHERE terms for a caller's scope: site codes, ``site/area`` keys (every area of a report must be one) and
    the kinds whose data the caller may read (``reports.registry.readable_kinds``)."""
    where, params = ["true"], {}
    if kinds is not None:
        where.append("kind = ANY(%(kinds)s)")
        params["kinds"] = list(kinds)
    if sites is not None:
        where.append("site = ANY(%(sites)s)")
        params["sites"] = list(sites)
    if areas is not None:
        where.append(
            "cardinality(areas) > 0 AND NOT EXISTS (SELECT 1 FROM unnest(areas) AS a "
            "WHERE site || '/' || a <> ALL(%(areas)s))"
        )
        params["areas"] = list(areas)
    return " AND ".join(where), params


def list_files(
    conn: psycopg.Connection,
    *,
    sites: Sequence[str] | None = None,
    areas: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    kind: str | None = None,
    site: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Archived reports the scope covers, newest first."""
    where, params = _scope(sites, areas, kinds)
    params.update(kind=kind, site=site, limit=limit, offset=offset)
    return rows(
        conn,
        f"SELECT {_SELECT} FROM report_file WHERE {where} "  # noqa: S608 - fixed column names
        "AND (%(kind)s::text IS NULL OR kind = %(kind)s) AND (%(site)s::text IS NULL OR site = %(site)s) "
        "ORDER BY generated_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )


def get(
    conn: psycopg.Connection,
    file_id: int,
    *,
    sites: Sequence[str] | None = None,
    areas: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    content: bool = False,
) -> dict[str, Any]:
    """One archived report in the scope (else NotFound), with its bytes if asked."""
    where, params = _scope(sites, areas, kinds)
    found = one(
        conn,
        f"SELECT {_SELECT}{', content' if content else ''} FROM report_file "  # noqa: S608
        f"WHERE id = %(id)s AND {where}",
        {**params, "id": file_id},
    )
    if found is None:
        raise NotFound(f"no report {file_id}")
    return found


def download(
    conn: psycopg.Connection,
    file_id: int,
    *,
    actor: str,
    sites: Sequence[str] | None = None,
    areas: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The archived bytes, exactly as generated; the download is entered in the audit chain."""
    found = get(conn, file_id, sites=sites, areas=areas, kinds=kinds, content=True)
    audit.append(
        conn,
        actor=actor,
        action="export.report.download",
        target=f"report:{file_id}",
        detail={"sha256": found["sha256"], "filename": found["filename"], "site": found["site"]},
    )
    found["content"] = bytes(found["content"])
    return found


def _entry_intact(conn: psycopg.Connection, seq: int, digest: str, file_id: int) -> bool:
    entry = one(
        conn, "SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM audit_entry WHERE seq = %s", (seq,)
    )
    if entry is None:
        return False
    recomputed = audit.entry_hash(
        entry["prev_hash"], entry["seq"], entry["at"], entry["actor"], entry["action"], entry["target"], entry["detail"]
    )
    return (
        recomputed == entry["hash"]
        and entry["action"] == "export.report"
        and entry["target"] == f"report:{file_id}"
        and entry["detail"].get("sha256") == digest
    )


def verify(conn: psycopg.Connection, content: bytes, *, file_id: int | None = None) -> dict[str, Any]:
    """Check a file against the archive: is it, byte for byte, a report that was generated here?

    Returns ``valid`` (it is), ``sha256``, the matching ``report`` (without bytes), and, when it is not and
    ``file_id`` names the report it claims to be, where it first differs from that report.
    """
    digest = sha256(content)
    result: dict[str, Any] = {
        "valid": False,
        "sha256": digest,
        "size_bytes": len(content),
        "report": None,
        "reason": "",
    }
    # the same request at the same moment renders the same bytes, so several rows may hold this hash
    matches = rows(
        conn,
        f"SELECT {_SELECT}, content FROM report_file WHERE sha256 = %s ORDER BY id",  # noqa: S608
        (digest,),
    )
    for match in matches:
        stored = bytes(match.pop("content"))
        if sha256(stored) != match["sha256"] or stored != content:
            result["reason"] = (
                f"the archived copy {match['id']} no longer matches its own hash: the archive was altered"
            )
        elif not _entry_intact(conn, match["audit_seq"], digest, match["id"]):
            result["reason"] = f"the audit entry of report {match['id']} was altered or is missing"
        else:
            result.update(valid=True, report=match, reason="matches the archived report and its audit entry")
            return result
        result["report"] = match
    if matches:
        return result
    result["reason"] = "no archived report has this SHA-256: the file is not one generated here, or it was changed"
    if file_id is not None:
        claimed = one(conn, "SELECT id, size_bytes, sha256, content FROM report_file WHERE id = %s", (file_id,))
        if claimed is not None:
            stored = bytes(claimed["content"])
            first = next(
                (i for i, (x, y) in enumerate(zip(stored, content, strict=False)) if x != y),
                min(len(stored), len(content)),
            )
            result["differs"] = {
                "report": file_id,
                "first_byte": first,
                "archived_size": len(stored),
                "archived_sha256": claimed["sha256"],
            }
            result["reason"] = f"differs from archived report {file_id} from byte {first} on"
    return result


def summary(row: dict[str, Any]) -> dict[str, Any]:
    """An archive row as JSON-ready data."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items() if k != "content"}
