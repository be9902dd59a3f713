"""Load a YAML file into a pydantic model; every error names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file that cannot be used; ``problems`` holds one line per error."""

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(problems))


class _LineLoader(yaml.SafeLoader):
    """A safe loader that also records the line of every mapping key and sequence item."""


def _construct_and_record(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _construct_and_record(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _construct_and_record(item, (*path, index), lines)


def read_yaml(path: str | Path) -> tuple[Any, dict[tuple, int]]:
    """Parse a YAML file; return the data and a map from key path to line number."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read: {exc.strerror}"]) from exc
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, [f"{where}: invalid YAML: {problem}"]) from exc
    lines: dict[tuple, int] = {}
    if node is not None:
        _construct_and_record(node, (), lines)
    return data, lines


def _line_for(loc: tuple, lines: dict[tuple, int]) -> int | None:
    """The line of the deepest part of ``loc`` that exists in the file."""
    for end in range(len(loc), -1, -1):
        if (line := lines.get(tuple(loc[:end]))) is not None:
            return line
    return None


def format_loc(loc: tuple) -> str:
    """Render a pydantic error location as a readable field path: ``sites[0].areas[2].code``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_model(path: str | Path, model: type[M], data: Any = None, lines: dict[tuple, int] | None = None) -> M:
    """Validate a YAML file against ``model``; raise ConfigError naming file, line and field."""
    if data is None:
        data, lines = read_yaml(path)
    lines = lines or {}
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            line = _line_for(loc, lines)
            where = f"{path}:{line}" if line else str(path)
            problems.append(f"{where}: {format_loc(loc)}: {err['msg']}")
        raise ConfigError(path, problems) from exc


def raise_problems(path: str | Path, lines: dict[tuple, int], problems: list[tuple[tuple, str]]) -> None:
    """Raise ConfigError for cross-reference problems found after validation, each at its own line."""
    if problems:
        raise ConfigError(
            path, [f"{path}:{_line_for(loc, lines) or '?'}: {format_loc(loc)}: {msg}" for loc, msg in problems]
        )
