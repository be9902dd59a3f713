"""Rate limits (``limits``, moving window, in memory): the authentication endpoints per client address, and the
expensive reads (verifying the whole audit chain, KPIs over long periods) per caller.

In memory means per API process: with several workers each counts on its own, which multiplies the limit by
the number of workers; account lockout (in the database) bounds password guessing regardless.
"""

from __future__ import annotations

import math
import time

from fastapi import HTTPException, Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class RateLimiter:
    def __init__(self, limit: str) -> None:
        self.item = parse(limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, bucket: str, key: str) -> float | None:
        """Count one request; return None if allowed, else the seconds until the next one is."""
        if self._limiter.hit(self.item, bucket, key):
            return None
        reset = self._limiter.get_window_stats(self.item, bucket, key).reset_time
        return max(1.0, reset - time.time())


def limit_auth(request: Request) -> None:
    """Dependency of the authentication routes: 429 with Retry-After beyond the configured rate."""
    address = request.client.host if request.client else "unknown"
    wait = request.app.state.auth_limiter.hit("auth", address)
    if wait is not None:
        raise HTTPException(
            429,
            "too many authentication requests from this address; try again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )


def limit_heavy(request: Request, caller: str, what: str) -> None:
    """Count one expensive request of ``caller`` (e.g. ``user:ann``); 429 with Retry-After beyond the rate."""
    wait = request.app.state.heavy_limiter.hit(what, caller)
    if wait is not None:
        raise HTTPException(
            429, f"too many {what} requests; try again later", headers={"Retry-After": str(math.ceil(wait))}
        )
