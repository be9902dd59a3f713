"""Exceptions shared across packages: the store being down, and the one hierarchy of domain refusals.

A domain refuses a request with a ``DomainError``; its ``status`` is what the API answers (``api.errors`` has
one handler for the whole hierarchy): 404 ``NotFound`` (or not in the caller's scope), 403 ``Forbidden``
(not allowed for the role), 409 ``Conflict`` (not allowed in the object's current state, or it changed since
the caller saw it: ``Stale``), and 422 for anything else the domain rules refuse (``field`` names the input
when the domain knows it). ``extra`` holds more members of the JSON answer (a conflict's ``code``).
"""

from __future__ import annotations

from typing import Any


class StoreUnavailable(RuntimeError):
    """The database cannot be reached right now; the caller should keep the data and retry later."""


class DomainError(Exception):
    """A request a domain refuses (422 unless a subclass says otherwise)."""

    status = 422

    def __init__(self, message: str = "", *, field: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.extra = dict(extra or {})


class NotFound(DomainError):
    """No such object, or none the caller may see."""

    status = 404


class Forbidden(DomainError):
    """The caller's role does not allow this."""

    status = 403


class Conflict(DomainError):
    """The object's state does not allow this now."""

    status = 409


class Stale(Conflict):
    """The object changed since the version the caller saw (optimistic concurrency); nothing was done."""

    def __init__(self, message: str, *, seen: int, current: int, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message, extra=extra)
        self.seen, self.current = seen, current
