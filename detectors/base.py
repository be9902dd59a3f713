"""The one detector interface for rules and ML models (STYLE.md B4).

Score convention: a detector returns a unitless score where **higher is worse and 1.0 is the configured
limit**, or ``None`` when it cannot judge yet (warming up, feature missing). Deciding what a score means is
the trigger's job (``detectors.trigger``), not the detector's.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar


class Detector(abc.ABC):
    """Score one subject's stream of observations; higher is worse, 1.0 is the limit.

    Conventions borrowed from scikit-learn and river: the constructor only stores its keyword parameters
    unchanged, learned state ends with ``_``, and the engine always calls ``score_one`` before
    ``learn_one`` for the same observation.
    """

    key: ClassVar[str]          # stable id stored with findings; never rename, bump ``version`` instead
    version: ClassVar[int] = 1

    @abc.abstractmethod
    def score_one(self, x: Mapping[str, float | None], ts: datetime) -> float | None:
        """Return the score of this observation, or None if the detector cannot judge it."""

    def learn_one(self, x: Mapping[str, float | None], ts: datetime) -> None:  # noqa: B027
        """Update internal state with this observation. Stateless rules do nothing."""

    def prepare(self) -> None:  # noqa: B027
        """Load or warm learned state before the first score (the engine calls this once)."""

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters (stored unchanged, scikit-learn style)."""
        return {name: value for name, value in vars(self).items() if not name.startswith("_")
                and not name.endswith("_")}

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        """Yield constructor kwargs used by the conformance tests."""
        yield {}
