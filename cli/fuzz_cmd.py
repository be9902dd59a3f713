"""``ehs fuzz --minutes N``: run the fuzz properties of the suite (issue 11) again and again with random seeds and
larger budgets, until the time is up or a fault is found. The suite runs the same properties with a fixed seed
and a small budget (the ``ci`` profile of ``tests/fuzzing.py``); this is the longer run by hand. Needs the test
servers (``EHS_TEST_DATABASE_URL``, ``EHS_TEST_MQTT_URL``, or the embedded defaults), like ``ehs test``."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson
import typer

from cli.common import REPO_ROOT

#: The fuzz properties: decoders, spool files, the whole pipeline on PostgreSQL, acks, and through the broker.
FUZZ_TESTS = [
    "tests/ingest/test_fuzz_decoders.py",
    "tests/ingest/test_fuzz_spool.py",
    "tests/ingest/test_fuzz_pipeline.py",
    "tests/alerts/test_ack_isolation.py::test_fuzz_hostile_acks_never_stop_the_pass",
    "tests/ingest/test_hostile_e2e.py::test_fuzz_through_the_broker",
]


def fuzz(
    minutes: float = typer.Option(10.0, help="Keep fuzzing this long (at least one round)"),
    scale: float = typer.Option(10.0, help="Examples per round, as a multiple of the suite's budget"),
    only: str = typer.Option("", help="Only the properties matching this pytest -k expression"),
) -> None:
    """Fuzz ingest, the spool and the alerts worker with hostile input (random seeds) for N minutes."""
    env = {**os.environ, "EHS_FUZZ_PROFILE": "long", "EHS_FUZZ_SCALE": str(scale)}
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--hypothesis-show-statistics",
        *FUZZ_TESTS,
        *(["-k", only] if only else []),
    ]
    deadline = time.monotonic() + minutes * 60
    rounds = 0
    started = time.monotonic()
    while True:
        rounds += 1
        typer.echo(f"--- fuzz round {rounds} (scale {scale:g})")
        code = subprocess.call(args, cwd=REPO_ROOT, env=env)
        if code != 0:
            typer.echo(
                f"fuzzing found a fault in round {rounds}: the falsifying example is printed above "
                "(give it its own regression test)",
                err=True,
            )
            typer.echo(
                orjson.dumps(
                    {"rounds": rounds, "faults": 1, "minutes": round((time.monotonic() - started) / 60, 2)}
                ).decode()
            )
            raise typer.Exit(code)
        if time.monotonic() >= deadline:
            break
    typer.echo(
        orjson.dumps({"rounds": rounds, "faults": 0, "minutes": round((time.monotonic() - started) / 60, 2)}).decode()
    )
