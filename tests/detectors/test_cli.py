"""The eval and detectors commands: human table first, one JSON object as the last line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from cli.detectors_cmd import app as detectors_app
from cli.eval_cmd import app as eval_app

runner = CliRunner()


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_eval_nab_on_two_files_ends_with_the_contract_keys(nab_root):
    # The one NAB smoke run: a clean level jump and the machine temperature failure (4 windows).
    files = ["artificialWithAnomaly/art_daily_jumpsup.csv", "realKnownCause/machine_temperature_system_failure.csv"]
    result = runner.invoke(eval_app, ["nab", str(nab_root), *(arg for f in files for arg in ("--file", f))])
    assert result.exit_code == 0, result.output
    summary = _last_json(result.output)
    assert {"standard", "low_fp", "low_fn"} <= summary.keys()
    assert summary["files"] == 2 and summary["windows"] == 5
    assert "numenta" in result.output and "ARTime" in result.output  # the published leaderboard beside ours
    # The optimiser can always fall back to "detect nothing" (0); a working detector does much better.
    assert 30.0 < summary["standard"] <= 100.0 and summary["detections"]["standard"]["tp"] > 0


def test_eval_skab_on_one_file_ends_with_the_contract_keys(skab_root):
    # The one SKAB smoke run: valve1/3.csv, one ~400-row closing of the inlet valve after the training rows.
    result = runner.invoke(eval_app, ["skab", str(skab_root / "data" / "valve1" / "3.csv"), "--no-anomaly-free"])
    assert result.exit_code == 0, result.output
    summary = _last_json(result.output)
    assert {"f1", "far", "mar"} <= summary.keys() and summary["files"] == 1
    assert summary["tp"] + summary["fn"] == 404  # the anomalous test rows of valve1/3.csv
    assert summary["f1"] > 0.7 and summary["far"] < 15.0


def test_detectors_list_names_every_registered_key():
    result = runner.invoke(detectors_app, ["list"])
    assert result.exit_code == 0
    for key in (
        "pyod_iforest",
        "pyod_ecod",
        "pyod_copod",
        "pyod_hbos",
        "pyod_pca",
        "mlp_autoencoder",
        "sklearn_iforest",
        "sklearn_ocsvm",
        "sklearn_lof",
        "nn_novelty",
        "limit",
        "rate_of_rise",
        "vote",
        "stale",
    ):
        assert key in result.output
    # a rule's expression is shown as the plant file writes it
    assert '{"expr": {"k_of": 1, "of": [{"key": "smoke_bool", "above": 0.5}, {"rule": "co_high"}]}}' in result.output


def test_fit_csv_stores_an_artifact_that_lists(tmp_path, monkeypatch):
    monkeypatch.setenv("EHS_DETECTORS_ARTIFACT_DIR", str(tmp_path / "store"))
    rng = np.random.default_rng(0)
    ts = pd.date_range("2026-01-01", periods=300, freq="1min", tz="UTC")
    rows = [(t, p, float(v)) for t in ts for p, v in (("temp_c", 80 + rng.normal()), ("voc_ppm", 5 + rng.normal()))]
    path = tmp_path / "export.csv"
    pd.DataFrame(rows, columns=["ts", "point", "value"]).to_csv(path, index=False)
    result = runner.invoke(
        detectors_app,
        [
            "fit-csv",
            str(path),
            "--name",
            "drying/pca",
            "--point",
            "temp_c",
            "--point",
            "voc_ppm",
            "--window",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = _last_json(result.output)
    assert summary["features"] == ["temp_c__mean5", "voc_ppm__mean5"] and summary["rows"] == 296
    listed = runner.invoke(detectors_app, ["artifacts"])
    assert "drying/pca: pyod_pca" in listed.output
