"""``ehs eval``: run a detector on a public benchmark under its own protocol, beside its leaderboard."""

# Each command prints a human table and, as its last line, one JSON object (ARCHITECTURE.md): ``f1``,
# ``far``, ``mar`` for SKAB (F1 as a fraction, FAR and MAR in percent, as the SKAB leaderboard), and
# ``standard``, ``low_fp``, ``low_fn`` for NAB (normalised scores, null 0, perfect 100).

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from detectors.evaluation import nab, skab
from energy import gapfill_eval

_SKAB = skab.SkabConfig()
_NAB = nab.NabConfig()

app = typer.Typer(help="Evaluate detectors (SKAB, NAB) and energy gap filling on public data.", no_args_is_help=True)


def _params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--param takes KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


@app.command("skab")
def skab_command(
    path: Annotated[Path, typer.Argument(help="SKAB folder (with data/), its data/ folder, or one CSV.")],
    detector: Annotated[str, typer.Option(help="Registered multivariate detector key.")] = _SKAB.detector,
    window: Annotated[int, typer.Option(help="Trailing mean window in rows (1 = raw values).")] = _SKAB.window,
    quantile: Annotated[
        float, typer.Option(help="Training-score quantile anchoring the limit.")
    ] = _SKAB.threshold_quantile,
    margin: Annotated[
        float, typer.Option(help="Limit distance from the median training score, in quantile units.")
    ] = _SKAB.margin,
    drift_tau: Annotated[
        float | None, typer.Option(help="Protected drift-following time constant in rows.")
    ] = _SKAB.drift_tau,
    param: Annotated[list[str], typer.Option(help="Extra detector parameter KEY=VALUE (JSON value).")] = [],  # noqa: B006
    anomaly_free: Annotated[bool, typer.Option(help="Also measure FAR on the anomaly-free recording.")] = True,
) -> None:
    """SKAB outlier detection: F1, FAR, MAR on the test part of every labelled file."""
    config = skab.SkabConfig(
        detector=detector,
        window=window,
        threshold_quantile=quantile,
        margin=margin,
        drift_tau=drift_tau,
        params=_params(param),
    )
    started = time.monotonic()
    result = skab.run(path, config, check_free=anomaly_free)
    elapsed = time.monotonic() - started
    total = result.total
    typer.echo(
        f"SKAB outlier detection: {len(result.per_file)} labelled files under {path}; first "
        f"{config.train_rows} rows of each train, the rest is test (SKAB README @ b2c0d46)."
    )
    drift = "static" if config.drift_tau is None else f"drift-following, tau {config.drift_tau:g} rows"
    upper = "max" if config.threshold_quantile == 1.0 else f"{config.threshold_quantile:g} quantile"
    typer.echo(
        f"config: {config.detector} on {config.window}-row trailing means, limit = median + "
        f"{config.margin:g} x ({upper} - median) of the training scores, {drift}"
    )
    widths = [28, 6, 7, 7]
    typer.echo(_row(["algorithm", "F1", "FAR %", "MAR %"], widths))
    typer.echo(
        _row(
            [f"ehs-monitor ({config.detector})", f"{total.f1:.2f}", f"{total.far:.2f}", f"{total.mar:.2f}"],
            widths,
        )
    )
    board = skab.load_leaderboard(path.resolve())
    for entry in board:
        typer.echo(
            _row(
                [
                    entry["algorithm"],
                    f"{entry['F1']:.2f}",
                    f"{entry['FAR_pct']:.2f}",
                    f"{entry['MAR_pct']:.2f}",
                ],
                widths,
            )
        )
    if board:
        typer.echo("published figures are over SKAB's 34 labelled files; ours are over the files present.")
    if result.anomaly_free_far is not None:
        typer.echo(f"FAR on the anomaly-free recording (no labels used): {result.anomaly_free_far:.2f} %")
    typer.echo(
        f"targets: F1 > 0.78 and FAR <= 15 %: "
        f"{'met' if total.f1 > 0.78 and total.far <= 15.0 else 'not met'}; {elapsed:.0f} s"
    )
    summary = {
        "f1": round(total.f1, 4),
        "far": round(total.far, 2),
        "mar": round(total.mar, 2),
        "tp": total.tp,
        "tn": total.tn,
        "fp": total.fp,
        "fn": total.fn,
        "files": len(result.per_file),
        "anomaly_free_far": None if result.anomaly_free_far is None else round(result.anomaly_free_far, 2),
        "detector": config.detector,
        "window": config.window,
        "margin": config.margin,
        "threshold_quantile": config.threshold_quantile,
        "drift_tau": config.drift_tau,
        "params": config.params,
        "seconds": round(elapsed, 1),
    }
    typer.echo(json.dumps(summary))


@app.command("nab")
def nab_command(
    path: Annotated[Path, typer.Argument(help="NAB folder (with data/, labels/, config/).")],
    detector: Annotated[str, typer.Option(help="Registered univariate streaming detector key.")] = _NAB.detector,
    hold: Annotated[int, typer.Option(help="Rows an excursion must beat to be reported again.")] = _NAB.hold,
    param: Annotated[list[str], typer.Option(help="Detector parameter KEY=VALUE (JSON value).")] = [],  # noqa: B006
    file: Annotated[list[str], typer.Option(help="Only these files (e.g. realKnownCause/nyc_taxi.csv).")] = [],  # noqa: B006
) -> None:
    """NAB: normalised standard, reward-low-FP and reward-low-FN scores over the corpus."""
    config = nab.NabConfig(detector=detector, params=_params(param), hold=hold)
    started = time.monotonic()
    result = nab.run(path, config, names=file or None)
    elapsed = time.monotonic() - started
    typer.echo(
        f"NAB v1.1: {result.files} files, {result.windows} windows under {path}; normalised scores "
        f"(null 0, perfect 100), one threshold per profile for the whole corpus (NAB's optimiser)."
    )
    params = f" {json.dumps(config.params)}" if config.params else ""
    typer.echo(
        f"config: {config.detector}{params}, learning in each file's probationary period, "
        f"one report per excursion (hold {config.hold} rows)"
    )
    widths = [34, 9, 8, 8]
    typer.echo(_row(["detector", "standard", "low FP", "low FN"], widths))
    keys = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
    typer.echo(
        _row(
            [f"ehs-monitor ({config.detector})", *(f"{result.optimised[k].normalised:.2f}" for k in keys)],
            widths,
        )
    )
    typer.echo(_row(["  same, fixed threshold 1.0", *(f"{result.fixed[k].normalised:.2f}" for k in keys)], widths))
    published = nab.load_published(path)
    for name, scores in sorted(published.items(), key=lambda kv: -kv[1]["standard"]):
        typer.echo(
            _row(
                [name, f"{scores['standard']:.2f}", f"{scores['low_fp']:.2f}", f"{scores['low_fn']:.2f}"],
                widths,
            )
        )
    if result.files != 58:
        typer.echo("note: a subset of the corpus; published figures are over all 58 files.")
    standard = result.optimised["standard"].normalised
    typer.echo(
        f"targets: standard > 70 (numenta HTM): {'met' if standard > 70 else 'not met'}; "
        f"> 74.85 (ARTime): {'met' if standard > 74.85 else 'not met'}; {elapsed:.0f} s"
    )
    summary = {
        **{nab.PROFILE_KEYS[k]: round(result.optimised[k].normalised, 2) for k in keys},
        "fixed_threshold": {nab.PROFILE_KEYS[k]: round(result.fixed[k].normalised, 2) for k in keys},
        "thresholds": {nab.PROFILE_KEYS[k]: round(nab.unsquash(result.optimised[k].threshold), 4) for k in keys},
        "raw": {nab.PROFILE_KEYS[k]: round(result.optimised[k].raw, 3) for k in keys},
        "detections": {nab.PROFILE_KEYS[k]: {"tp": result.optimised[k].tp, "fp": result.optimised[k].fp} for k in keys},
        "files": result.files,
        "windows": result.windows,
        "detector": config.detector,
        "params": config.params,
        "hold": config.hold,
        "seconds": round(elapsed, 1),
    }
    typer.echo(json.dumps(summary))


@app.command("energy-gapfill")
def energy_gapfill_command(
    file: Annotated[Path, typer.Argument(help="15-minute kWh series in the steel-industry CSV format.")],
    test_from: Annotated[
        str, typer.Option(help="First day of the test period (gaps are placed from here on).")
    ] = gapfill_eval.DEFAULT_TEST_FROM,
    seed: Annotated[int, typer.Option(help="Seed of the gap positions.")] = 0,
    gaps: Annotated[int, typer.Option(help="Gaps per length (1 h, 4 h, 24 h).", min=1)] = 200,
) -> None:
    """Gap filling vs linear distribution: RMSE per 15-minute interval over seeded random gaps."""
    started = time.monotonic()
    try:
        series = gapfill_eval.read_steel_csv(file)
        result = gapfill_eval.evaluate(series, test_from=test_from, seed=seed, gaps_per_length=gaps)
    except ValueError as exc:
        typer.echo(f"error: {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    elapsed = time.monotonic() - started
    typer.echo(
        f"energy gap filling: {len(series)} intervals {series.index[0]:%Y-%m-%d} .. {series.index[-1]:%Y-%m-%d}; "
        f"{gaps} gaps each of {', '.join(gapfill_eval.GAP_LENGTHS)} from {result.test_from} (seed {seed}); "
        f"each filled with everything before and after it known"
    )
    widths = [8, 12, 12, 8]
    typer.echo(_row(["gap", "RMSE linear", "RMSE method", "ratio"], widths))
    for name, score in [*result.by_gap.items(), ("overall", result.overall)]:
        typer.echo(_row([name, f"{score.rmse_linear:.3f}", f"{score.rmse_method:.3f}", f"{score.ratio:.3f}"], widths))
    typer.echo(
        f"energy conserved in every gap: {'yes' if result.energy_conserved else 'NO'} (largest error "
        f"{result.max_conservation_error:.2e} kWh); target ratio <= 0.6: "
        f"{'met' if result.overall.ratio <= 0.6 else 'not met'}; {elapsed:.0f} s"
    )
    typer.echo(json.dumps({**result.summary(), "seconds": round(elapsed, 1)}))
