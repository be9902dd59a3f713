"""The artifact store: round trip, envelope, and refusal of anything outside or tampered."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from detectors.adapters import PyodPCA, SklearnLOF
from detectors.artifacts import ArtifactError, ArtifactStore, data_hash, default_store

FEATURES = ("temp_c", "voc_ppm")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def train() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(200, 2)), columns=list(FEATURES))


@pytest.fixture
def store(tmp_path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def test_round_trip_keeps_scores_and_records_the_envelope(store, train):
    detector = PyodPCA(features=FEATURES).fit(train)
    window = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC))
    envelope = store.save(detector, name="drying/pca-v1", data=train, window=window, extra={"area": "drying"})
    loaded = store.load("drying/pca-v1")
    probe = {"temp_c": 2.0, "voc_ppm": -1.0}
    assert loaded.score_one(probe, T0) == detector.score_one(probe, T0)
    assert envelope.features == list(FEATURES) and envelope.detector == "pyod_pca"
    assert envelope.window_start == "2026-01-01T00:00:00+00:00" and envelope.n_rows == 200
    assert envelope.data_hash == data_hash(train) and envelope.libraries["pyod"] != "absent"
    assert store.envelope("drying/pca-v1") == envelope
    assert store.names() == ["drying/pca-v1"]


def test_data_hash_changes_with_the_data(train):
    changed = train.copy()
    changed.iloc[0, 0] += 1e-9
    assert data_hash(train) != data_hash(changed)
    assert data_hash(train) == data_hash(train.copy())


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/../../b", "", "a//b", "./a"])
def test_names_outside_the_store_are_refused(store, name):
    with pytest.raises(ArtifactError):
        store.load(name)


def test_symlink_pointing_out_of_the_store_is_refused(store, train, tmp_path):
    outside = ArtifactStore(tmp_path / "elsewhere")
    outside.save(PyodPCA(features=FEATURES).fit(train), name="evil", data=train)
    store.root.mkdir(parents=True)
    (store.root / "link").symlink_to(tmp_path / "elsewhere" / "evil", target_is_directory=True)
    with pytest.raises(ArtifactError, match="outside"):
        store.load("link")


def test_tampered_model_is_refused_before_unpickling(store, train):
    store.save(PyodPCA(features=FEATURES).fit(train), name="pca", data=train)
    model = store.root / "pca" / "model.pkl"
    model.write_bytes(model.read_bytes() + b"\x00")
    with pytest.raises(ArtifactError, match="SHA-256"):
        store.load("pca")


def test_unknown_format_is_refused(store, train):
    store.save(PyodPCA(features=FEATURES).fit(train), name="pca", data=train)
    path = store.root / "pca" / "envelope.json"
    raw = json.loads(path.read_text())
    path.write_text(json.dumps({**raw, "format": 99}))
    with pytest.raises(ArtifactError, match="format"):
        store.load("pca")


def test_existing_artifacts_are_never_overwritten(store, train):
    store.save(PyodPCA(features=FEATURES).fit(train), name="pca", data=train)
    with pytest.raises(ArtifactError, match="exists"):
        store.save(PyodPCA(features=FEATURES).fit(train), name="pca", data=train)


def test_prepare_loads_the_named_artifact_from_the_configured_store(tmp_path, monkeypatch, train):
    monkeypatch.setenv("EHS_DETECTORS_ARTIFACT_DIR", str(tmp_path / "store"))
    fitted = PyodPCA(features=FEATURES).fit(train)
    default_store().save(fitted, name="pca", data=train)
    detector = PyodPCA(features=FEATURES, artifact="pca")
    assert detector.score_one({"temp_c": 1.0, "voc_ppm": 1.0}, T0) is None
    detector.prepare()
    assert detector.score_one({"temp_c": 1.0, "voc_ppm": 1.0}, T0) == fitted.score_one(
        {"temp_c": 1.0, "voc_ppm": 1.0}, T0
    )


def test_prepare_refuses_an_artifact_of_another_model(tmp_path, monkeypatch, train):
    monkeypatch.setenv("EHS_DETECTORS_ARTIFACT_DIR", str(tmp_path / "store"))
    default_store().save(SklearnLOF(features=FEATURES).fit(train), name="lof", data=train)
    with pytest.raises(ValueError, match="holds sklearn_lof"):
        PyodPCA(features=FEATURES, artifact="lof").prepare()
