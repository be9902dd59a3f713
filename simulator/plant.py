"""The simulated plant: one signal per configured point, incidents layered on top, dropouts and outages.

Counter points follow the meter profiles of ``simulator.energy``; a parent meter of the site's meter tree counts
its children's true consumption (even while a child is broken) plus a line loss and its own unmetered loads.
What energy-waste incidents add to registers is kept in memory only: a simulator restarted after one reads the
profile totals again, which a ledger sees as a counter reset (as it would a replaced meter).
"""

from __future__ import annotations

import random
import time
import zlib
from dataclasses import dataclass, field

from core.model import PointKind
from core.plant import PlantConfig
from simulator.actuators import STATE_POINT, ActuatorBank
from simulator.energy import OutdoorTemperature, ProfileCounter, profile_for
from simulator.incidents import INCIDENTS, Effect
from simulator.signals import GaugeSignal

#: Line and transformer loss between a parent meter and its children (share of the children's consumption).
LINE_LOSS = 0.02
#: A parent's own unmetered loads are at least this share of its nominal (lighting, offices, small users).
MIN_UNMETERED = 0.01

PointRef = tuple[str, str, str]  # (site, device, key)


@dataclass
class SimDevice:
    site: str
    code: str
    area: str
    process: str
    kind: str
    interval_s: float
    signals: dict[str, GaugeSignal | ProfileCounter | OutdoorTemperature]
    seq: int = 0
    next_due: float = 0.0
    offline_until: float = 0.0


@dataclass
class ActiveIncident:
    name: str
    started: float
    devices: dict[str, str]  # device kind -> device code in the chosen area
    frozen: dict[tuple[str, str], float] = field(default_factory=dict)
    site: str = ""


class SimPlant:
    """Compute what every device reports at a given time."""

    def __init__(
        self,
        plant: PlantConfig,
        *,
        seed: int = 7,
        dropout: float = 0.002,
        outage_per_hour: float = 0.05,
        rate_scale: float = 1.0,
        speed: float = 1.0,
        secret: str | bytes = b"",
    ) -> None:
        self.rng = random.Random(seed)
        self.dropout = dropout
        self.outage_per_hour = outage_per_hour
        self.speed = speed
        self.devices: dict[tuple[str, str], SimDevice] = {}
        self.incidents: dict[str, ActiveIncident] = {}
        #: parent meter point -> its children's points (the site's meter tree)
        self.children: dict[PointRef, list[PointRef]] = {}
        #: what ended incidents added to counters (kept in the register)
        self.extra: dict[PointRef, float] = {}
        nominals: dict[PointRef, float] = {}
        for site in plant.sites:
            for area in site.areas:
                for dev in area.devices:
                    for p in dev.points:
                        nominals[(site.code, dev.code, p.key)] = p.nominal or 1.0
            for meter in site.meters:
                if meter.parent:
                    parent = next((m for m in site.meters if m.code == meter.parent), None)
                    if parent is not None:
                        ref = (site.code, *parent.point.split("/", 1))
                        self.children.setdefault(ref, []).append((site.code, *meter.point.split("/", 1)))
        for site in plant.sites:
            for area in site.areas:
                for dev in area.devices:
                    if dev.hj212 is not None:  # an HJ 212 data logger: ``simulator.hj212`` plays it over TCP
                        continue
                    signals: dict[str, GaugeSignal | ProfileCounter | OutdoorTemperature] = {}
                    for p in dev.points:
                        lo, hi = p.range
                        if p.kind == PointKind.COUNTER:
                            # a stable, plausible starting total per meter (crc32 of its name)
                            crc = zlib.crc32(f"{dev.code}/{p.key}".encode())
                            nominal = nominals[(site.code, dev.code, p.key)]
                            kids = self.children.get((site.code, dev.code, p.key), [])
                            if kids:  # a parent meter: only its own unmetered loads have a profile of their own
                                metered = (1 + LINE_LOSS) * sum(nominals.get(k, 0.0) for k in kids)
                                nominal = max(nominal - metered, MIN_UNMETERED * nominal)
                            profile = profile_for(area.process.value, dev.kind, dev.code, p.key, p.quantity)
                            signals[p.key] = ProfileCounter(profile, nominal, float(crc % 100_000), crc)
                        elif p.key == "outdoor_temp_c":  # the weather the chillers follow
                            signals[p.key] = OutdoorTemperature(zlib.crc32(f"{dev.code}/{p.key}".encode()))
                        else:
                            nominal = p.nominal if p.nominal is not None else (lo + hi) / 2
                            signals[p.key] = GaugeSignal(nominal, p.quantity, lo, hi, random.Random(self.rng.random()))
                    self.devices[(site.code, dev.code)] = SimDevice(
                        site.code,
                        dev.code,
                        area.code,
                        area.process.value,
                        dev.kind,
                        dev.interval_s * rate_scale,
                        signals,
                    )
        #: the actuators answer signed commands with the secret's per-device keys (``core.commands``)
        initial = {
            (site.code, dev.code): p.nominal >= 0.5
            for site in plant.sites
            for area in site.areas
            for dev in area.devices
            for p in dev.points
            if p.key == STATE_POINT.get(dev.kind) and p.nominal is not None
        }
        self.actuators = ActuatorBank(self.devices.values(), secret=secret, speed=speed, initial=initial)

    # --- incidents ----------------------------------------------------------------------------------------

    def start_incident(self, name: str, now: float, *, area: str | None = None, device: str | None = None) -> str:
        """Start an incident in the first area of its process type (or the one given); return the area."""
        spec = INCIDENTS.get(name)
        if spec is None:
            raise ValueError(f"unknown incident {name!r}; known: {', '.join(sorted(INCIDENTS))}")
        candidates = [d for d in self.devices.values() if (d.area == area if area else d.process == spec.process)]
        if not candidates:
            raise ValueError(f"no area for incident {name!r} (process {spec.process})")
        chosen_area = candidates[0].area
        in_area = [d for d in candidates if d.area == chosen_area]
        by_kind: dict[str, str] = {}
        for d in in_area:
            by_kind.setdefault(d.kind, d.code)
        if device:
            match = next((d for d in in_area if d.code == device), None)
            if match is None:
                raise ValueError(f"no device {device!r} in area {chosen_area!r}")
            by_kind[match.kind] = match.code
        if spec.device_kind not in by_kind:
            raise ValueError(f"area {chosen_area!r} has no {spec.device_kind} for incident {name!r}")
        if name in self.incidents:  # started again: what the running one added stays in the registers
            self.clear_incident(name, now)
        incident = ActiveIncident(name, now, by_kind, site=in_area[0].site)
        effect = spec.timeline(0.0, by_kind)
        added = self._added(self._effects(now))
        for dev_code, key in effect.frozen:
            dev = next(d for d in in_area if d.code == dev_code)
            incident.frozen[(dev_code, key)] = self._point_value(dev, key, now, added)
        self.incidents[name] = incident
        for dev_code in effect.tripped:
            actuator = self.actuators.actuators.get((incident.site, dev_code))
            if actuator is not None and actuator.on:
                actuator.on, actuator.since = False, now
        return chosen_area

    def clear_incident(self, name: str | None = None, now: float | None = None) -> list[str]:
        """End incidents (all without a name); counters keep what the incidents added until ``now``."""
        now = time.time() if now is None else now
        names = [name] if name else list(self.incidents)
        cleared = []
        for n in names:
            incident = self.incidents.pop(n, None)
            if incident is not None:
                self._keep_added(incident, (now - incident.started) * self.speed)
                cleared.append(n)
        return cleared

    def _keep_added(self, incident: ActiveIncident, elapsed: float) -> None:
        spec = INCIDENTS[incident.name]
        if spec.duration_s is not None:
            elapsed = min(elapsed, spec.duration_s)
        for (dev_code, key), amount in spec.timeline(elapsed, incident.devices).added.items():
            ref = (incident.site, dev_code, key)
            self.extra[ref] = self.extra.get(ref, 0.0) + amount

    def _effects(self, now: float) -> list[tuple[ActiveIncident, Effect]]:
        out = []
        for name, incident in list(self.incidents.items()):
            spec = INCIDENTS[name]
            elapsed = (now - incident.started) * self.speed
            if spec.duration_s is not None and elapsed > spec.duration_s:
                del self.incidents[name]
                self._keep_added(incident, elapsed)
                continue
            out.append((incident, spec.timeline(elapsed, incident.devices)))
        return out

    @staticmethod
    def _added(effects: list[tuple[ActiveIncident, Effect]]) -> dict[PointRef, float]:
        added: dict[PointRef, float] = {}
        for incident, effect in effects:
            for (dev_code, key), amount in effect.added.items():
                ref = (incident.site, dev_code, key)
                added[ref] = added.get(ref, 0.0) + amount
        return added

    # --- counters -------------------------------------------------------------------------------------------

    def consumed(self, ref: PointRef, now: float, added: dict[PointRef, float] | None = None) -> float:
        """True consumption of a counter point since the epoch (what its process used, broken meter or not)."""
        site, code, key = ref
        signal = self.devices[(site, code)].signals[key]
        assert isinstance(signal, ProfileCounter), ref
        total = signal.consumed(now) + self.extra.get(ref, 0.0) + (added or {}).get(ref, 0.0)
        for child in self.children.get(ref, []):
            if (child[0], child[1]) in self.devices:
                total += (1 + LINE_LOSS) * self.consumed(child, now, added)
        return total

    def counter_value(self, site: str, device: str, key: str, now: float) -> float:
        """The register of a counter point at ``now`` with the running incidents (before freezes)."""
        return self._point_value(self.devices[(site, device)], key, now, self._added(self._effects(now)))

    def _point_value(self, device: SimDevice, key: str, now: float, added: dict[PointRef, float]) -> float:
        signal = device.signals[key]
        if isinstance(signal, ProfileCounter):
            return round(signal.offset + self.consumed((device.site, device.code, key), now, added), 3)
        return signal.value(now)

    # --- telemetry ------------------------------------------------------------------------------------------

    def due(self, now: float) -> list[tuple[SimDevice, dict[str, float] | None]]:
        """Devices due to publish at ``now`` with their values; None means the device went offline now."""
        effects = self._effects(now)
        added = self._added(effects)
        out: list[tuple[SimDevice, dict[str, float] | None]] = []
        for device in self.devices.values():
            if now < device.next_due:
                continue
            device.next_due = max(device.next_due + device.interval_s, now)
            if now < device.offline_until:
                continue
            if self.rng.random() < self.outage_per_hour * device.interval_s / 3600.0:
                device.offline_until = now + self.rng.uniform(30.0, 120.0)
                out.append((device, None))
                continue
            if any(device.code in effect.silenced for _, effect in effects):
                continue
            if self.rng.random() < self.dropout:  # an occasional lost sample
                continue
            values = {key: self._point_value(device, key, now, added) for key in device.signals}
            raw = dict(values)
            for incident, effect in effects:
                if incident.site and incident.site != device.site:
                    continue
                for (dev_code, key), value in effect.overrides.items():
                    if dev_code == device.code and key in values and value is not None:
                        values[key] = value
                for (dev_code, key), value in incident.frozen.items():
                    if dev_code == device.code and key in values:
                        values[key] = value
            self.actuators.adjust(device, values, raw, now)
            device.seq += 1
            out.append((device, values))
        return out

    def back_online(self, now: float) -> list[SimDevice]:
        """Devices whose outage ended (they announce ``online`` again)."""
        back = [d for d in self.devices.values() if d.offline_until and now >= d.offline_until]
        for d in back:
            d.offline_until = 0.0
        return back
