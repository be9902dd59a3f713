"""Exceptions shared across packages."""


class StoreUnavailable(RuntimeError):
    """The database cannot be reached right now; the caller should keep the data and retry later."""
