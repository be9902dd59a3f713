"""The simulated plant: one signal per configured point, incidents layered on top, dropouts and outages."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field

from core.model import PointKind
from core.plant import PlantConfig
from simulator.actuators import ActuatorBank
from simulator.incidents import INCIDENTS, Effect
from simulator.signals import CounterSignal, GaugeSignal


@dataclass
class SimDevice:
    site: str
    code: str
    area: str
    process: str
    kind: str
    interval_s: float
    signals: dict[str, GaugeSignal | CounterSignal]
    seq: int = 0
    next_due: float = 0.0
    offline_until: float = 0.0


@dataclass
class ActiveIncident:
    name: str
    started: float
    devices: dict[str, str]            # device kind -> device code in the chosen area
    frozen: dict[tuple[str, str], float] = field(default_factory=dict)


class SimPlant:
    """Compute what every device reports at a given time."""

    def __init__(self, plant: PlantConfig, *, seed: int = 7, dropout: float = 0.002,
                 outage_per_hour: float = 0.05, rate_scale: float = 1.0, speed: float = 1.0,
                 secret: str | bytes = b"") -> None:
        self.rng = random.Random(seed)
        self.dropout = dropout
        self.outage_per_hour = outage_per_hour
        self.speed = speed
        self.devices: dict[tuple[str, str], SimDevice] = {}
        self.incidents: dict[str, ActiveIncident] = {}
        for site in plant.sites:
            for area in site.areas:
                for dev in area.devices:
                    signals: dict[str, GaugeSignal | CounterSignal] = {}
                    for p in dev.points:
                        lo, hi = p.range
                        if p.kind == PointKind.COUNTER:
                            # a stable, plausible starting total per meter (crc32 of its name)
                            offset = float(zlib.crc32(f"{dev.code}/{p.key}".encode()) % 100_000)
                            signals[p.key] = CounterSignal(p.nominal or 1.0, offset)
                        else:
                            nominal = p.nominal if p.nominal is not None else (lo + hi) / 2
                            signals[p.key] = GaugeSignal(nominal, p.quantity, lo, hi,
                                                         random.Random(self.rng.random()))
                    self.devices[(site.code, dev.code)] = SimDevice(
                        site.code, dev.code, area.code, area.process.value, dev.kind,
                        dev.interval_s * rate_scale, signals)
        #: the actuators answer signed commands with the secret's per-device keys (``core.commands``)
        self.actuators = ActuatorBank(self.devices.values(), secret=secret, speed=speed)

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
        incident = ActiveIncident(name, now, by_kind)
        effect = spec.timeline(0.0, by_kind)
        for dev_code, key in effect.frozen:
            dev = next(d for d in in_area if d.code == dev_code)
            incident.frozen[(dev_code, key)] = dev.signals[key].value(now)
        self.incidents[name] = incident
        return chosen_area

    def clear_incident(self, name: str | None = None) -> list[str]:
        names = [name] if name else list(self.incidents)
        return [n for n in names if self.incidents.pop(n, None) is not None]

    def _effects(self, now: float) -> list[tuple[ActiveIncident, Effect]]:
        out = []
        for name, incident in list(self.incidents.items()):
            spec = INCIDENTS[name]
            elapsed = (now - incident.started) * self.speed
            if spec.duration_s is not None and elapsed > spec.duration_s:
                del self.incidents[name]
                continue
            out.append((incident, spec.timeline(elapsed, incident.devices)))
        return out

    # --- telemetry ------------------------------------------------------------------------------------------

    def due(self, now: float) -> list[tuple[SimDevice, dict[str, float] | None]]:
        """Devices due to publish at ``now`` with their values; None means the device went offline now."""
        effects = self._effects(now)
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
            if self.rng.random() < self.dropout:       # an occasional lost sample
                continue
            values = {key: signal.value(now) for key, signal in device.signals.items()}
            raw = dict(values)
            for incident, effect in effects:
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
