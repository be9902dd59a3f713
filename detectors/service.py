"""Database functions of the detectors package (keyword-only ``conn``; the caller owns the transaction)."""

# Rule sets applied from the plant file (``rule_set``, one revision per change, loaded by ingest); anomaly
# models per area (``detector_model``), their mode changes (shadow -> enabled -> retired, each one an
# event row and a hash-chained ``core.audit`` entry), training history, and the scores and findings the
# streaming stage records.

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import pandas as pd
import psycopg

from core import audit
from core.db import execute
from core.timeseries import bucketed
from detectors.specs import RuleSection

_LOGGER = logging.getLogger(__name__)

SHADOW, ENABLED, RETIRED = "shadow", "enabled", "retired"
_MODEL_COLUMNS = """
    m.id, s.code AS site, a.code AS area, m.area_id, m.detector, m.artifact, m.feature_spec, m.point_ids,
    m.window_start, m.window_end, m.data_hash, m.n_rows, m.params, m.mode, m.mode_changed_at, m.created_at,
    m.created_by"""
_MODEL_FROM = "detector_model m JOIN area a ON a.id = m.area_id JOIN site s ON s.id = a.site_id"


class ModelStateError(Exception):
    """A mode change that the model's current mode does not allow."""


@dataclass(frozen=True, slots=True)
class AreaPoint:
    point_id: int
    device: str
    key: str

    @property
    def label(self) -> str:
        """Unique name of the point within its area, used as the feature's point name."""
        return f"{self.device}.{self.key}"


@dataclass(frozen=True, slots=True)
class ModelRow:
    id: int
    site: str
    area: str
    area_id: int
    detector: str
    artifact: str
    feature_spec: dict[str, Any]
    point_ids: list[int]
    window_start: datetime
    window_end: datetime
    data_hash: str
    n_rows: int
    params: dict[str, Any]
    mode: str
    mode_changed_at: datetime
    created_at: datetime
    created_by: str

    @property
    def shadow(self) -> bool:
        return self.mode == SHADOW


def area_id(*, conn: psycopg.Connection, site: str, area: str) -> int:
    """Return the id of an active area, or raise LookupError."""
    row = execute(
        conn,
        "SELECT a.id FROM area a JOIN site s ON s.id = a.site_id "
        "WHERE s.code = %s AND a.code = %s AND a.retired_at IS NULL",
        (site, area),
    ).fetchone()
    if row is None:
        raise LookupError(f"no active area {site}/{area}")
    return row[0]


def area_points(*, conn: psycopg.Connection, site: str, area: str) -> list[AreaPoint]:
    """Active gauge points of an area's active devices, in a stable order (device code, point key)."""
    rows = execute(
        conn,
        """
        SELECT p.id, d.code, p.key
        FROM point p JOIN device d ON d.id = p.device_id JOIN area a ON a.id = d.area_id
        JOIN site s ON s.id = a.site_id
        WHERE s.code = %s AND a.code = %s AND p.kind = 'gauge'
          AND p.retired_at IS NULL AND d.retired_at IS NULL
        ORDER BY d.code, p.key""",
        (site, area),
    ).fetchall()
    return [AreaPoint(*row) for row in rows]


def history(
    *, conn: psycopg.Connection, points: Sequence[AreaPoint], start: datetime, end: datetime, freq: str
) -> pd.DataFrame:
    """Readings of the points in [start, end) as long-format rows (``ts``, ``point`` label, ``value``).

    Grids of a minute or coarser read the one-minute rollups (TimescaleDB continuous aggregates or their
    plain-PostgreSQL tables, through ``core.timeseries``); finer grids read raw readings of good or
    uncertain quality.
    """
    if pd.Timedelta(freq) >= timedelta(minutes=1):
        rows = [
            (bucket["bucket"], point.label, bucket["value_avg"])
            for point in points
            for bucket in bucketed(conn, point_id=point.point_id, start=start, end=end, bucket="1m")
            if bucket["value_avg"] is not None
        ]
    else:
        labels = {point.point_id: point.label for point in points}
        found = execute(
            conn,
            """
            SELECT time, point_id, value FROM reading
            WHERE point_id = ANY(%s) AND time >= %s AND time < %s AND value IS NOT NULL AND quality < 2
            ORDER BY time""",
            (list(labels), start, end),
        ).fetchall()
        rows = [(ts, labels[pid], value) for ts, pid, value in found]
    return pd.DataFrame(rows, columns=["ts", "point", "value"])


def register_model(
    *,
    conn: psycopg.Connection,
    area_id: int,
    detector: str,
    artifact: str,
    feature_spec: dict[str, Any],
    point_ids: Sequence[int],
    window_start: datetime,
    window_end: datetime,
    data_hash: str,
    n_rows: int,
    params: dict[str, Any],
    actor: str,
) -> int:
    """Insert a trained model in shadow mode; return its id."""
    model_id = execute(
        conn,
        """
        INSERT INTO detector_model (area_id, detector, artifact, feature_spec, point_ids, window_start,
                                    window_end, data_hash, n_rows, params, created_by)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            area_id,
            detector,
            artifact,
            orjson.dumps(feature_spec).decode(),
            list(point_ids),
            window_start,
            window_end,
            data_hash,
            n_rows,
            orjson.dumps(params).decode(),
            actor,
        ),
    ).fetchone()[0]
    _event(
        conn,
        model_id=model_id,
        actor=actor,
        action="register",
        from_mode=None,
        to_mode=SHADOW,
        reason=f"trained on {n_rows} rows {window_start.isoformat()} .. {window_end.isoformat()}",
        detail={"artifact": artifact, "detector": detector, "data_hash": data_hash},
    )
    return model_id


def get_model(*, conn: psycopg.Connection, model_id: int, lock: bool = False) -> ModelRow:
    """Return one model (``lock`` takes a row lock for a mode change)."""
    cur = execute(
        conn,
        f"SELECT {_MODEL_COLUMNS} FROM {_MODEL_FROM} WHERE m.id = %s"  # noqa: S608
        + (" FOR UPDATE OF m" if lock else ""),
        (model_id,),
    )
    row = cur.fetchone()
    if row is None:
        raise LookupError(f"no detector model {model_id}")
    return ModelRow(*row)


def list_models(
    *, conn: psycopg.Connection, site: str | None = None, area: str | None = None, modes: Iterable[str] | None = None
) -> list[ModelRow]:
    """Models, newest first, optionally of one site/area and in the given modes."""
    rows = execute(
        conn,
        f"""
        SELECT {_MODEL_COLUMNS} FROM {_MODEL_FROM}
        WHERE (%(site)s::text IS NULL OR s.code = %(site)s) AND (%(area)s::text IS NULL OR a.code = %(area)s)
          AND (%(modes)s::text[] IS NULL OR m.mode = ANY(%(modes)s))
        ORDER BY m.id DESC""",  # noqa: S608 - fixed SQL fragments
        {"site": site, "area": area, "modes": None if modes is None else list(modes)},
    ).fetchall()
    return [ModelRow(*row) for row in rows]


def _enabled_in_area(conn: psycopg.Connection, area_id: int) -> ModelRow | None:
    row = execute(
        conn, "SELECT id FROM detector_model WHERE area_id = %s AND mode = 'enabled' FOR UPDATE", (area_id,)
    ).fetchone()
    return None if row is None else get_model(conn=conn, model_id=row[0])


def _set_mode(
    conn: psycopg.Connection, model: ModelRow, mode: str, *, actor: str, action: str, reason: str
) -> ModelRow:
    execute(conn, "UPDATE detector_model SET mode = %s, mode_changed_at = now() WHERE id = %s", (mode, model.id))
    _event(
        conn,
        model_id=model.id,
        actor=actor,
        action=action,
        from_mode=model.mode,
        to_mode=mode,
        reason=reason,
        detail={"area": f"{model.site}/{model.area}", "artifact": model.artifact},
    )
    return get_model(conn=conn, model_id=model.id)


def _event(
    conn: psycopg.Connection,
    *,
    model_id: int,
    actor: str,
    action: str,
    from_mode: str | None,
    to_mode: str,
    reason: str,
    detail: dict[str, Any],
) -> None:
    execute(
        conn,
        "INSERT INTO detector_model_event (model_id, actor, action, from_mode, to_mode, reason) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (model_id, actor, action, from_mode, to_mode, reason),
    )
    audit.append(
        conn,
        actor=actor,
        action=f"detector_model.{action}",
        target=f"detector_model/{model_id}",
        detail={**detail, "from": from_mode, "to": to_mode, "reason": reason},
    )


def promote(*, conn: psycopg.Connection, model_id: int, actor: str, reason: str) -> ModelRow:
    """Enable a shadow model; the area's enabled model, if any, goes back to shadow."""
    model = get_model(conn=conn, model_id=model_id, lock=True)
    if model.mode != SHADOW:
        raise ModelStateError(f"model {model_id} is {model.mode}; only a shadow model can be promoted")
    current = _enabled_in_area(conn, model.area_id)
    if current is not None:
        _set_mode(conn, current, SHADOW, actor=actor, action="demote", reason=f"replaced by model {model_id}")
    return _set_mode(conn, model, ENABLED, actor=actor, action="promote", reason=reason)


def demote(*, conn: psycopg.Connection, model_id: int, actor: str, reason: str) -> ModelRow:
    """Put an enabled model back to shadow (it keeps scoring, it stops alarming)."""
    model = get_model(conn=conn, model_id=model_id, lock=True)
    if model.mode != ENABLED:
        raise ModelStateError(f"model {model_id} is {model.mode}, not enabled")
    return _set_mode(conn, model, SHADOW, actor=actor, action="demote", reason=reason)


def rollback(*, conn: psycopg.Connection, site: str, area: str, actor: str, reason: str) -> ModelRow | None:
    """Return the area to the model that was enabled before the current one; return it (None if none)."""
    area_key = area_id(conn=conn, site=site, area=area)
    current = _enabled_in_area(conn, area_key)
    row = execute(
        conn,
        """
        SELECT e.model_id FROM detector_model_event e JOIN detector_model m ON m.id = e.model_id
        WHERE m.area_id = %s AND e.to_mode = 'enabled' AND m.mode = 'shadow' AND m.id <> %s
        ORDER BY e.id DESC LIMIT 1 FOR UPDATE OF m""",
        (area_key, current.id if current else -1),
    ).fetchone()
    if current is None and row is None:
        raise ModelStateError(f"area {site}/{area} has no enabled model and no earlier one to return to")
    if current is not None:
        _set_mode(conn, current, SHADOW, actor=actor, action="rollback", reason=reason)
    if row is None:
        return None
    previous = get_model(conn=conn, model_id=row[0])
    return _set_mode(conn, previous, ENABLED, actor=actor, action="rollback", reason=reason)


def retire(*, conn: psycopg.Connection, model_id: int, actor: str, reason: str) -> ModelRow:
    """Stop scoring a model for good (its rows and artifact stay for the record)."""
    model = get_model(conn=conn, model_id=model_id, lock=True)
    if model.mode == RETIRED:
        raise ModelStateError(f"model {model_id} is already retired")
    return _set_mode(conn, model, RETIRED, actor=actor, action="retire", reason=reason)


def model_events(*, conn: psycopg.Connection, model_id: int) -> list[dict[str, Any]]:
    """Mode changes of one model, oldest first."""
    cur = execute(
        conn,
        "SELECT at, actor, action, from_mode, to_mode, reason FROM detector_model_event "
        "WHERE model_id = %s ORDER BY id",
        (model_id,),
    )
    columns = [d.name for d in cur.description]
    return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def modes_version(*, conn: psycopg.Connection) -> tuple[int, datetime | None]:
    """A cheap fingerprint of the model table: change it and the streaming stage reloads."""
    return execute(conn, "SELECT count(*), max(mode_changed_at) FROM detector_model").fetchone()


def record_scores(*, conn: psycopg.Connection, rows: Sequence[tuple[int, datetime, float, bool]]) -> None:
    """Store (model id, time, score, shadow) rows; a step scored twice (replay) keeps its first score."""
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO detector_score (model_id, time, score, shadow) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (model_id, time) DO NOTHING",
                rows,
            )


def record_findings(
    *,
    conn: psycopg.Connection,
    rows: Sequence[tuple[int, datetime, int, float | None, bool, list[dict[str, Any]], str]],
) -> None:
    """Store (model id, time, severity, score, shadow, contributors, batch id) findings."""
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO detector_finding (model_id, time, severity, score, shadow, contributors, batch_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(m, t, s, sc, sh, orjson.dumps(c).decode(), b) for m, t, s, sc, sh, c, b in rows],
            )


# --- rule sets ------------------------------------------------------------------------------------------------


def apply_rules(*, conn: psycopg.Connection, section: RuleSection, source: str) -> int | None:
    """Store the rule section if it differs from the newest one; return the new revision, or None."""
    body = section.model_dump(mode="json")
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    latest = execute(conn, "SELECT sha256 FROM rule_set ORDER BY id DESC LIMIT 1").fetchone()
    if latest and latest[0] == digest:
        return None
    return execute(
        conn,
        "INSERT INTO rule_set (source, sha256, body) VALUES (%s, %s, %s) RETURNING id",
        (source, digest, orjson.dumps(body).decode()),
    ).fetchone()[0]


def load_rules(*, conn: psycopg.Connection) -> tuple[int, RuleSection]:
    """The newest rule set and its revision (0 and no rules when none was applied)."""
    row = execute(conn, "SELECT id, body FROM rule_set ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return 0, RuleSection()
    return row[0], RuleSection.model_validate(row[1])


def recent_readings(
    *, conn: psycopg.Connection, point_ids: Sequence[int], since: datetime
) -> dict[int, list[tuple[datetime, float]]]:
    """Good readings of the points since ``since``, oldest first, by point (to warm detectors up at start)."""
    out: dict[int, list[tuple[datetime, float]]] = {}
    if not point_ids:
        return out
    for point_id, ts, value in execute(
        conn,
        "SELECT point_id, time, value FROM reading WHERE point_id = ANY(%s) "
        "AND time > %s AND value IS NOT NULL ORDER BY point_id, time",
        (list(point_ids), since),
    ):
        out.setdefault(point_id, []).append((ts, value))
    return out
