"""Energy baselines (ISO 50006): the re-baselining record of a meter or area, and fitting a new baseline from
periods of energy and relevant variables. A fit that fails ASHRAE Guideline 14 is refused (422) with every reason
in the message; an accepted one supersedes the current baseline and is audited with its reason."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from api.deps import Conn, require
from api.errors import Invalid, NotFound
from api.policy import Permission, Principal
from core.scope import site_by_code
from energy import baseline_store
from energy.baseline import BaselineRefused, fit_baseline
from energy.baseline_store import StoredBaseline

router = APIRouter(prefix="/api/v1/energy/baselines", tags=["energy"])
Reader = Annotated[Principal, require(Permission.ENERGY_READ)]
Manager = Annotated[Principal, require(Permission.ENERGY_MANAGE)]
CODE = r"^[a-z0-9][a-z0-9_-]*$"
SiteCode = Annotated[str, Query(pattern=CODE, max_length=64, description="site code")]
ItemCode = Annotated[str | None, Query(pattern=CODE, max_length=64)]
VariableName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
Number = Annotated[float, Field(allow_inf_nan=False, ge=-1e15, le=1e15)]


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime = Field(description="start of the period (month, day or hour)")
    energy: Annotated[float, Field(allow_inf_nan=False, ge=0, le=1e15, description="energy in the period")]
    variables: dict[VariableName, Number] = Field(max_length=10, description="relevant variables, e.g. production")


class BaselineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: Annotated[str, Field(pattern=CODE, max_length=64)]
    meter: Annotated[str | None, Field(pattern=CODE, max_length=64)] = None
    area: Annotated[str | None, Field(pattern=CODE, max_length=64)] = None
    granularity: Literal["monthly", "daily", "hourly"]
    reason: Annotated[str, Field(min_length=1, max_length=500, description="why (re-)baseline: 重新建立基线的原因")]
    periods: list[Period] = Field(min_length=1, max_length=20000)

    @model_validator(mode="after")
    def _one_target_same_variables(self) -> BaselineCreate:
        if (self.meter is None) == (self.area is None):
            raise ValueError("name exactly one of meter or area")
        names = set(self.periods[0].variables)
        for i, p in enumerate(self.periods):
            if set(p.variables) != names:
                raise ValueError(f"periods[{i}] has variables {sorted(p.variables)}, periods[0] {sorted(names)}")
        if len({p.start for p in self.periods}) != len(self.periods):
            raise ValueError("two periods start at the same time")
        return self


def _site(conn, principal: Principal, code: str) -> dict[str, Any]:
    return site_by_code(conn, code, site_ids=principal.scope.site_ids)


def _read(b: StoredBaseline) -> dict[str, Any]:
    return {
        "id": b.id,
        "site": b.site,
        "meter": b.meter,
        "area": b.area,
        "current": b.superseded_at is None,
        "reason": b.reason,
        "created_by": b.created_by,
        "created_at": b.created_at,
        "superseded_at": b.superseded_at,
        "superseded_by": b.superseded_by,
        "model": b.model.to_dict(),
    }


@router.get("")
def list_baselines(
    principal: Reader, conn: Conn, site: SiteCode, meter: ItemCode = None, area: ItemCode = None
) -> dict[str, Any]:
    """The baselines of a meter or an area, newest first (the current one has ``current: true``)."""
    _site(conn, principal, site)
    if (meter is None) == (area is None):
        raise Invalid("name exactly one of meter or area", field="meter")
    try:
        history = baseline_store.baseline_history(conn=conn, site=site, meter=meter, area=area)
    except baseline_store.NotFound as exc:
        raise NotFound(str(exc)) from None
    return {"items": [_read(b) for b in history]}


@router.post("", status_code=201)
def create_baseline(body: BaselineCreate, principal: Manager, conn: Conn) -> dict[str, Any]:
    """Fit energy on the periods' relevant variables; refused (422, every reason with its figure) unless ASHRAE
    Guideline 14 accepts it (monthly: |NMBE| ≤ 5 %, CV(RMSE) ≤ 15 %; daily and hourly: 10 % and 30 %)."""
    _site(conn, principal, body.site)
    index = pd.DatetimeIndex([p.start for p in body.periods])
    energy = pd.Series([p.energy for p in body.periods], index=index)
    names = sorted(body.periods[0].variables)
    variables = pd.DataFrame([p.variables for p in body.periods], index=index, columns=names)
    try:
        model = fit_baseline(energy.sort_index(), variables.sort_index(), granularity=body.granularity)
    except BaselineRefused as exc:
        raise Invalid(str(exc), field="periods") from None
    try:
        new_id = baseline_store.set_baseline(
            conn=conn,
            site=body.site,
            meter=body.meter,
            area=body.area,
            model=model,
            reason=body.reason,
            actor=principal.actor,
        )
    except baseline_store.NotFound as exc:
        raise NotFound(str(exc)) from None
    history = baseline_store.baseline_history(conn=conn, site=body.site, meter=body.meter, area=body.area)
    return _read(next(b for b in history if b.id == new_id))
