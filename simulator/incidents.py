"""Named incidents the simulator plays on demand: pure timelines of what each affected point reads.

An incident maps elapsed seconds to overrides ``{(device, key): value}`` (None leaves a point to its normal
signal) plus the devices it silences. Timings and temperatures of the thermal runaway follow the NREL/NASA
Battery Failure Databank (``../shared/data/nrel-battery-failure-databank``, 365 fractional thermal-runaway
calorimetry tests) and the gas sequence of standards.md section 7.2:

* heater-triggered (non-ISC) cells enter runaway at a median of 253.5 degC average cell temperature after a
  median 103.6 s of heating; the runaway event itself lasts a median 2.0 s (Average-Event-Length-s);
* electrolyte solvent vapour comes first, then H2 (2-8 min before smoke), then CO, then smoke.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

# NREL databank medians (Fractional_Calorimetry_Data, Trigger-Mechanism = "Heater (Non-ISC)", n = 156).
RUNAWAY_ONSET_C = 253.5
HEATING_TO_ONSET_S = 103.6
RUNAWAY_EVENT_S = 2.0
#: Peak temperature of the cell surface after venting and burning (engineering estimate for the demo).
RUNAWAY_PEAK_C = 620.0

Overrides = dict[tuple[str, str], float | None]


@dataclass(frozen=True)
class Effect:
    """What an incident does at one instant."""

    overrides: Overrides = field(default_factory=dict)  # (device, key) -> value to publish
    silenced: frozenset[str] = frozenset()  # devices that publish nothing
    frozen: frozenset[tuple[str, str]] = frozenset()  # points stuck at their value when it began
    #: counters: (device, key) -> quantity consumed on top of the normal profile since the incident began
    #: (never decreasing in time; the plant keeps it in the register when the incident ends)
    added: dict[tuple[str, str], float] = field(default_factory=dict)
    #: actuators that trip (switch off by themselves) when the incident begins; they stay off until commanded on
    tripped: frozenset[str] = frozenset()


def _ramp(t: float, t0: float, t1: float, v0: float, v1: float) -> float:
    """Linear from v0 at t0 to v1 at t1, constant outside."""
    if t <= t0:
        return v0
    if t >= t1:
        return v1
    return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def _sigmoid(t: float, t_mid: float, width: float, v0: float, v1: float) -> float:
    return v0 + (v1 - v0) / (1.0 + math.exp(-(t - t_mid) / width))


@dataclass(frozen=True)
class IncidentSpec:
    name: str
    title: str
    title_en: str
    process: str  # the process type it happens in (picks the area)
    device_kind: str  # which device of that area is the source
    duration_s: float | None  # None: lasts until cleared
    timeline: Callable[[float, dict[str, str]], Effect] = field(repr=False)


def thermal_runaway(t: float, dev: dict[str, str]) -> Effect:
    """A cell in a formation cabinet runs away: self-heating, vent (VOC), H2, CO, runaway, smoke."""
    cab, gas, smoke = dev["formation_cabinet"], dev.get("gas_detector"), dev.get("fire_detector")
    onset_t = 60.0 + HEATING_TO_ONSET_S * 2  # a slow precursor first, then heating to onset
    if t < 60.0:  # precursor: about 0.1 degC/s above the formation setpoint
        temp = 38.0 + 0.1 * t
    elif t < onset_t:  # accelerating self-heating to the onset temperature
        frac = (t - 60.0) / (onset_t - 60.0)
        temp = 44.0 + (RUNAWAY_ONSET_C - 44.0) * frac**2
    else:  # runaway: the event lasts about 2 s, then the cell burns
        temp = _ramp(t, onset_t, onset_t + RUNAWAY_EVENT_S, RUNAWAY_ONSET_C, RUNAWAY_PEAK_C)
    out: Overrides = {
        (cab, "cell_temp_c"): round(temp, 2),
        (cab, "cell_voltage_v"): round(_ramp(t, onset_t - 20, onset_t + 5, 3.4, 0.4), 3),
    }
    if gas:
        out[(gas, "voc_ppm")] = round(_sigmoid(t, 70.0, 8.0, 1.0, 180.0), 2)
        out[(gas, "h2_ppm")] = round(_sigmoid(t, onset_t - 90.0, 15.0, 0.5, 2500.0), 2)
        out[(gas, "co_ppm")] = round(_sigmoid(t, onset_t - 40.0, 12.0, 1.0, 420.0), 2)
    if smoke:
        out[(smoke, "smoke_pct_obs_m")] = round(_sigmoid(t, onset_t + 15.0, 6.0, 0.005, 8.0), 3)
    return Effect(out)


def electrolyte_leak(t: float, dev: dict[str, str]) -> Effect:
    """Electrolyte leaks at the injection machine: solvent vapour rises, then HF from LiPF6 hydrolysis."""
    gas = dev["gas_detector"]
    return Effect(
        {
            (gas, "voc_ppm"): round(_sigmoid(t, 40.0, 10.0, 1.5, 160.0), 2),
            (gas, "hf_ppm"): round(_sigmoid(t, 90.0, 15.0, 0.05, 2.5), 3),
        }
    )


def rto_failure(t: float, dev: dict[str, str]) -> Effect:
    """The RTO burner fails: the chamber cools, destruction efficiency falls, stack NMHC rises."""
    rto, cems = dev["rto"], dev.get("stack_analyzer")
    chamber = _ramp(t, 0.0, 300.0, 830.0, 540.0)
    out: Overrides = {(rto, "chamber_temp_c"): round(chamber, 1)}
    if cems:
        # below about 760 degC the oxidation of solvent vapour is no longer complete
        out[(cems, "nmhc_mg_m3")] = round(9.0 + max(0.0, 760.0 - chamber) * 0.55, 2)
    return Effect(out)


# Treatment-plant incidents of issue 15 (examples/hj212-plant.yaml: rto.chamber_cold, adsorber.*,
# voc.collection_stopped). The RTO's main fan and the stack analyzers are HJ 212 items that ``simulator.hj212``
# plays (SB1-RS stays 1, running, through an RTO trip; stack NMHC rises); these timelines move the points the
# plant's controllers publish over MQTT.
RTO_MIN_C = 760.0  # the example's minimum oxidation temperature (rto.chamber_cold)


def rto_trip(t: float, dev: dict[str, str]) -> Effect:
    """The RTO burner trips while the main fan keeps pushing waste gas through: the chamber cools from its
    820 degC set point past 760 degC (about 90 s in) down to 540 degC over five minutes."""
    return Effect({(dev["rto"], "chamber_temp_c"): round(_ramp(t, 0.0, 300.0, 820.0, 540.0), 1)})


def adsorber_breakthrough(t: float, dev: dict[str, str]) -> Effect:
    """The activated carbon saturates: the outlet concentration climbs from 4 mg/m3 towards the inlet's
    (120 mg/m3 in the example) over 20 minutes, past 10 mg/m3 (80 % removal at 50 in) within two."""
    adsorber = dev["adsorber"]
    return Effect(
        {
            (adsorber, "voc_in_mg_m3"): 120.0,
            (adsorber, "voc_out_mg_m3"): round(_sigmoid(t, 600.0, 150.0, 4.0, 110.0), 2),
        }
    )


def collection_fan_stop(t: float, dev: dict[str, str]) -> Effect:
    """The VOC collection fan trips while the coating line runs (GB 37822-2019 10.1.2: collection must run with
    production): the fan reports stopped until commanded on; the line runs on until the interlock stops it."""
    return Effect(tripped=frozenset({dev["exhaust_fan"]}))


def ph_excursion(t: float, dev: dict[str, str]) -> Effect:
    """Acid dosing runs away at the wastewater station: pH falls to 4.5, then recovers."""
    analyzer = dev["water_analyzer"]
    ph = _ramp(t, 0.0, 120.0, 7.4, 4.5) if t < 300.0 else _ramp(t, 300.0, 480.0, 4.5, 7.4)
    return Effect({(analyzer, "ph_ph"): round(ph, 2)})


def meter_stop(t: float, dev: dict[str, str]) -> Effect:
    """An electricity meter stops reporting (communication loss): silence, not zero."""
    return Effect(silenced=frozenset({dev["energy_meter"]}))


def sensor_flatline(t: float, dev: dict[str, str]) -> Effect:
    """A temperature transmitter sticks at the value it had when the fault began."""
    return Effect(frozen=frozenset({(dev["environment_monitor"], "temp_c")}))


def _ramped_total(t: float, rate_per_h: float, ramp_s: float) -> float:
    """Quantity consumed by ``t`` at ``rate_per_h`` that ramps up linearly over the first ``ramp_s`` seconds."""
    if t <= 0:
        return 0.0
    if t <= ramp_s:
        return rate_per_h * t * t / (2 * ramp_s) / 3600.0
    return rate_per_h * (t - ramp_s / 2) / 3600.0


# Energy waste (issue #13). The extra rates are engineering estimates for the demo plant: a 900 kW drying line,
# a 4800 Nm3/h compressor station at about 0.156 kWh/Nm3 (its configured nominals).
OVEN_DOOR_EXTRA_KW = 320.0  # heaters at full power against an open door
OVEN_DOOR_EXTRA_STEAM_T_H = 0.9
AIR_LEAK_NM3_H = 2000.0  # a burst hose on the header (~40 % of the night flow): flows day and night
AIR_SPECIFIC_KWH_PER_NM3 = 0.156


def oven_door_open(t: float, dev: dict[str, str]) -> Effect:
    """A vacuum oven's door is left open: vacuum lost, the chamber cools, heaters and steam run flat out."""
    oven, meter, steam = dev["vacuum_oven"], dev.get("energy_meter"), dev.get("steam_meter")
    out: Overrides = {
        (oven, "temp_c"): round(_ramp(t, 0.0, 600.0, 95.0, 48.0), 1),
        (oven, "pressure_pa"): round(_ramp(t, 0.0, 30.0, 80.0, 101_000.0), 0),
    }
    added: dict[tuple[str, str], float] = {}
    if meter:
        added[(meter, "energy_kwh")] = _ramped_total(t, OVEN_DOOR_EXTRA_KW, 120.0)
    if steam:
        added[(steam, "steam_t")] = _ramped_total(t, OVEN_DOOR_EXTRA_STEAM_T_H, 300.0)
    return Effect(out, added=added)


def compressed_air_leak(t: float, dev: dict[str, str]) -> Effect:
    """A compressed-air leak upstream of the sub-meters: more air and compressor power around the clock (the
    night-time base load rises), header pressure sags a little; the sub-meters see nothing."""
    comp = dev["air_compressor"]
    return Effect(
        {(comp, "pressure_mpa"): round(_ramp(t, 0.0, 300.0, 0.68, 0.61), 3)},
        added={
            (comp, "air_nm3"): _ramped_total(t, AIR_LEAK_NM3_H, 60.0),
            (comp, "energy_kwh"): _ramped_total(t, AIR_LEAK_NM3_H * AIR_SPECIFIC_KWH_PER_NM3, 60.0),
        },
    )


def submeter_failure(t: float, dev: dict[str, str]) -> Effect:
    """A sub-meter's register stops counting while it keeps reporting (a failed metering element): the process
    still consumes, its parent meter counts it, and the balance shows it as loss."""
    return Effect(frozen=frozenset({(dev["energy_meter"], "energy_kwh")}))


INCIDENTS: dict[str, IncidentSpec] = {
    spec.name: spec
    for spec in (
        IncidentSpec(
            "thermal_runaway",
            "化成热失控",
            "Thermal runaway in formation",
            "formation",
            "formation_cabinet",
            None,
            thermal_runaway,
        ),
        IncidentSpec(
            "electrolyte_leak",
            "注液电解液泄漏",
            "Electrolyte leak in injection",
            "injection",
            "gas_detector",
            None,
            electrolyte_leak,
        ),
        IncidentSpec("rto_failure", "RTO 故障", "RTO failure", "voc_incinerator", "rto", None, rto_failure),
        IncidentSpec("rto_trip", "RTO 燃烧器跳闸", "RTO burner trip", "voc_incinerator", "rto", None, rto_trip),
        IncidentSpec(
            "adsorber_breakthrough",
            "活性炭吸附穿透",
            "Carbon adsorber breakthrough",
            "coating",
            "adsorber",
            None,
            adsorber_breakthrough,
        ),
        IncidentSpec(
            "collection_fan_stop",
            "VOC 收集风机停机",
            "VOC collection fan stops",
            "coating",
            "exhaust_fan",
            None,
            collection_fan_stop,
        ),
        IncidentSpec(
            "ph_excursion",
            "废水 pH 超标",
            "Wastewater pH excursion",
            "wastewater",
            "water_analyzer",
            480.0,
            ph_excursion,
        ),
        IncidentSpec(
            "meter_stop", "电表停报", "A meter stops reporting", "formation", "energy_meter", None, meter_stop
        ),
        IncidentSpec(
            "sensor_flatline",
            "传感器卡死",
            "A sensor flatlines",
            "warehouse",
            "environment_monitor",
            None,
            sensor_flatline,
        ),
        IncidentSpec(
            "oven_door_open", "烘箱门未关", "An oven door left open", "drying", "vacuum_oven", None, oven_door_open
        ),
        IncidentSpec(
            "compressed_air_leak",
            "压缩空气泄漏",
            "A compressed-air leak",
            "utilities",
            "air_compressor",
            None,
            compressed_air_leak,
        ),
        IncidentSpec(
            "submeter_failure",
            "分表故障",
            "A sub-meter stops counting",
            "formation",
            "energy_meter",
            None,
            submeter_failure,
        ),
    )
}
