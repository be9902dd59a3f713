"""Rectification advice by pollutant and cause class, kept as data (``compliance/rectification.yaml``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

ADVICE_FILE = Path(__file__).parent / "rectification.yaml"


class Text(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    zh: str
    en: str

    def of(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


class Advice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    flags: dict[str, Text]
    exceedance: dict[str, Text]

    def for_flag(self, flag: str | None, lang: str) -> str:
        """Advice for an invalid-data period of an HJ 212 flag (``None``: missing data)."""
        return (self.flags.get(flag or "missing") or self.flags["missing"]).of(lang)

    def for_exceedance(self, pollutant: str, lang: str) -> str:
        return (self.exceedance.get(pollutant) or self.exceedance["default"]).of(lang)


@cache
def load_advice(path: Path = ADVICE_FILE) -> Advice:
    return Advice.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
