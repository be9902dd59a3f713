"""Schemas of the versioned safety configuration: the alarm configuration (alerts section) and the rule set."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class RevisionRead(BaseModel):
    """One stored revision (every change is a new one, kept whole, management of change)."""

    revision: int
    applied_at: datetime
    applied_by: str = Field(description="Database role that stored it")
    source: str = Field(description="Where it came from: a plant file, or api:<caller>")
    sha256: str


class AlarmConfigRead(RevisionRead):
    body: dict[str, Any] = Field(description="The alerts section: alarms, actuators, response_plans")


class RuleSetRead(RevisionRead):
    rules: list[dict[str, Any]]


class AppliedRead(BaseModel):
    revision: int
    changed: bool = Field(description="False when the body equals the current revision (nothing stored)")
