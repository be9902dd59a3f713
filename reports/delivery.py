"""Delivery of a finished report run through the notification outbox (alerts/notifications/outbox.py): one outbox
row of kind ``report`` per run naming its targets, so each target is a delivery with the outbox's retries, leases,
per-channel rate limits and channel health (``notify.channel_failing``). E-mail targets get the files attached (the
row carries them, byte for byte the archived ones); chat channels and webhooks get a message with a signed download
link per file (reports/links.py). Each target is a ``report_delivery`` row (``queued``, with the outbox row) and an
audit entry; a target naming no enabled channel is ``failed`` at once and reported back so the scheduler can raise
an alarm. What the outbox then does is in ``notification_delivery`` / ``notification_attempt``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from core import audit
from core.keys import Keyring
from reports import archive, links
from reports.context import one
from reports.registry import KINDS

#: Outbox priority of report deliveries (below alarms of priority 3 and 4: an alarm is sent first).
PRIORITY = 2


@dataclass(frozen=True, slots=True)
class Delivery:
    """What delivery needs from the process: the secret (signed links), the public URL of the API."""

    secret: str | Keyring
    public_url: str


def _message(run: dict[str, Any], files: list[dict[str, Any]]) -> tuple[str, str]:
    kind = KINDS[run["kind"]]
    lang = run["params"].get("lang") or "zh-CN"
    name = kind.title_en if lang == "en" else kind.title
    since, until = files[0]["period_start"], files[0]["period_end"]
    title = f"{name} · {run['site']}"
    period = f"{since:%Y-%m-%d %H:%M} — {until:%Y-%m-%d %H:%M} UTC"
    intro = (
        f"Report {name} of site {run['site']}, {period}."
        if lang == "en"
        else f"{run['site']} 厂区{name}，报告期 {period}。"
    )
    return title, intro


def deliver(
    conn: psycopg.Connection, *, run: dict[str, Any], targets: Sequence[str], delivery: Delivery, now: datetime
) -> list[dict[str, Any]]:
    """Queue a done run for each target (``channel`` or ``channel:address``) in the notification outbox, in the
    caller's transaction; return one outcome per target (``queued``, or ``failed`` with the reason)."""
    files = [archive.get(conn, f["id"], content=True) for f in run["files"]]
    if not files:
        return []
    title, intro = _message(run, files)
    lang = run["params"].get("lang") or "zh-CN"
    listing = [f"{f['filename']} ({f['size_bytes']} B, SHA-256 {f['sha256']})" for f in files]
    specs, outcomes, emails = [], [], False
    for target in targets:
        name, _, address = target.partition(":")
        channel = one(conn, "SELECT kind FROM notification_channel WHERE name = %s AND enabled", (name,))
        if channel is None:
            outcomes.append(
                {"target": target, "kind": None, "status": "failed", "error": f"no enabled channel {name!r}"}
            )
            continue
        lines = [intro]
        for f, line in zip(files, listing, strict=True):
            lines.append(line)
            if channel["kind"] != "email":
                token = links.make(delivery.secret, report_id=f["id"], to=target, now=now)
                lines.append(links.url(delivery.public_url, token))
        emails = emails or channel["kind"] == "email"
        specs.append({"channel": name, "to": address or None, "title": title, "body": "\n".join(lines), "lang": lang})
        outcomes.append({"target": target, "kind": channel["kind"], "status": "queued", "error": None})
    outbox_id = None
    if specs:
        outbox_id = one(
            conn,
            "INSERT INTO notification_outbox (kind, site, priority, title, body, targets, created_at, "
            "next_attempt_at) VALUES ('report', %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                run["site"],
                PRIORITY,
                title,
                "\n".join([intro, *listing]),
                json.dumps(specs, ensure_ascii=False),
                now,
                now,
            ),
        )["id"]
        for f in files if emails else []:
            conn.execute(
                "INSERT INTO notification_attachment (outbox_id, filename, media_type, sha256, content) "
                "VALUES (%s, %s, %s, %s, %s)",
                (outbox_id, f["filename"], f["media_type"].split(";")[0], f["sha256"], bytes(f["content"])),
            )
    for o in outcomes:
        conn.execute(
            "INSERT INTO report_delivery (run_id, target, kind, status, error, at, outbox_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                run["id"],
                o["target"],
                o["kind"],
                o["status"],
                o["error"],
                now,
                outbox_id if o["status"] == "queued" else None,
            ),
        )
        audit.append(
            conn,
            actor="system:reports",
            action="export.report.deliver",
            target=f"report_run:{run['id']}",
            detail={"to": o["target"], "status": o["status"], "files": [f["sha256"] for f in files]},
        )
    return outcomes
