"""The product carbon footprint from the plant's process graph (pure): cradle-to-gate kgCO2e per cell, per pack
and per kWh of rated capacity (the declared unit of (EU) 2023/1542 Art. 7, standards.md 5.4), by process and by
material, with hotspots ranked.

The routing is a directed graph: each process turns inputs (good units of upstream processes, purchased materials)
into good units of its own output with a yield. For a period or batch window, process ``p`` emitted ``E_p`` kg and
made ``G_p`` good units. The burden of one good unit of ``p`` is

    b_p = E_p / G_p  +  ( Σ_u q_up · b_u  +  Σ_m q_mp · f_m ) / y_p

where ``q_up`` is the good units of ``u`` one started unit of ``p`` consumes, ``q_mp`` the material per started
unit, ``f_m`` its cradle-to-gate factor (kgCO2e per unit, entered by the user) and ``y_p`` the yield of ``p``
(good / started). Energy spent on scrap stays in ``E_p`` and so lands on the good output; scrap at ``p`` makes
every upstream unit and material count ``1 / y_p`` times. Burdens are kept as vectors over (process, material)
so that the breakdown and hotspots come out of the same pass, in topological order (stdlib ``graphlib``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

Code = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)


class Material(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    quantity: float = Field(gt=0, le=1e9, description="units of material per started unit of the process")
    unit: str = Field(min_length=1, max_length=20)
    factor_kg_per_unit: float = Field(ge=0, le=1e9, description="cradle-to-gate kgCO2e per material unit")
    source: str = Field(default="user", max_length=200)  # supplier declaration, database, default


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    process: str = Code
    quantity: float = Field(gt=0, le=1e9, description="good units of the upstream process per started unit")


class Process(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    area: str | None = Field(default=None, max_length=64)  # the area whose emissions are this process's
    area_share: float = Field(default=1.0, gt=0, le=1)  # when several processes share one area
    yield_: float = Field(alias="yield", gt=0, le=1)
    unit: str = Field(min_length=1, max_length=20)
    inputs: list[Input] = []
    materials: list[Material] = []


class Product(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    cell_process: str = Code
    pack_process: str = Code
    cell_kwh: float = Field(gt=0, le=1e4)
    pack_kwh: float = Field(gt=0, le=1e6)


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    processes: list[Process] = Field(min_length=1, max_length=500)
    product: Product

    @model_validator(mode="after")
    def _graph(self) -> Routing:
        codes = [p.code for p in self.processes]
        if len(set(codes)) != len(codes):
            raise ValueError("process codes must be unique")
        known = set(codes)
        for p in self.processes:
            for i in p.inputs:
                if i.process not in known:
                    raise ValueError(f"process {p.code}: input {i.process!r} is not a process")
        for attr in ("cell_process", "pack_process"):
            if getattr(self.product, attr) not in known:
                raise ValueError(f"product {attr} {getattr(self.product, attr)!r} is not a process")
        try:
            self.order()
        except CycleError as exc:
            raise ValueError(f"the routing has a cycle: {' -> '.join(exc.args[1])}") from None
        return self

    def order(self) -> list[str]:
        ts = TopologicalSorter({p.code: [i.process for i in p.inputs] for p in self.processes})
        return list(ts.static_order())

    def by_code(self) -> dict[str, Process]:
        return {p.code: p for p in self.processes}


class FootprintError(ValueError):
    """A footprint that cannot be computed (a process emitted but made nothing)."""


@dataclass(frozen=True)
class Footprint:
    product: str
    per_cell: dict[str, float]  # "process:coating" / "material:nmp" -> kgCO2e per cell
    per_pack: dict[str, float]
    pack_kwh: float
    cell_kwh: float

    @property
    def kg_per_cell(self) -> float:
        return sum(self.per_cell.values())

    @property
    def kg_per_pack(self) -> float:
        return sum(self.per_pack.values())

    @property
    def kg_per_kwh(self) -> float:
        return self.kg_per_pack / self.pack_kwh

    def hotspots(self, n: int = 10) -> list[dict[str, Any]]:
        total = self.kg_per_pack or 1.0
        ranked = sorted(self.per_pack.items(), key=lambda kv: -kv[1])[:n]
        return [
            {"item": k, "kind": k.split(":", 1)[0], "code": k.split(":", 1)[1], "kg_per_pack": v, "share": v / total}
            for k, v in ranked
        ]

    def as_dict(self) -> dict[str, Any]:
        stages = {
            "raw_material_acquisition": sum(v for k, v in self.per_pack.items() if k.startswith("material:")),
            "main_product_production": sum(v for k, v in self.per_pack.items() if k.startswith("process:")),
        }
        return {
            "product": self.product,
            "kg_per_cell": self.kg_per_cell,
            "kg_per_pack": self.kg_per_pack,
            "kg_per_kwh": self.kg_per_kwh,
            "cell_kwh": self.cell_kwh,
            "pack_kwh": self.pack_kwh,
            "kg_per_cell_kwh": self.kg_per_cell / self.cell_kwh,
            "by_item_per_pack": dict(sorted(self.per_pack.items())),
            "by_item_per_cell": dict(sorted(self.per_cell.items())),
            "life_cycle_stages_per_pack": stages,
            "hotspots": self.hotspots(),
        }


def process_emissions(routing: Routing, area_kg: Mapping[str, float]) -> dict[str, float]:
    """Emissions per process from emissions per area (``area_share`` splits an area among its processes)."""
    return {p.code: area_kg.get(p.area, 0.0) * p.area_share if p.area else 0.0 for p in routing.processes}


def burdens(
    routing: Routing, emissions_kg: Mapping[str, float], good_output: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """Burden vectors (kgCO2e per good unit, by ``process:``/``material:`` item) of every process."""
    procs = routing.by_code()
    out: dict[str, dict[str, float]] = {}
    for code in routing.order():
        p = procs[code]
        vec: dict[str, float] = defaultdict(float)
        e, g = emissions_kg.get(code, 0.0), good_output.get(code, 0.0)
        if e > 0 and g <= 0:
            raise FootprintError(f"process {code} emitted {e:.3f} kg but made no good output")
        if g > 0:
            vec[f"process:{code}"] += e / g
        for i in p.inputs:
            for item, kg in out[i.process].items():
                vec[item] += kg * i.quantity / p.yield_
        for m in p.materials:
            vec[f"material:{m.code}"] += m.quantity * m.factor_kg_per_unit / p.yield_
        out[code] = dict(vec)
    return out


def footprint(routing: Routing, emissions_kg: Mapping[str, float], good_output: Mapping[str, float]) -> Footprint:
    """The footprint of the routing's product for one period or batch window."""
    b = burdens(routing, emissions_kg, good_output)
    prod = routing.product
    return Footprint(prod.name, b[prod.cell_process], b[prod.pack_process], prod.pack_kwh, prod.cell_kwh)


def demo_routing() -> Routing:
    """The demo plant's LFP routing (cathode and anode branches → cell assembly → formation → PACK) with typical
    yields; material factors are placeholders a plant replaces with its suppliers' cradle-to-gate figures."""

    def proc(code, name, area, y, unit, inputs=(), materials=()):
        return {
            "code": code,
            "name": name,
            "area": area,
            "yield": y,
            "unit": unit,
            "inputs": [{"process": c, "quantity": q} for c, q in inputs],
            "materials": list(materials),
        }

    def mat(code, name, qty, unit, f):
        return {
            "code": code,
            "name": name,
            "quantity": qty,
            "unit": unit,
            "factor_kg_per_unit": f,
            "source": "demo default",
        }

    spec = {
        "processes": [
            proc(
                "cathode-coating",
                "正极涂布 cathode coating",
                "coating",
                0.97,
                "m",
                materials=[
                    mat("lfp", "磷酸铁锂 LFP", 0.12, "kg", 9.0),
                    mat("al-foil", "铝箔 Al foil", 0.02, "kg", 18.0),
                    mat("nmp", "NMP", 0.01, "kg", 6.0),
                ],
            ),
            proc(
                "anode-coating",
                "负极涂布 anode coating",
                "coating",
                0.97,
                "m",
                materials=[
                    mat("graphite", "石墨 graphite", 0.06, "kg", 5.0),
                    mat("cu-foil", "铜箔 Cu foil", 0.04, "kg", 9.0),
                ],
            ),
            proc("cathode-rolling", "正极辊压", "rolling", 0.99, "m", [("cathode-coating", 1.0)]),
            proc("anode-rolling", "负极辊压", "rolling", 0.99, "m", [("anode-coating", 1.0)]),
            proc("cathode-slitting", "正极分切", "slitting", 0.98, "m", [("cathode-rolling", 1.0)]),
            proc("anode-slitting", "负极分切", "slitting", 0.98, "m", [("anode-rolling", 1.0)]),
            proc(
                "stacking",
                "叠片/卷绕 stacking",
                "stacking",
                0.985,
                "cell",
                [("cathode-slitting", 5.0), ("anode-slitting", 5.2)],
                [mat("separator", "隔膜 separator", 0.8, "m2", 1.2)],
            ),
            proc(
                "welding",
                "焊接 welding",
                "welding",
                0.995,
                "cell",
                [("stacking", 1.0)],
                [mat("case", "铝壳 Al case", 0.3, "kg", 16.0)],
            ),
            proc(
                "injection",
                "注液 injection",
                "injection",
                0.995,
                "cell",
                [("welding", 1.0)],
                [mat("electrolyte", "电解液 electrolyte", 0.4, "kg", 7.0)],
            ),
            proc("formation", "化成 formation", "formation", 0.98, "cell", [("injection", 1.0)]),
            proc("grading", "分容 grading", "formation", 0.985, "cell", [("formation", 1.0)]),
            proc("aging", "老化 aging", "aging", 0.995, "cell", [("grading", 1.0)]),
            proc(
                "pack",
                "PACK 组装",
                "pack",
                0.998,
                "pack",
                [("aging", 16.0)],
                [mat("pack-enclosure", "箱体与BMS enclosure and BMS", 1.0, "set", 120.0)],
            ),
        ],
        "product": {
            "name": "LFP 280Ah 16S pack",
            "cell_process": "aging",
            "pack_process": "pack",
            "cell_kwh": 0.896,
            "pack_kwh": 14.336,
        },
    }
    spec["processes"][0]["area_share"] = 0.6  # the coating area serves both electrodes
    spec["processes"][1]["area_share"] = 0.4
    for i in (2, 3):
        spec["processes"][i]["area_share"] = 0.5
    for i in (4, 5):
        spec["processes"][i]["area_share"] = 0.5
    spec["processes"][9]["area_share"] = 0.7  # formation and grading share the formation area
    spec["processes"][10]["area_share"] = 0.3
    return Routing.model_validate(spec)
