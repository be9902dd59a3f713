"""The one detector interface for rules and ML models (STYLE.md B4).

Score convention: a detector returns a unitless score where **higher is worse and 1.0 is the configured
limit**, or ``None`` when it cannot judge yet (warming up, feature missing). Deciding what a score means is
the trigger's job (``detectors.trigger``), not the detector's.

What the engine and the conformance suite may expect of a detector beyond that is declared here, as class
attributes (the idea of scikit-learn's estimator tags and river's ``_tags``), never guessed from attributes a
subclass happens to have.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

Obs = Mapping[str, float | None]


class Detector(abc.ABC):
    """Score one subject's stream of observations; higher is worse, 1.0 is the limit.

    Conventions borrowed from scikit-learn and river: the constructor only stores its keyword parameters
    unchanged, learned state ends with ``_``, and the engine always calls ``score_one`` before
    ``learn_one`` for the same observation.
    """

    key: ClassVar[str]  # stable id stored with findings; never rename, bump ``version`` instead
    version: ClassVar[int] = 1

    # -- capabilities (read by the engine and the conformance suite) ----------------------------------------

    #: Fitted on a batch of history (``fit``) before it scores; untrained, it scores nothing.
    needs_fit: ClassVar[bool] = False
    #: The engine teaches it recent readings at start (``Engine.warm_up``): baselines, runs, spreads.
    warm: ClassVar[bool] = False
    #: The engine stops teaching it while its subject is not normal, so that a slow fault is not learnt as
    #: the new normal (river's ``protect_anomaly_detector``).
    protect: ClassVar[bool] = False
    #: Scored on the engine's clock at every tick as well: a missing input means that nothing arrived, and
    #: silence is what it judges (a score, not ``None``).
    ticks: ClassVar[bool] = False
    #: Judges its very first observation (a limit, a count); otherwise ``None`` until it has learnt enough.
    immediate: ClassVar[bool] = False
    #: Judges with some of its inputs missing (a vote counts the leaves it knows); otherwise any missing or
    #: non-finite input gives ``None``. With none of its inputs it gives ``None`` unless it ``ticks``.
    partial: ClassVar[bool] = False

    # -- scoring --------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def inputs(self) -> tuple[str, ...]:
        """The observation keys this detector reads (point keys, features, or the engine's own keys)."""

    @abc.abstractmethod
    def score_one(self, x: Obs, ts: datetime) -> float | None:
        """Return the score of this observation, or None if the detector cannot judge it."""

    def learn_one(self, x: Obs, ts: datetime) -> None:  # noqa: B027
        """Update internal state with this observation. Stateless rules do nothing."""

    def prepare(self) -> None:  # noqa: B027
        """Load or warm learned state before the first score (the engine calls this once)."""

    def explain(self, x: Obs, top: int = 3) -> list[tuple[str, float]]:
        """Return the inputs that contributed to this observation's score, largest first.

        The default suits a detector of one input, which contributes wholly when present; detectors of
        several inputs override it.
        """
        return [(name, 1.0) for name in self.inputs() if finite(x.get(name)) is not None][:top]

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters (stored unchanged, scikit-learn style)."""
        return {
            name: value for name, value in vars(self).items() if not name.startswith("_") and not name.endswith("_")
        }

    # -- examples for the conformance suite (tests/contract/test_detector_conformance.py) -------------------

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        """Yield constructor kwargs used by the conformance tests."""
        yield {}

    @classmethod
    def example_normal(cls, params: dict[str, Any], rows: Sequence[Obs]) -> list[Obs]:
        """Turn the suite's normal gauge rows (one value per input) into normal observations of this detector."""
        return list(rows)

    @classmethod
    def example_anomaly(cls, params: dict[str, Any], typical: Obs) -> list[Obs]:
        """Observations that follow ``typical`` one a second; the last must score above ``typical``.

        The default is a spike of the first input, 50 units above the typical value.
        """
        first = cls(**params).inputs()[0]
        return [{**typical, first: (typical[first] or 0.0) + 50.0}]


def finite(value: float | None) -> float | None:
    """``value`` if it is a finite number, else None (NaN and infinities are no measurement)."""
    return value if value is not None and math.isfinite(value) else None
