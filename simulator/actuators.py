"""Simulated actuators: they check commands as a real device must, obey them, report their state, and the
plant's physics responds (a fan lowers VOC, a sprinkler lowers temperature, a closed valve stops a leak, a
stopped coating line unloads the VOC incinerator, a stopped cabinet stops charging).

Each actuator checks commands with ``core.commands.check_command``, the device-side contract a real device
follows: it refuses (acknowledges ``rejected`` with the reason) a command that is forged (bad signature: its key
is derived from the service secret, as ``ehs alarms key`` provisions a real device), malformed, expired, from the
future, replayed or older than the last one it accepted, or for an action it does not have. A command it already
accepted (a retry, same id) is acknowledged again with the status it reached, and not carried out twice. Only
verified commands are remembered.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from core.commands import KIND_ACTIONS, DeviceCommandState, ack, check_command, device_key

_LOGGER = logging.getLogger(__name__)

#: What each action sets the actuator to (True = running / on / open / charging).
SETS = {
    "exhaust_fan.on": True,
    "exhaust_fan.off": False,
    "sprinkler.on": True,
    "sprinkler.off": False,
    "valve.open": True,
    "valve.close": False,
    "line.start": True,
    "line.stop": False,
    "charge.resume": True,
    "charge.stop": False,
}
#: The state at start: fans and sprinklers off, valves open, lines running, cabinets charging.
INITIAL = {
    "exhaust_fan": False,
    "sprinkler": False,
    "supply_valve": True,
    "line_controller": True,
    "formation_cabinet": True,
    "grading_cabinet": True,
    "aging_rack": True,
}
#: The point that reports the actuator's state, if it has one.
STATE_POINT = {
    "exhaust_fan": "fan_running_bool",
    "sprinkler": "sprinkler_on_bool",
    "supply_valve": "valve_open_bool",
    "line_controller": "line_running_bool",
}
#: Seconds from accepting a command to having done it (fan spin-up, valve travel).
ACTUATION_S = {
    "exhaust_fan": 2.0,
    "sprinkler": 1.0,
    "supply_valve": 5.0,
    "line_controller": 2.0,
    "formation_cabinet": 0.5,
    "grading_cabinet": 0.5,
    "aging_rack": 0.5,
}
#: Time constants (incident seconds) of the physics: how fast a response pulls a value back to normal.
TAU_FAN_S, TAU_VALVE_S, TAU_SPRINKLER_S, TAU_LINE_S = 30.0, 20.0, 25.0, 40.0
GASES = ("voc", "h2", "co", "hf")
COOLED_TO_C = 30.0


@dataclass
class Actuator:
    site: str
    device: str
    kind: str
    area: str
    process: str
    on: bool
    since: float = 0.0  # when the state last changed (epoch s)
    commands: DeviceCommandState = field(default_factory=DeviceCommandState)  # replay memory (core.commands)

    def state(self) -> dict[str, object]:
        return {"on": self.on, "since": round(self.since, 3), "kind": self.kind}


class ActuatorBank:
    """Every actuator of the simulated plant, the commands in progress, and their effect on the values."""

    def __init__(
        self,
        devices: Iterable,
        *,
        secret: str | bytes,
        speed: float = 1.0,
        initial: dict[tuple[str, str], bool] | None = None,
    ) -> None:
        """``initial``: the state at start of some actuators (site, device), e.g. from the configured nominal of
        their state point (a VOC collection fan runs with production, an emergency exhaust fan waits); the
        others start as ``INITIAL`` of their kind."""
        initial = initial or {}
        self.speed = speed
        self.secret = secret
        self.actuators: dict[tuple[str, str], Actuator] = {
            (d.site, d.code): Actuator(
                d.site, d.code, d.kind, d.area, d.process, initial.get((d.site, d.code), INITIAL[d.kind])
            )
            for d in devices
            if d.kind in KIND_ACTIONS
        }
        self._keys: dict[tuple[str, str], bytes] = {}
        self._doing: list[tuple[float, Actuator, str, bool]] = []  # (due, actuator, command id, new state)

    def _key(self, site: str, device: str) -> bytes:
        if (site, device) not in self._keys:
            self._keys[(site, device)] = device_key(self.secret, site, device)
        return self._keys[(site, device)]

    def handle(self, site: str, device: str, payload: bytes, now: float) -> list[bytes]:
        """A command arrived for ``site/device``: return the acknowledgements to send now."""
        actuator = self.actuators.get((site, device))
        if actuator is None:
            try:
                command_id = orjson.loads(payload).get("id")
            except (orjson.JSONDecodeError, AttributeError):
                command_id = None
            return [ack(command_id, "rejected", "this device has no actions")] if isinstance(command_id, str) else []
        verdict = check_command(payload, self._key(site, device), actuator.commands, now_ms=int(now * 1000))
        command_id = verdict.command_id
        if command_id is None:
            _LOGGER.warning("%s/%s: a command without an id was ignored (%s)", site, device, verdict.reason)
            return []
        if verdict.outcome == "ignore":
            _LOGGER.warning("%s/%s ignored a forged command reusing id %s", site, device, command_id)
            return []
        if verdict.outcome == "duplicate":
            return [verdict.previous or ack(command_id, "accepted", "already accepted", actuator.state())]
        if verdict.outcome == "refuse":  # not remembered: it may not even be ours
            _LOGGER.warning("%s/%s refused command %s: %s", site, device, command_id, verdict.reason)
            return [ack(command_id, "rejected", verdict.reason, actuator.state())]
        body = verdict.command or {}
        if body["action"] not in KIND_ACTIONS[actuator.kind]:  # a real command we cannot do: answer retries alike
            why = f"a {actuator.kind} cannot {body['action']}"
            _LOGGER.warning("%s/%s refused command %s: %s", site, device, command_id, why)
            return [self._remember(actuator, command_id, ack(command_id, "rejected", why, actuator.state()))]
        self._doing.append((now + ACTUATION_S[actuator.kind], actuator, command_id, SETS[body["action"]]))
        drill = " (drill)" if body.get("drill") else ""
        return [
            self._remember(
                actuator, command_id, ack(command_id, "accepted", f"{body['action']}{drill}", actuator.state())
            )
        ]

    def _remember(self, actuator: Actuator, command_id: str, reply: bytes) -> bytes:
        actuator.commands.answered(command_id, reply)
        return reply

    def finish(self, now: float) -> list[tuple[Actuator, bytes]]:
        """Commands whose actuation time has passed: change the state, and acknowledge ``done``."""
        out, waiting = [], []
        for due, actuator, command_id, new_state in self._doing:
            if due > now:
                waiting.append((due, actuator, command_id, new_state))
                continue
            if actuator.on != new_state:
                actuator.on, actuator.since = new_state, now
            out.append((actuator, self._remember(actuator, command_id, ack(command_id, "done", "", actuator.state()))))
        self._doing = waiting
        return out

    # --- physics ----------------------------------------------------------------------------------------------

    def _since(self, area: str | None, kind: str, on: bool, process: str | None = None) -> float | None:
        """Since when an actuator of ``kind`` in the area (or process) has been in state ``on``; None if none is."""
        times = [
            a.since
            for a in self.actuators.values()
            if a.kind == kind
            and a.on == on
            and (area is None or a.area == area)
            and (process is None or a.process == process)
        ]
        return min(times) if times else None

    def adjust(self, device, values: dict[str, float], raw: dict[str, float], now: float) -> None:
        """Apply the actuators' effect to one device's values, in place.

        ``raw`` are the values the device's signals gave before any incident: a response pulls an incident's
        excess back towards them (so the sensor's own noise stays), a sprinkler pulls temperatures towards
        ``COOLED_TO_C``.
        """
        signals = device.signals
        actuator = self.actuators.get((device.site, device.code))
        if actuator is not None:
            key = STATE_POINT.get(actuator.kind)
            if key in values:
                values[key] = 1.0 if actuator.on else 0.0
            if not actuator.on and "current_a" in values:  # charging stopped
                values["current_a"] = 0.0
        responses = []
        if (t := self._since(device.area, "exhaust_fan", True)) is not None:
            responses.append((GASES, TAU_FAN_S, t, None))
        if (t := self._since(device.area, "supply_valve", False)) is not None:
            responses.append((("voc", "hf"), TAU_VALVE_S, t, None))
        if (t := self._since(device.area, "sprinkler", True)) is not None:
            responses.append((("temperature", "smoke"), TAU_SPRINKLER_S, t, COOLED_TO_C))
        if (
            device.process == "voc_incinerator"
            and (t := self._since(None, "line_controller", False, process="coating")) is not None
        ):
            responses.append((("voc", "nmhc"), TAU_LINE_S, t, None))  # the coating line is the RTO's solvent load
        for quantities, tau, since, target in responses:
            fade = math.exp(-max(0.0, now - since) * self.speed / tau)
            for key, value in values.items():
                signal = signals.get(key)
                if signal is None or getattr(signal, "quantity", None) not in quantities:
                    continue
                base = raw[key]
                if target is not None and signal.quantity == "temperature":
                    base = min(base, target + (raw[key] - signal.nominal))
                if value > base:
                    values[key] = round(base + (value - base) * fade, 3)
