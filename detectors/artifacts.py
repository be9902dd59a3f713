"""Fitted detectors on disk, with a version envelope, loaded only from our own artifact directory."""

# Layout: ``<root>/<name>/model.pkl`` and ``<root>/<name>/envelope.json``. The envelope records the
# detector key and version, the library versions it was fitted with, the feature list, the training
# window, a hash of the training data, the creation time and the SHA-256 of ``model.pkl``
# (pyod's ``utils/persistence.py`` idea). Unpickling runs code, so ``load``
#
# * resolves the name inside the root and refuses anything that lands outside it (``..``, absolute
#   paths, symlinks pointing away);
# * checks the pickle's SHA-256 against the envelope *before* unpickling;
# * refuses an envelope of another format, and warns when the library versions differ from ours.

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings import get_settings
from detectors.base import Detector

_LOGGER = logging.getLogger(__name__)

FORMAT = 1
MODEL_FILE = "model.pkl"
ENVELOPE_FILE = "envelope.json"
#: Libraries whose versions decide whether a pickle can be trusted to behave as when it was fitted.
LIBRARIES = ("numpy", "pandas", "scikit-learn", "pyod", "scipy")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$")


class DetectorSettings(BaseSettings):
    """Settings of the detectors package (prefix ``EHS_DETECTORS_``)."""

    model_config = SettingsConfigDict(env_prefix="EHS_DETECTORS_", env_file=".env", extra="ignore")

    #: Where fitted models live; unset means ``<EHS_DATA_DIR>/artifacts``.
    artifact_dir: Path | None = None
    #: Score the shadow and enabled area models inside the ingest pipeline.
    scoring: bool = True


class ArtifactError(Exception):
    """An artifact is missing, outside the store, tampered with or of an unknown format."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """What is known about a stored model without unpickling it."""

    name: str
    detector: str
    detector_version: int
    features: list[str]
    window_start: str | None
    window_end: str | None
    data_hash: str
    n_rows: int
    created_at: str
    model_sha256: str
    libraries: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a pickled model depends on."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def data_hash(data: pd.DataFrame | np.ndarray) -> str:
    """SHA-256 of the training data: column names, index and values (so a re-fit can be checked)."""
    digest = hashlib.sha256()
    if isinstance(data, pd.DataFrame):
        digest.update(json.dumps([str(c) for c in data.columns]).encode())
        digest.update(np.asarray(pd.util.hash_pandas_object(data, index=True)).tobytes())
    else:
        array = np.ascontiguousarray(np.asarray(data, dtype=float))
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class ArtifactStore:
    """The one directory we load fitted models from."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dir(self, name: str) -> Path:
        if not _NAME.match(name) or any(part in {".", ".."} for part in name.split("/")):
            raise ArtifactError(f"artifact name {name!r} is not a plain relative name")
        root = self.root.resolve()
        target = (root / name).resolve()
        if not target.is_relative_to(root):
            raise ArtifactError(f"artifact {name!r} resolves outside the artifact store {root}")
        return target

    def save(
        self,
        detector: Detector,
        *,
        name: str,
        data: pd.DataFrame | np.ndarray,
        window: tuple[datetime | None, datetime | None] = (None, None),
        extra: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Envelope:
        """Pickle a fitted detector with its envelope; an existing name is never overwritten."""
        target = self._dir(name)
        if (target / ENVELOPE_FILE).exists():
            raise ArtifactError(f"artifact {name!r} exists; store a new version under a new name")
        target.mkdir(parents=True, exist_ok=True)
        payload = pickle.dumps(detector, protocol=pickle.HIGHEST_PROTOCOL)
        features = list(detector.inputs())
        envelope = Envelope(
            name=name,
            detector=detector.key,
            detector_version=detector.version,
            features=[str(f) for f in features],
            window_start=window[0].isoformat() if window[0] else None,
            window_end=window[1].isoformat() if window[1] else None,
            data_hash=data_hash(data),
            n_rows=len(data),
            created_at=(now or datetime.now(UTC)).isoformat(),
            model_sha256=hashlib.sha256(payload).hexdigest(),
            libraries=library_versions(),
            params=_jsonable(detector.get_params()),
            extra=dict(extra or {}),
        )
        (target / MODEL_FILE).write_bytes(payload)
        # The envelope is written last: its presence marks a complete artifact.
        (target / ENVELOPE_FILE).write_text(json.dumps(asdict(envelope), indent=2, sort_keys=True))
        _LOGGER.info("stored %s artifact %s (%d rows)", detector.key, name, len(data))
        return envelope

    def envelope(self, name: str) -> Envelope:
        """Read an artifact's envelope (no code runs)."""
        path = self._dir(name) / ENVELOPE_FILE
        if not path.is_file():
            raise ArtifactError(f"no artifact {name!r} in {self.root}")
        raw = json.loads(path.read_text())
        if raw.get("format") != FORMAT:
            raise ArtifactError(f"artifact {name!r} has format {raw.get('format')}, expected {FORMAT}")
        return Envelope(**raw)

    def load(self, name: str) -> Detector:
        """Return the fitted detector stored under ``name`` after checking its envelope and hash."""
        envelope = self.envelope(name)
        payload = (self._dir(name) / MODEL_FILE).read_bytes()
        if hashlib.sha256(payload).hexdigest() != envelope.model_sha256:
            raise ArtifactError(f"artifact {name!r}: model.pkl does not match its envelope's SHA-256")
        ours = library_versions()
        changed = {lib: (v, ours.get(lib)) for lib, v in envelope.libraries.items() if ours.get(lib) != v}
        if changed:
            _LOGGER.warning("artifact %s was fitted with other library versions %s; refit when possible", name, changed)
        detector = pickle.loads(payload)  # noqa: S301 - our own store, hash checked above
        if not isinstance(detector, Detector) or detector.key != envelope.detector:
            raise ArtifactError(f"artifact {name!r} does not hold a {envelope.detector} detector")
        return detector

    def names(self) -> list[str]:
        """Names of all complete artifacts in the store."""
        if not self.root.is_dir():
            return []
        return sorted(str(p.parent.relative_to(self.root)) for p in self.root.rglob(ENVELOPE_FILE))


def default_store(settings: DetectorSettings | None = None) -> ArtifactStore:
    """The store named by ``EHS_DETECTORS_ARTIFACT_DIR``, else ``<EHS_DATA_DIR>/artifacts``."""
    settings = settings or DetectorSettings()
    return ArtifactStore(settings.artifact_dir or get_settings().data_dir / "artifacts")


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(params, default=lambda v: list(v) if isinstance(v, tuple) else str(v)))
