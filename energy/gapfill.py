"""Distribute the energy of a counter gap over its 15-minute intervals.

Placeholder of the energy-core branch: linear distribution (equal energy per slot). The energy-analytics branch
(h13b) owns the final file with profile-based filling; the signature and the guarantees below are the contract.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def distribute(
    delta: float,
    slots: pd.DatetimeIndex,
    history: pd.Series | None = None,
    siblings: Mapping[str, pd.Series] | None = None,
) -> pd.Series:
    """Energy per slot (index == ``slots``), every value >= 0, summing to ``delta`` (counter units).

    ``history`` and ``siblings`` are accepted for the interface and ignored by this linear placeholder.
    """
    if delta < 0:
        raise ValueError(f"a gap's counter delta cannot be negative (got {delta})")
    n = len(slots)
    if n == 0:
        raise ValueError("a gap needs at least one slot")
    values = np.full(n, delta / n)
    values[-1] = max(0.0, delta - float(values[:-1].sum()))  # the last slot absorbs the rounding residual
    return pd.Series(values, index=slots)
