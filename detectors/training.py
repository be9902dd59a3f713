"""Train an area's anomaly model from the reading history, store the artifact, register it in shadow mode."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from detectors import registry, service
from detectors.adapters import ModelDetector
from detectors.artifacts import ArtifactStore, Envelope, data_hash
from detectors.features import FeatureSpec, align, build_features

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainRequest:
    """What to train: an area, a training window and the model configuration (one per area)."""

    site: str
    area: str
    start: datetime
    end: datetime
    detector: str = "pyod_pca"
    #: Grid step; a minute or coarser reads the one-minute rollups.
    freq: str = "1min"
    #: Trailing mean windows in grid steps; empty uses the aligned values themselves.
    windows: tuple[int, ...] = ()
    #: Point labels (``device.key``) or keys to use; empty means every gauge point of the area.
    points: tuple[str, ...] = ()
    fill_limit: int = 2
    threshold_quantile: float = 1.0
    margin: float = 3.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrainResult:
    model_id: int
    envelope: Envelope
    spec: FeatureSpec


def _select(points: list[service.AreaPoint], wanted: tuple[str, ...]) -> list[service.AreaPoint]:
    if not wanted:
        return points
    chosen = [p for p in points if p.label in wanted or p.key in wanted]
    unknown = set(wanted) - {p.label for p in chosen} - {p.key for p in chosen}
    if unknown:
        raise LookupError(f"points not in the area: {sorted(unknown)}")
    return chosen


def train_area(*, conn: psycopg.Connection, store: ArtifactStore, request: TrainRequest, actor: str) -> TrainResult:
    """Fit on [start, end), calibrate on the training scores, save the artifact, register it in shadow.

    The artifact is written before the caller commits; if the transaction then fails, an unregistered
    artifact stays in the store (never loaded, since only registered models are scored).
    """
    cls = registry.get(request.detector)
    if not issubclass(cls, ModelDetector):
        raise ValueError(f"{request.detector} is not a multivariate model detector")
    area_key = service.area_id(conn=conn, site=request.site, area=request.area)
    points = _select(service.area_points(conn=conn, site=request.site, area=request.area), request.points)
    if not points:
        raise LookupError(f"area {request.site}/{request.area} has no gauge points")
    spec = FeatureSpec(
        points=tuple(p.label for p in points),
        freq=request.freq,
        fill_limit=request.fill_limit,
        windows=request.windows,
        stats=("mean",),
        include_raw=not request.windows,
    )
    readings = service.history(conn=conn, points=points, start=request.start, end=request.end, freq=request.freq)
    if readings.empty:
        raise ValueError(f"no readings of {request.site}/{request.area} in {request.start} .. {request.end}")
    features = build_features(align(readings, spec, start=request.start, end=request.end), spec).dropna()
    model = cls(
        features=spec.names, threshold_quantile=request.threshold_quantile, margin=request.margin, **request.params
    ).fit(features)
    digest = data_hash(features)
    name = (
        f"{request.site}/{request.area}/{request.detector}-{request.start:%Y%m%dT%H%M}-"
        f"{request.end:%Y%m%dT%H%M}-{digest[:8]}"
    )
    envelope = store.save(
        model,
        name=name,
        data=features,
        window=(request.start, request.end),
        extra={"feature_spec": spec.to_dict(), "point_ids": [p.point_id for p in points]},
    )
    model_id = service.register_model(
        conn=conn,
        area_id=area_key,
        detector=request.detector,
        artifact=name,
        feature_spec=spec.to_dict(),
        point_ids=[p.point_id for p in points],
        window_start=request.start,
        window_end=request.end,
        data_hash=digest,
        n_rows=len(features),
        params={"threshold_quantile": request.threshold_quantile, "margin": request.margin, **request.params},
        actor=actor,
    )
    _LOGGER.info(
        "trained %s for %s/%s on %d rows: model %d, artifact %s",
        request.detector,
        request.site,
        request.area,
        len(features),
        model_id,
        name,
    )
    return TrainResult(model_id, envelope, spec)
