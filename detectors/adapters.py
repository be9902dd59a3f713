"""pyod and scikit-learn models behind the one detector interface (STYLE.md B4), with calibrated scores."""

# Every adapter is fitted on a history of feature vectors and then scores one vector at a time. Native
# scores are mapped once, here, onto the house scale::
#
#     score = (raw - centre) / (threshold - centre)
#
# where ``raw`` is the model's abnormality (higher is worse; scikit-learn's ``score_samples`` is negated
# once in ``SklearnDetector._raw``), ``centre`` is the median raw score of the training vectors and
# ``threshold = centre + margin * (q - centre)`` with ``q`` the ``threshold_quantile`` of the training
# scores. So 0 is a typical training vector, 1.0 is the learnt limit, 2.0 is twice as far from typical.
#
# Only this module and ``detectors.artifacts`` import pyod or scikit-learn (STYLE.md B2). pyod is imported
# inside the model factories because importing it loads matplotlib (seconds), which processes that never
# fit a pyod model should not pay for.

from __future__ import annotations

import abc
import logging
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from detectors.base import Detector

_LOGGER = logging.getLogger(__name__)

_EXAMPLE_FEATURES = ("temp_c", "voc_ppm", "current_a")


class ModelDetector(Detector):
    """A batch-fitted multivariate model that scores one feature vector at a time.

    Parameters
    ----------
    features
        Names of the features, in the order the model sees them. A vector missing any of them is not
        scored (None); other keys are ignored.
    threshold_quantile
        Quantile of the training scores that anchors the limit (1.0 = the largest training score).
    margin
        Distance of the limit from the median training score, in units of ``quantile - median``;
        above 1 it leaves room for normal variation the training window did not show.
    drift_tau
        If set, the reference point of the standardisation follows the data with an exponential
        moving average of this time constant (in observations), updated in ``learn_one`` only while
        the score is below 1.0 (river's ``protect_anomaly_detector``): slow drift slower than about
        ``drift_tau`` observations is learnt, faster changes are scored. None keeps the model static,
        which is what catches slow degradation.
    artifact
        Name of a stored artifact (``detectors.artifacts``) that ``prepare`` loads the fitted state from.
    random_state
        Seed of the model's randomness (same seed, same data -> same scores).
    """

    key: ClassVar[str] = "model"
    needs_fit: ClassVar[bool] = True
    #: pyod's ECOD and COPOD re-estimate their distributions on training + scored data together, so a
    #: batch's scores depend on the batch; such models are scored one row at a time.
    transductive: ClassVar[bool] = False

    def __init__(
        self,
        *,
        features: tuple[str, ...],
        threshold_quantile: float = 0.99,
        margin: float = 1.0,
        drift_tau: float | None = None,
        artifact: str | None = None,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.threshold_quantile = threshold_quantile
        self.margin = margin
        self.drift_tau = drift_tau
        self.artifact = artifact
        self.random_state = random_state
        self._last: tuple[datetime, float | None] | None = None

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        yield {"features": _EXAMPLE_FEATURES, "random_state": 0}
        yield {
            "features": _EXAMPLE_FEATURES,
            "threshold_quantile": 1.0,
            "margin": 1.5,
            "drift_tau": 50.0,
            "random_state": 7,
        }

    def inputs(self) -> tuple[str, ...]:
        return tuple(self.features)

    # -- fitting -------------------------------------------------------------------------------------

    @abc.abstractmethod
    def _make_model(self) -> Any:
        """Return an unfitted model."""

    def _fit_model(self, z: np.ndarray) -> None:
        self.model_.fit(z)

    @abc.abstractmethod
    def _raw(self, z: np.ndarray) -> np.ndarray:
        """Raw abnormality of standardised rows, higher is worse."""

    def _train_raw(self, z: np.ndarray) -> np.ndarray:
        """Raw scores of the training rows (in-sample unless the model offers better)."""
        return self._raw(z)

    def fit(self, data: pd.DataFrame | np.ndarray) -> Self:
        """Fit on training vectors (rows with a missing feature are dropped) and calibrate the limit."""
        x = self._matrix(data)
        x = x[~np.isnan(x).any(axis=1)]
        minimum = max(10, len(self.features) + 2)
        if len(x) < minimum:
            raise ValueError(f"{self.key}: {len(x)} complete training rows, at least {minimum} needed")
        self.mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        # A constant feature carries no information in training; scale 1 keeps a later change visible.
        self.scale_ = np.where(std > 1e-12, std, 1.0)
        self.baseline_ = self.mean_.copy()
        z = (x - self.mean_) / self.scale_
        self.model_ = self._make_model()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            self._fit_model(z)
        train = np.asarray(self._train_raw(z), dtype=float)
        self.centre_ = float(np.median(train))
        limit = float(np.quantile(train, self.threshold_quantile))
        self.threshold_ = self.centre_ + self.margin * (limit - self.centre_)
        if not self.threshold_ > self.centre_:
            # Every training score equal (e.g. constant data): fall back to one unit of raw score.
            self.threshold_ = self.centre_ + 1.0
        self.n_train_ = len(x)
        self._last = None
        return self

    @property
    def fitted(self) -> bool:
        return hasattr(self, "model_")

    def prepare(self) -> None:
        """Load the fitted state from the artifact store when an artifact is named and nothing is fitted."""
        if self.artifact is None or self.fitted:
            return
        from detectors.artifacts import default_store  # runtime import: artifacts imports this module

        loaded = default_store().load(self.artifact)
        if type(loaded) is not type(self) or tuple(loaded.features) != tuple(self.features):
            raise ValueError(
                f"artifact {self.artifact!r} holds {loaded.key} on {loaded.features}, not {self.key} on {self.features}"
            )
        for name, value in vars(loaded).items():
            if name.endswith("_"):
                setattr(self, name, value)

    # -- scoring -------------------------------------------------------------------------------------

    def _row(self, x: Mapping[str, float | None]) -> np.ndarray | None:
        row = []
        for name in self.features:
            value = x.get(name)
            if value is None or not math.isfinite(value):
                return None
            row.append(float(value))
        return np.asarray(row)

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        return (raw - self.centre_) / (self.threshold_ - self.centre_)

    def _score_rows(self, x: np.ndarray, reference: np.ndarray) -> np.ndarray:
        z = (x - reference) / self.scale_
        if self.transductive and len(z) > 1:
            raw = np.concatenate([self._raw(z[i : i + 1]) for i in range(len(z))])
        else:
            raw = np.asarray(self._raw(z), dtype=float)
        return self._calibrate(raw)

    def score_one(self, x: Mapping[str, float | None], ts: datetime) -> float | None:
        """Return the calibrated score of one vector, or None if unfitted or a feature is missing."""
        row = self._row(x) if self.fitted else None
        score = None if row is None else float(self._score_rows(row[None, :], self.baseline_)[0])
        self._last = (ts, score)
        return score

    def score_frame(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Score many vectors at once against the static reference (NaN where a feature is missing)."""
        if not self.fitted:
            raise RuntimeError(f"{self.key} is not fitted")
        x = self._matrix(data)
        out = np.full(len(x), np.nan)
        complete = ~np.isnan(x).any(axis=1)
        if complete.any():
            out[complete] = self._score_rows(x[complete], self.mean_)
        return out

    def learn_one(self, x: Mapping[str, float | None], ts: datetime) -> None:
        """Follow slow drift (``drift_tau``) while the observation scores below the limit."""
        if self.drift_tau is None or not self.fitted:
            return None
        row = self._row(x)
        if row is None:
            return None
        if self._last is not None and self._last[0] == ts:
            score = self._last[1]
        else:
            score = float(self._score_rows(row[None, :], self.baseline_)[0])
        if score is not None and score < 1.0:
            self.baseline_ = self.baseline_ + (row - self.baseline_) / self.drift_tau
        return None

    def explain(self, x: Mapping[str, float | None], top: int = 3) -> list[tuple[str, float]]:
        """Return the features that contributed most to this vector's score, largest first.

        A feature's contribution is how much the score drops when that feature alone is replaced by its
        reference value (occlusion); it works for every model and is in score units.
        """
        row = self._row(x) if self.fitted else None
        if row is None:
            return []
        candidates = np.repeat(row[None, :], len(row) + 1, axis=0)
        for j in range(len(row)):
            candidates[j + 1, j] = self.baseline_[j]
        scores = self._score_rows(candidates, self.baseline_)
        drops = scores[0] - scores[1:]
        order = np.argsort(-drops, kind="stable")[:top]
        return [(self.features[j], float(drops[j])) for j in order]

    def _matrix(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        if isinstance(data, pd.DataFrame):
            missing = [name for name in self.features if name not in data.columns]
            if missing:
                raise KeyError(f"{self.key}: training data lacks features {missing}")
            return data.loc[:, list(self.features)].to_numpy(dtype=float)
        x = np.asarray(data, dtype=float)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"{self.key}: expected (n, {len(self.features)}) data, got {x.shape}")
        return x


# -- pyod --------------------------------------------------------------------------------------------


class PyodDetector(ModelDetector):
    """A pyod model; pyod already reports higher = more abnormal (``decision_function``)."""

    def _raw(self, z: np.ndarray) -> np.ndarray:
        return self.model_.decision_function(z)

    def _train_raw(self, z: np.ndarray) -> np.ndarray:
        # pyod's decision_scores_ are its training scores; for neighbour models they leave the point out.
        return self.model_.decision_scores_


class PyodIForest(PyodDetector):
    """Isolation Forest (Liu et al. 2008) via pyod.

    Isolation scores saturate: a point far outside the training data is isolated in about as many splits
    as the most extreme training points, so with ``threshold_quantile=1.0`` and ``margin > 1`` the limit
    may be unreachable. Keep the quantile below 1 for isolation forests.
    """

    key = "pyod_iforest"

    def __init__(self, *, n_estimators: int = 100, **common: Any) -> None:
        super().__init__(**common)
        self.n_estimators = n_estimators

    def _make_model(self) -> Any:
        from pyod.models.iforest import IForest

        return IForest(n_estimators=self.n_estimators, random_state=self.random_state, n_jobs=1)


class PyodECOD(PyodDetector):
    """Empirical-CDF outlier detection (Li et al. 2022) via pyod; parameter-free."""

    key = "pyod_ecod"
    transductive = True

    def _make_model(self) -> Any:
        from pyod.models.ecod import ECOD

        return ECOD(n_jobs=1)


class PyodCOPOD(PyodDetector):
    """Copula-based outlier detection (Li et al. 2020) via pyod; parameter-free."""

    key = "pyod_copod"
    transductive = True

    def _make_model(self) -> Any:
        from pyod.models.copod import COPOD

        return COPOD(n_jobs=1)


class PyodHBOS(PyodDetector):
    """Histogram-based outlier score (Goldstein & Dengel 2012) via pyod."""

    key = "pyod_hbos"

    def __init__(self, *, n_bins: int = 10, **common: Any) -> None:
        super().__init__(**common)
        self.n_bins = n_bins

    def _make_model(self) -> Any:
        from pyod.models.hbos import HBOS

        return HBOS(n_bins=self.n_bins)


class PyodPCA(PyodDetector):
    """PCA distance to the principal subspace, weighted by eigenvalues (Shyu et al. 2003) via pyod.

    With all components kept this is close to Hotelling's T-squared; SKAB's "T-squared+Q (PCA)"
    baseline is the same family.
    """

    key = "pyod_pca"

    def __init__(self, *, n_components: int | None = None, **common: Any) -> None:
        super().__init__(**common)
        self.n_components = n_components

    def _make_model(self) -> Any:
        from pyod.models.pca import PCA

        return PCA(n_components=self.n_components, random_state=self.random_state)

    def _fit_model(self, z: np.ndarray) -> None:
        if self.n_components is None:
            # Exactly collinear features (a derived or duplicated point) leave a zero-variance component,
            # and pyod's weighted PCA divides by each component's variance: keep the numerical rank only.
            rank = int(np.linalg.matrix_rank(z))
            if rank < z.shape[1]:
                self.model_.n_components = rank
        self.model_.fit(z)


class PyodMCD(PyodDetector):
    """Robust Mahalanobis distance with the minimum covariance determinant (Rousseeuw 1999) via pyod."""

    key = "pyod_mcd"

    def _make_model(self) -> Any:
        from pyod.models.mcd import MCD

        return MCD(random_state=self.random_state)


class PyodKNN(PyodDetector):
    """Distance to the k-th nearest training vector (Ramaswamy et al. 2000) via pyod."""

    key = "pyod_knn"

    def __init__(self, *, n_neighbors: int = 5, **common: Any) -> None:
        super().__init__(**common)
        self.n_neighbors = n_neighbors

    def _make_model(self) -> Any:
        from pyod.models.knn import KNN

        return KNN(n_neighbors=self.n_neighbors, n_jobs=1)


# -- scikit-learn ------------------------------------------------------------------------------------


class SklearnDetector(ModelDetector):
    """A scikit-learn novelty detector; its ``score_samples`` is *low* for abnormal data."""

    def _raw(self, z: np.ndarray) -> np.ndarray:
        # The one place scikit-learn's sign is inverted (STYLE.md B4, B11).
        return -self.model_.score_samples(z)


class SklearnIsolationForest(SklearnDetector):
    """scikit-learn's IsolationForest (scores saturate, see ``PyodIForest``)."""

    key = "sklearn_iforest"

    def __init__(self, *, n_estimators: int = 100, **common: Any) -> None:
        super().__init__(**common)
        self.n_estimators = n_estimators

    def _make_model(self) -> Any:
        from sklearn.ensemble import IsolationForest

        return IsolationForest(n_estimators=self.n_estimators, random_state=self.random_state, n_jobs=1)


class SklearnOneClassSVM(SklearnDetector):
    """scikit-learn's OneClassSVM with an RBF kernel (Schölkopf et al. 2001)."""

    key = "sklearn_ocsvm"

    def __init__(self, *, nu: float = 0.05, **common: Any) -> None:
        super().__init__(**common)
        self.nu = nu

    def _make_model(self) -> Any:
        from sklearn.svm import OneClassSVM

        return OneClassSVM(nu=self.nu, gamma="scale")


class SklearnLOF(SklearnDetector):
    """scikit-learn's LocalOutlierFactor in novelty mode (Breunig et al. 2000)."""

    key = "sklearn_lof"

    def __init__(self, *, n_neighbors: int = 20, **common: Any) -> None:
        super().__init__(**common)
        self.n_neighbors = n_neighbors

    def _make_model(self) -> Any:
        from sklearn.neighbors import LocalOutlierFactor

        return LocalOutlierFactor(n_neighbors=self.n_neighbors, novelty=True)

    def _train_raw(self, z: np.ndarray) -> np.ndarray:
        # In-sample score_samples would count each training point as its own neighbour.
        return -self.model_.negative_outlier_factor_


class MLPAutoEncoder(ModelDetector):
    """A small dense autoencoder (scikit-learn MLPRegressor trained to reproduce its input).

    The raw score is the mean squared reconstruction error of the standardised vector. pyod's
    AutoEncoder needs torch, which this service does not install.
    """

    key = "mlp_autoencoder"

    def __init__(self, *, hidden: Sequence[int] = (16, 4, 16), max_iter: int = 500, **common: Any) -> None:
        super().__init__(**common)
        self.hidden = hidden
        self.max_iter = max_iter

    def _make_model(self) -> Any:
        from sklearn.neural_network import MLPRegressor

        return MLPRegressor(
            hidden_layer_sizes=tuple(self.hidden),
            activation="tanh",
            solver="adam",
            max_iter=self.max_iter,
            random_state=self.random_state,
        )

    def _fit_model(self, z: np.ndarray) -> None:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", category=ConvergenceWarning)
            self.model_.fit(z, z)
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            _LOGGER.info(
                "%s: not converged after %d iterations; scores stay calibrated on training",
                self.key,
                self.max_iter,
            )

    def _raw(self, z: np.ndarray) -> np.ndarray:
        return ((z - self.model_.predict(z)) ** 2).mean(axis=1)


MODEL_DETECTORS: tuple[type[ModelDetector], ...] = (
    PyodIForest,
    PyodECOD,
    PyodCOPOD,
    PyodHBOS,
    PyodPCA,
    PyodMCD,
    PyodKNN,
    SklearnIsolationForest,
    SklearnOneClassSVM,
    SklearnLOF,
    MLPAutoEncoder,
)
