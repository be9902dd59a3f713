"""The provider stand-ins of the notification tests live in ``simulator.providers`` (``ehs bench notify`` uses them
too, without a source checkout)."""

from __future__ import annotations

from simulator.providers import LIMITS, Providers, text_of

__all__ = ["LIMITS", "Providers", "text_of"]
