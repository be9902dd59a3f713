"""SKAB (Skoltech Anomaly Benchmark v0.9), outlier task, under the protocol of its current leaderboard."""

# Protocol (SKAB README @ b2c0d46, ``preprocess_skab``): in every labelled file the first 400 rows are
# training and the rest is test; predictions are binary per row; TP/TN/FP/FN are summed over all files
# and (tsad ``evaluating(metric="binary")``)
#
#     F1 = TP / (TP + (FN + FP) / 2),  FAR = FP / (FP + TN) * 100,  MAR = FN / (FN + TP) * 100.
#
# Our pipeline is the product's: trailing-window features (``detectors.features``), one registered
# detector fitted on each file's training rows, then the test rows streamed through ``score_one`` /
# ``learn_one`` and the product's ``Trigger`` (alarm while the score is >= 1.0). One configuration serves
# every file; nothing is fitted on test rows except what a streaming detector learns causally.
#
# ``anomaly_free_far`` runs the same configuration on ``anomaly-free/anomaly-free.csv`` cut into pieces of
# a labelled file's length (no labels needed: every alarm there is false). How the default was chosen, so
# that the figure can be judged: the model family (a static PCA/T-squared model on trailing means, the
# family of SKAB's own "T-squared+Q" baseline) and the 10-row window were picked after comparing a few
# families and windows on the published valve1 files; the ``margin`` was then fixed on unlabelled data
# only, as the smallest of 1.5, 2, 3, 4, 6, 8, 12 whose anomaly-free FAR is at most the 15 % FAR target.
# SKAB's valve2 and other folders were never used, so they remain an independent check.

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.model import Severity
from detectors import registry
from detectors.adapters import ModelDetector
from detectors.features import FeatureSpec, build_features
from detectors.trigger import Level, Trigger

_LOGGER = logging.getLogger(__name__)

TRAIN_ROWS = 400
LABELS = ("anomaly", "changepoint")
ANOMALY_FREE = "anomaly-free"


@dataclass(frozen=True, slots=True)
class SkabConfig:
    """The one configuration used for every SKAB file."""

    detector: str = "pyod_pca"
    #: Trailing mean over this many rows (seconds at SKAB's 1 Hz); 1 uses the raw values.
    window: int = 10
    threshold_quantile: float = 1.0
    margin: float = 3.0
    #: Time constant (rows) of the protected drift-following reference; None for a static model, which
    #: is what the product wants for slow degradation (a drying oven drifting over hours).
    drift_tau: float | None = None
    train_rows: int = TRAIN_ROWS
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Counts:
    tp: int = 0
    tn: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.tn + other.tn, self.fp + other.fp, self.fn + other.fn)

    @property
    def f1(self) -> float:
        denominator = self.tp + (self.fn + self.fp) / 2
        return self.tp / denominator if denominator else 0.0

    @property
    def far(self) -> float:
        """False-alarm rate in percent of normal rows."""
        return 100.0 * self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def mar(self) -> float:
        """Missed-alarm rate in percent of anomalous rows."""
        return 100.0 * self.fn / (self.fn + self.tp) if self.fn + self.tp else 0.0


def binary_counts(y_true: np.ndarray, y_pred: np.ndarray) -> Counts:
    """Confusion counts of two 0/1 vectors (tsad ``confusion_matrix``)."""
    truth, pred = np.asarray(y_true) == 1, np.asarray(y_pred) == 1
    return Counts(
        int((truth & pred).sum()),
        int((~truth & ~pred).sum()),
        int((~truth & pred).sum()),
        int((truth & ~pred).sum()),
    )


@dataclass(frozen=True, slots=True)
class SkabFile:
    name: str
    frame: pd.DataFrame

    @property
    def sensors(self) -> list[str]:
        return [c for c in self.frame.columns if c not in LABELS]


def read_file(path: Path) -> pd.DataFrame:
    """Read one SKAB CSV (``;``-separated, ``datetime`` index)."""
    return pd.read_csv(path, sep=";", index_col="datetime", parse_dates=True)


def find_files(path: Path) -> tuple[list[SkabFile], SkabFile | None]:
    """Return the labelled files under ``path`` (a SKAB folder, its ``data/`` or one CSV) and anomaly-free."""
    paths = [path] if path.is_file() else sorted(path.rglob("*.csv"), key=_natural)
    labelled, free = [], None
    for p in paths:
        item = SkabFile(str(p.relative_to(path)) if p != path else p.name, read_file(p))
        if ANOMALY_FREE in p.parts or "anomaly" not in item.frame.columns:
            free = free or item
        else:
            labelled.append(item)
    return labelled, free


def _natural(path: Path) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in path.with_suffix("").parts)


def make_detector(config: SkabConfig, features: Sequence[str]) -> ModelDetector:
    """Instantiate the configured registered detector on these features."""
    cls = registry.get(config.detector)
    if not issubclass(cls, ModelDetector):
        raise ValueError(f"{config.detector} is not a multivariate model detector")
    return cls(
        features=tuple(features),
        threshold_quantile=config.threshold_quantile,
        margin=config.margin,
        drift_tau=config.drift_tau,
        **config.params,
    )


def feature_spec(sensors: Sequence[str], config: SkabConfig) -> FeatureSpec:
    if config.window <= 1:
        return FeatureSpec(points=tuple(sensors))
    return FeatureSpec(points=tuple(sensors), windows=(config.window,), stats=("mean",), include_raw=False)


def predict(frame: pd.DataFrame, sensors: Sequence[str], config: SkabConfig) -> np.ndarray:
    """Fit on the training rows, stream the test rows, return one 0/1 alarm state per test row."""
    spec = feature_spec(sensors, config)
    features = build_features(frame[list(sensors)], spec)
    detector = make_detector(config, spec.names)
    detector.fit(features.iloc[: config.train_rows])
    trigger = Trigger(levels=(Level(1.0, Severity.HIGH),))
    alarms = np.zeros(len(frame) - config.train_rows, dtype=int)
    test = features.iloc[config.train_rows :]
    for i, (ts, values) in enumerate(zip(test.index, test.to_dict("records"), strict=True)):
        observation = {k: (None if pd.isna(v) else v) for k, v in values.items()}
        score = detector.score_one(observation, ts)
        detector.learn_one(observation, ts)
        trigger.update(score, ts)
        alarms[i] = int(trigger.state_ >= Severity.HIGH)
    return alarms


@dataclass(frozen=True, slots=True)
class SkabResult:
    config: SkabConfig
    total: Counts
    per_file: dict[str, Counts]
    anomaly_free_far: float | None = None


def evaluate(files: Iterable[SkabFile], config: SkabConfig) -> SkabResult:
    """Run the configuration over every labelled file and sum the confusion counts."""
    per_file: dict[str, Counts] = {}
    for item in files:
        alarms = predict(item.frame, item.sensors, config)
        per_file[item.name] = binary_counts(item.frame["anomaly"].to_numpy()[config.train_rows :], alarms)
    total = sum(per_file.values(), Counts())
    return SkabResult(config, total, per_file)


def anomaly_free_far(free: SkabFile, config: SkabConfig, piece_rows: int) -> float:
    """FAR (%) of the configuration on the anomaly-free recording cut into pieces of ``piece_rows``."""
    false_rows = normal_rows = 0
    for start in range(0, len(free.frame) - piece_rows + 1, piece_rows):
        piece = free.frame.iloc[start : start + piece_rows]
        alarms = predict(piece, free.sensors, config)
        false_rows += int(alarms.sum())
        normal_rows += len(alarms)
    return 100.0 * false_rows / normal_rows if normal_rows else float("nan")


def run(path: Path, config: SkabConfig | None = None, *, check_free: bool = True) -> SkabResult:
    """Evaluate on every labelled file under ``path``; add the anomaly-free FAR when that file is there."""
    config = config or SkabConfig()
    files, free = find_files(path)
    if not files:
        raise FileNotFoundError(f"no labelled SKAB files under {path}")
    result = evaluate(files, config)
    if check_free and free is not None:
        piece = int(round(np.mean([len(f.frame) for f in files])))
        result = replace(result, anomaly_free_far=anomaly_free_far(free, config, piece))
    return result


def load_leaderboard(path: Path) -> list[dict[str, Any]]:
    """Published outlier-task rows from ``leaderboard.json`` next to (or above) ``path``; [] if absent."""
    for folder in (path, *path.parents):
        board = folder / "leaderboard.json"
        if board.is_file():
            return list(json.loads(board.read_text())["outlier_detection"])
    return []
