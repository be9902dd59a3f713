"""The stored safety-configuration documents, one row per revision: the rule set (``rule_set``, written by
detectors.service) and the alarm configuration (``alarm_config``, written by alerts.config_store). Read here for
the API's configuration endpoints: the newest, one revision, and the list of revisions."""

from __future__ import annotations

from typing import Any, Literal

import psycopg

from core.db import fetch_all, fetch_one

Document = Literal["rule_set", "alarm_config"]
_TABLES = ("rule_set", "alarm_config")
_REVISION = "id AS revision, applied_at, applied_by, source, sha256"


def _table(document: Document) -> str:
    if document not in _TABLES:
        raise ValueError(f"no configuration document {document!r}")
    return document


def latest(conn: psycopg.Connection, document: Document) -> dict[str, Any] | None:
    """The newest revision (``revision``, ``applied_at``, ``applied_by``, ``source``, ``sha256``, ``body``)."""
    return fetch_one(conn, f"SELECT {_REVISION}, body FROM {_table(document)} ORDER BY id DESC LIMIT 1")


def revision(conn: psycopg.Connection, document: Document, revision_id: int) -> dict[str, Any] | None:
    """One revision with its body, None when there is none."""
    return fetch_one(conn, f"SELECT {_REVISION}, body FROM {_table(document)} WHERE id = %s", (revision_id,))


def revisions(conn: psycopg.Connection, document: Document, limit: int) -> list[dict[str, Any]]:
    """Revisions without their bodies, newest first."""
    return fetch_all(conn, f"SELECT {_REVISION} FROM {_table(document)} ORDER BY id DESC LIMIT %s", (limit,))


def latest_body(conn: psycopg.Connection, document: Document) -> dict[str, Any] | None:
    """The body of the newest revision, None when nothing was applied yet."""
    row = fetch_one(conn, f"SELECT body FROM {_table(document)} ORDER BY id DESC LIMIT 1")
    return None if row is None else row["body"]
