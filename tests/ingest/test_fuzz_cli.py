"""``ehs fuzz``: one round at least, the fuzz properties run with the ``long`` profile, a JSON summary last."""

from __future__ import annotations

import orjson
from typer.testing import CliRunner

from cli.main import app


def test_ehs_fuzz_runs_a_round_and_prints_its_summary() -> None:
    result = CliRunner().invoke(
        app, ["fuzz", "--minutes", "0", "--scale", "0.05", "--only", "storable_text or parse_time"]
    )
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output.strip().splitlines()[-1]) | {"minutes": 0} == {
        "rounds": 1,
        "faults": 0,
        "minutes": 0,
    }
