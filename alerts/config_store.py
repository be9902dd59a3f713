"""The alarm configuration store: the alert section of the plant file, kept by revision in ``alarm_config``.

The bottom of the alarm engine's import graph (alerts/ has no cycle, tests/alerts/test_import_graph.py): the
command machine, the alarm service and the flows read the configuration from here. Functions take the caller's
connection and never commit.
"""

from __future__ import annotations

import hashlib

import orjson
import psycopg

from alerts import store
from alerts.config import AlertConfig, AlertSection, devices_from_index
from core import db
from core.registry import PlantIndex, load_index


def apply_config(*, conn: psycopg.Connection, section: AlertSection, source: str) -> int | None:
    """Store the alert section if it differs from the newest one; return the new revision or None."""
    body = section.model_dump(mode="json", by_alias=True)
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    latest = store.fetch_one(conn, "SELECT sha256 FROM alarm_config ORDER BY id DESC LIMIT 1")
    if latest and latest["sha256"] == digest:
        return None
    return db.execute(
        conn,
        "INSERT INTO alarm_config (source, sha256, body) VALUES (%s, %s, %s) RETURNING id",
        (source, digest, orjson.dumps(body).decode()),
    ).fetchone()[0]


def load_config(*, conn: psycopg.Connection, index: PlantIndex | None = None) -> AlertConfig:
    """The newest alert section, resolved against the registry (defaults when none was applied)."""
    row = store.fetch_one(conn, "SELECT id, body FROM alarm_config ORDER BY id DESC LIMIT 1")
    section = AlertSection.model_validate(row["body"]) if row else AlertSection()
    return AlertConfig.build(section, devices_from_index(index or load_index(conn)), revision=row["id"] if row else 0)
