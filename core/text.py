"""Make text from devices storable: PostgreSQL refuses NUL in ``text`` and ``jsonb``, and UTF-8 has no lone
surrogates. Every piece of device input that reaches SQL as text goes through ``storable`` (or, for JSON
documents, ``storable_json``) so that one message can never make the database refuse a whole batch.
"""

from __future__ import annotations

import math
from typing import Any

#: Default bound of a text column filled from device input (characters).
TEXT_LIMIT = 2000


def storable(value: object, limit: int = TEXT_LIMIT) -> str:
    """``value`` as text PostgreSQL accepts: NUL written ``\\x00``, lone surrogates ``\\udxxx``, at most
    ``limit`` characters (an ellipsis marks a cut)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > limit:  # escapes made it longer
        text = text[: max(limit - 1, 0)] + "…"
    return text


def storable_or_none(value: object, limit: int = TEXT_LIMIT) -> str | None:
    return None if value is None else storable(value, limit)


def storable_json(value: Any, limit: int = TEXT_LIMIT, _depth: int = 0) -> Any:
    """A JSON-like document whose strings (keys too) are storable in ``jsonb``; nesting beyond 64 levels is cut."""
    if isinstance(value, str):
        return storable(value, limit)
    if _depth > 64:
        return "…"
    if isinstance(value, dict):
        return {storable(k, 200): storable_json(v, limit, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v, limit, _depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float(value) if abs(value) < 2**1023 else None  # beyond what JSON encoders take as integers
    return value


def describe(exc: BaseException, limit: int = 500) -> str:
    """An exception as ``Class: message`` (bounded and storable) for dead letters and logs."""
    return storable(f"{type(exc).__name__}: {exc}", limit)
