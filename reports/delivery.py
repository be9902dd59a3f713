"""Delivery of a finished report run through the notification channels (alerts' channel records and sender):
e-mail channels get the files attached; chat channels and webhooks get a message with a signed download link per
file (reports/links.py). Each attempt is a ``report_delivery`` row and an audit entry; a target that fails is
reported back so the scheduler can raise an alarm."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg

from alerts.seal import SealError, unseal
from core import audit
from core.keys import Keyring
from reports import archive, links
from reports.context import one
from reports.registry import KINDS


class Sender(Protocol):
    def send(
        self,
        *,
        kind: str,
        url: str,
        title: str,
        body: str,
        to: str | None = None,
        key: str | None = None,
        attach: Sequence[tuple[str, bytes, str]] = (),
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """What delivery needs from the process: the channel sender, the secret, the public URL of the API."""

    sender: Sender
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
    """Send a done run to each target (``channel`` or ``channel:address``); return one outcome per target."""
    files = [archive.get(conn, f["id"], content=True) for f in run["files"]]
    if not files:
        return []
    title, intro = _message(run, files)
    outcomes = []
    for target in targets:
        name, _, address = target.partition(":")
        channel = one(conn, "SELECT kind, url_sealed FROM notification_channel WHERE name = %s AND enabled", (name,))
        status, error, kind = "failed", None, None
        if channel is None:
            error = f"no enabled channel {name!r}"
        else:
            kind = channel["kind"]
            try:
                url = unseal(delivery.secret, bytes(channel["url_sealed"]))
            except SealError as exc:
                url, error = None, str(exc)
            if url is not None:
                lines = [intro]
                attach: list[tuple[str, bytes, str]] = []
                for f in files:
                    lines.append(f"{f['filename']} ({f['size_bytes']} B, SHA-256 {f['sha256']})")
                    if kind == "email":
                        attach.append((f["filename"], bytes(f["content"]), f["media_type"].split(";")[0]))
                    else:
                        token = links.make(delivery.secret, report_id=f["id"], to=target, now=now)
                        lines.append(links.url(delivery.public_url, token))
                result = delivery.sender.send(
                    kind=kind,
                    url=url,
                    title=title,
                    body="\n".join(lines),
                    to=address or None,
                    key=f"report-run-{run['id']}-{target}",
                    attach=attach,
                )
                status = "sent" if result.result == "ok" else "failed"
                error = None if status == "sent" else (result.error or result.result)
        conn.execute(
            "INSERT INTO report_delivery (run_id, target, kind, status, error, at) VALUES (%s, %s, %s, %s, %s, %s)",
            (run["id"], target, kind, status, error, now),
        )
        audit.append(
            conn,
            actor="system:reports",
            action="export.report.deliver",
            target=f"report_run:{run['id']}",
            detail={"to": target, "status": status, "files": [f["sha256"] for f in files]},
        )
        outcomes.append({"target": target, "kind": kind, "status": status, "error": error})
    return outcomes
