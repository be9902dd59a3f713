"""``ehs bench`` says what is missing: a benchmark that does not exist, or a module a benchmark needs."""

from __future__ import annotations

import sys
import types

import pytest
import typer

from cli import bench


def test_missing_dependency_is_named_not_taken_for_a_missing_benchmark(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    broken = types.ModuleType("benchmarks._needs_missing")

    def import_module(name: str):
        raise ModuleNotFoundError("No module named 'httpx_gone'", name="httpx_gone")

    monkeypatch.setitem(bench.BENCHMARKS, "probe", broken.__name__)
    monkeypatch.setattr(bench.importlib, "import_module", import_module)
    with pytest.raises(typer.Exit):
        bench._run("probe", 1.0, [])
    err = capsys.readouterr().err
    assert "needs the Python module 'httpx_gone'" in err and "not built yet" not in err


def test_unknown_module_is_not_built(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(bench.BENCHMARKS, "probe", "benchmarks.does_not_exist_here")
    monkeypatch.delitem(sys.modules, "benchmarks.does_not_exist_here", raising=False)
    with pytest.raises(typer.Exit):
        bench._run("probe", 1.0, [])
    assert "is not built yet" in capsys.readouterr().err


def test_every_benchmark_imports_in_the_normal_install() -> None:
    import importlib

    for target in bench.BENCHMARKS.values():
        importlib.import_module(target)
