"""The runtime file of a running ``ehs up``: where its database, broker and API are.

Other commands (``ehs simulate incident``, ``ehs config apply``...) read it when nothing is configured, so a
second terminal reaches the embedded servers that ``ehs up`` started on free ports.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def _path(data_dir: Path) -> Path:
    return data_dir / "runtime.json"


def write_runtime(data_dir: Path, info: dict[str, Any]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = _path(data_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps({**info, "pid": os.getpid()}, indent=2))
    os.replace(tmp, _path(data_dir))


def read_runtime(data_dir: Path) -> dict[str, Any] | None:
    """The runtime info of a live ``ehs up`` using ``data_dir``, or None."""
    try:
        info = json.loads(_path(data_dir).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return info


def clear_runtime(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        _path(data_dir).unlink()
