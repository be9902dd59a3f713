"""Settings of the hazardous-waste evaluation (prefix ``EHS_HAZWASTE_``)."""

from __future__ import annotations

from datetime import date

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hazwaste.workdays import WorkCalendar


class HazwasteSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EHS_HAZWASTE_", env_file=".env", extra="ignore")

    #: How often the alerts worker evaluates storage time, capacity, manifests, declarations and the stage model
    #: (seconds; 0 turns it off there, ``ehs hazwaste evaluate`` still runs it by hand).
    evaluate_s: float = Field(300.0, ge=0)
    #: Run the stage model (missing and late steps) in the evaluation.
    dwell: bool = True
    #: Public holidays and adjusted working weekends (调休) for the manifests' working-day deadlines, e.g.
    #: EHS_HAZWASTE_HOLIDAYS='["2026-10-01","2026-10-02"]'.
    holidays: list[date] = Field(default_factory=list)
    extra_workdays: list[date] = Field(default_factory=list)

    def calendar(self) -> WorkCalendar:
        return WorkCalendar.of(self.holidays, self.extra_workdays)
