"""Key -> class for every detector, rules and models alike, so that configuration, artifacts, the console and the
conformance tests find them in one place."""

from __future__ import annotations

from detectors.adapters import MODEL_DETECTORS
from detectors.base import Detector
from detectors.rules import RULE_DETECTORS
from detectors.univariate import NeighbourNovelty

_CLASSES: tuple[type[Detector], ...] = (*RULE_DETECTORS, *MODEL_DETECTORS, NeighbourNovelty)


def all() -> dict[str, type[Detector]]:  # noqa: A001 - the registry's public verb (STYLE.md B4)
    """Return every registered detector class by key."""
    registry: dict[str, type[Detector]] = {}
    for cls in _CLASSES:
        if cls.key in registry:
            raise RuntimeError(f"detector key {cls.key!r} registered twice")
        registry[cls.key] = cls
    return registry


def get(key: str) -> type[Detector]:
    """Return the class registered under ``key``."""
    try:
        return all()[key]
    except KeyError:
        raise KeyError(f"unknown detector {key!r}; known: {sorted(all())}") from None
